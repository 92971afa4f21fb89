"""The officers' page across borders (issue 13): each alert says whose ground it is on, alerts on
the officer's own country's ground come first, then the handover (alerts of shipments whose
itinerary crosses their administration, on another country's ground), each part nearest first."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.conftest import ApiOffers, PageErrors, screenshot
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer, execute, unique_prefix, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = 47.2  # a parallel of its own
HERE = (LAT, 16.25)  # the officer's phone, inside the region (16.0 .. 16.6); the route runs on to 17.0


def _world(database_url: str) -> tuple[str, dict[str, int]]:
    """A region (country KEN) around the route's western part; alerts on both grounds and one where no
    country is known, by name."""
    region = unique_prefix("H").upper()
    add_region(database_url, region, 15.9, LAT - 0.3, 16.6, LAT + 0.3)
    execute(database_url, "UPDATE regions SET country = 'KEN' WHERE code = %s", (region,))
    shipments = shipments_on(database_url, "handover", LAT, 16.0, 17.0, 5)
    places = {"ken_far": (16.55, "KEN"), "uga_near": (16.7, "UGA"), "ken_near": (16.3, "KEN"),
              "uga_far": (16.95, "UGA"), "unknown": (16.8, None)}
    ids = {name: add_alert(database_url, s, "border_dwell" if country == "KEN" else "route_reversal", lon, LAT,
                           country=country)
           for s, (name, (lon, country)) in zip(shipments, places.items(), strict=True)}
    return region, ids


def _open(browser: Browser, contexts: list[BrowserContext], api: ApiServer, region: str,
          subject: str) -> tuple[Page, PageErrors]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, geolocation={"latitude": HERE[0], "longitude": HERE[1]},
                                  permissions=["geolocation"])
    contexts.append(context)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{api.url.removesuffix('/api/v1')}/officer/#token={mint(ApiSettings(), subject, 'officer', region)}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    return page, errors


def _listed(page: Page, selector: str) -> list[int]:
    return page.eval_on_selector_all(f"{selector} li", "els => els.map(e => Number(e.dataset.id))")  # type: ignore


def test_each_alert_says_whose_ground_it_is_on(browser: Browser, contexts: list[BrowserContext],
                                               api_server: ApiServer, database_url: str) -> None:
    region, ids = _world(database_url)
    page, errors = _open(browser, contexts, api_server, region, "officer.malaba")
    wait_for(lambda: page.locator("#alerts li .dist, #handover li .dist").count() == len(ids), 10,
             "every alert with its distance")
    for name, alert_id in ids.items():
        meta = page.locator(f"#alert-{alert_id} .meta").first.inner_text()
        assert meta.startswith("country unknown" if name == "unknown" else name[:3].upper()), (name, meta)
    # Shipments whose route crosses the region are visible, also where the alert is outside it.
    assert page.locator(f"#alert-{ids['uga_far']}").count() == 1
    assert page.locator(f"#alert-{ids['ken_near']}", has_text="Long stay at border").count() == 1
    assert page.locator(f"#alert-{ids['uga_near']}", has_text="Route reversal").count() == 1
    assert errors.errors == []


def test_own_ground_first_then_the_handover(browser: Browser, contexts: list[BrowserContext],
                                            api_server: ApiServer, database_url: str, api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.property("RegionProperties", "country")
                        or api_offers.property("Session", "country"), "a region's country (GET /regions/{code})"))
    region, ids = _world(database_url)
    page, errors = _open(browser, contexts, api_server, region, "officer.busia")
    wait_for(lambda: page.locator("#alerts li .dist, #handover li .dist").count() == len(ids), 10,
             "every alert with its distance")
    assert page.locator("#own-heading").text_content() == "On KEN ground"
    assert _listed(page, "#alerts") == [ids["ken_near"], ids["ken_far"]]
    assert _listed(page, "#handover") == [ids["uga_near"], ids["unknown"], ids["uga_far"]]
    assert page.locator(f"#alert-{ids['ken_near']} .country.own").inner_text() == "KEN"
    assert page.locator(f"#alert-{ids['uga_near']} .country.own").count() == 0
    assert "KEN" in page.locator("#who").inner_text()
    screenshot(page, "officer-handover")
    assert errors.errors == []
