"""The officers' page on a phone-sized Chromium with a position: their region's
alerts nearest first with distance and direction, ack and resolve with a note
reaching the database, and an installable PWA (manifest, service worker)."""

from __future__ import annotations

import math

from playwright.sync_api import Browser, BrowserContext

from tests.dashboards.conftest import PageErrors, screenshot
from tests.dashboards.world import add_region, shipments_on
from tests.support import ApiServer, query, unique_prefix, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = 48.2
HERE = (LAT, 16.25)  # the officer's phone
ALERT_LONS = (16.8, 16.3, 16.5, 16.15)  # the last one is west of the phone


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (p1, l1), (p2, l2) = (math.radians(a[0]), math.radians(a[1])), (math.radians(b[0]), math.radians(b[1]))
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_officer_sees_region_alerts_nearest_first_and_acts(browser: Browser, contexts: list[BrowserContext],
                                                           api_server: ApiServer, database_url: str) -> None:
    region = unique_prefix("R").upper()
    add_region(database_url, region, 15.9, LAT - 0.3, 17.1, LAT + 0.3)
    shipments = shipments_on(database_url, "officer", LAT, 16.0, 17.0, len(ALERT_LONS))
    elsewhere = shipments_on(database_url, "away", LAT + 2.0, 16.0, 17.0, 1)[0]  # another region's shipment
    ids = [_alert(database_url, s.id, s.tracker, lon) for s, lon in zip(shipments, ALERT_LONS, strict=True)]
    hidden = _alert(database_url, elsewhere.id, elsewhere.tracker, 16.25, lat=LAT + 2.0)

    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, geolocation={"latitude": HERE[0], "longitude": HERE[1]},
                                  permissions=["geolocation"])
    contexts.append(context)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(f"{api_server.url.removesuffix('/api/v1')}/officer/#token="
              f"{mint(ApiSettings(), 'officer.busia', 'officer', region)}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    wait_for(lambda: page.locator("#alerts li .dist").count() == len(ids), 10, "distances from the phone")

    listed = page.eval_on_selector_all("#alerts li", "els => els.map(e => Number(e.dataset.id))")
    by_distance = [i for _, i in sorted(zip((_km(HERE, (LAT, lon)) for lon in ALERT_LONS), ids, strict=True))]
    assert listed == by_distance
    assert hidden not in listed
    first, last = page.locator("#alerts li .dist").first.inner_text(), page.locator("#alerts li .dist").last
    assert first.endswith(f"{_km(HERE, (LAT, 16.3)):.1f} km E")
    assert last.inner_text().endswith("E")  # the farthest, 16.8, is east too
    assert page.locator(f"#alert-{ids[3]} .dist").inner_text().endswith("W")
    screenshot(page, "officer")

    nearest = page.locator(f"#alert-{by_distance[0]}")
    nearest.get_by_role("button", name="Acknowledge").click()
    wait_for(lambda: _status(database_url, by_distance[0]) == ("acknowledged", "officer.busia", None), 5,
             "the acknowledgement")
    page.locator(f"#alert-{by_distance[0]}").get_by_role("button", name="Resolve…").click()
    page.locator(f"#alert-{by_distance[0]} textarea").fill("Seal intact, driver resting; checked on site")
    page.locator(f"#alert-{by_distance[0]} select").select_option("false_alarm")
    page.locator(f"#alert-{by_distance[0]}").get_by_role("button", name="Resolve", exact=True).click()
    wait_for(lambda: _status(database_url, by_distance[0])
             == ("resolved", "officer.busia", "Seal intact, driver resting; checked on site"), 5, "the resolution")
    wait_for(lambda: page.locator(f"#alert-{by_distance[0]}").count() == 0, 5, "the resolved alert to leave the list")
    assert query(database_url, "SELECT outcome FROM alerts WHERE id = %s", (by_distance[0],))[0][0] == "false_alarm"

    # Assigned to the officer (the farthest one): it comes first, marked as theirs.
    query(database_url, "UPDATE alerts SET assignee = 'officer.busia', assigned_at = now() WHERE id = %s RETURNING id",
          (by_distance[-1],))
    wait_for(lambda: page.locator("#alerts li").first.get_attribute("data-id") == str(by_distance[-1]), 5,
             "the assigned alert first")
    assert page.locator(f"#alert-{by_distance[-1]} .assigned").inner_text() == "Assigned to you"

    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.active ? r.scope : null)")
    assert scope.endswith("/officer/")
    manifest = page.evaluate("fetch('manifest.webmanifest').then(r => r.json())")
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/officer/"
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    assert errors.errors == []


def _alert(database_url: str, shipment_id: int, device: str, lon: float, lat: float = LAT) -> int:
    rows = query(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity,"
                               " lat, lon) VALUES ('unscheduled_stop', %s, %s, now(), now(), 'high', %s, %s)"
                               " RETURNING id", (shipment_id, device, lat, lon))
    return int(rows[0][0])


def _status(database_url: str, alert_id: int) -> tuple[str, str, str | None]:
    row = query(database_url, "SELECT status, coalesce(resolved_by, acknowledged_by), note FROM alerts WHERE id = %s",
                (alert_id,))[0]
    return row[0], row[1], row[2]
