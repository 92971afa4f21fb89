"""The control room's transit parts (issue 13) in real Chromium: the new alert types with readable
labels and what the engine found, a consolidated truck's alerts as one incident row (one click
acknowledges them all), a suspicious gap's reachable area drawn when its alert is selected, a
device-supplied seal number shown as text (never markup), and a truck's itinerary as a timeline
with its risk, its country and the border posts on the map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.conftest import ApiOffers, PageErrors, screenshot
from tests.dashboards.world import (
    add_alert,
    add_border_post,
    add_milestone,
    consolidate,
    ellipse,
    shipments_on,
    through,
)
from tests.support import ApiServer, execute, query, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = -1.5  # parallels of their own: no other test's route is drawn over these
GAP = ((36.3, LAT - 0.3), (36.5, LAT - 0.3))  # a gap's two end fixes (lon, lat)


def _open(browser: Browser, contexts: list[BrowserContext], api: ApiServer, query_string: str = "",
          subject: str = "ui-transit") -> tuple[Page, PageErrors]:
    contexts.append(browser.new_context(viewport={"width": 1400, "height": 850}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    token = mint(ApiSettings(), subject, "operator")
    page.goto(f"{api.url.removesuffix('/api/v1')}/{query_string}#token={token}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    return page, errors


def test_incident_rows_labels_and_a_gap_area(browser: Browser, contexts: list[BrowserContext],
                                            api_server: ApiServer, database_url: str) -> None:
    truck = shipments_on(database_url, "uiinc", LAT, 36.0, 37.0, 3)
    consolidate(database_url, truck, "KDA 413X")
    started = datetime.now(UTC) - timedelta(minutes=5)
    incident = [add_alert(database_url, s, "route_deviation", 36.4, LAT, started_at=started, country="KEN")
                for s in truck]
    (other,) = shipments_on(database_url, "uigap", LAT - 0.3, 36.0, 37.0, 1)
    gap_end = datetime.now(UTC) - timedelta(minutes=2)
    gap = add_alert(database_url, other, "suspicious_gap", GAP[1][0], GAP[1][1], country="UGA",
                    started_at=gap_end - timedelta(minutes=70), ended_at=gap_end,
                    detail={"unexplained_min": 43.2, "gap_min": 70.0, "area": ellipse(GAP[0], GAP[1], 0.3)})
    bypass = add_alert(database_url, other, "border_bypass", 36.6, LAT - 0.3, country="UGA", severity="critical",
                       ended_at=datetime.now(UTC), detail={"from": "KEN", "to": "UGA"})

    page, errors = _open(browser, contexts, api_server)
    row = page.locator(f'#feed li[data-id="{incident[0]}"]')
    row.wait_for(timeout=5_000)
    assert row.get_attribute("data-ids") == " ".join(map(str, incident))
    text = row.inner_text()
    assert "Route deviation" in text and "KEN" in text and "KDA 413X · 3 shipments" in text
    assert all(s.reference in text for s in truck)
    assert all(page.locator("#feed li", has_text=s.reference).count() == 1 for s in truck)  # one row, not three
    bypass_row = page.locator(f'#feed li[data-id="{bypass}"]')
    assert "Border bypassed" in bypass_row.inner_text()
    assert "crossed KEN → UGA outside a post" in bypass_row.inner_text()

    row.get_by_role("button", name="Acknowledge").click()
    wait_for(lambda: query(database_url, "SELECT count(*) FROM alerts WHERE id = ANY(%s) AND status = 'acknowledged'"
                                         " AND acknowledged_by = 'ui-transit'", (incident,))[0][0] == 3, 5,
             "the three alerts of the incident acknowledged")

    gap_row = page.locator(f'#feed li[data-id="{gap}"]')
    assert "Suspicious coverage gap" in gap_row.inner_text()
    assert "43 min unexplained in a 70 min gap" in gap_row.inner_text()
    assert page.evaluate("window.ctt.gapArea.layer") is None
    gap_row.locator(".when").click()
    bounds = """() => { const l = window.ctt.gapArea.layer; if (!l) return null;
        const b = l.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }"""
    west, south, east, north = wait_for(lambda: page.evaluate(bounds), 5, "the reachable area on the map")
    ring = ellipse(GAP[0], GAP[1], 0.3)["coordinates"][0]
    assert (west, east) == (min(p[0] for p in ring), max(p[0] for p in ring))
    assert (south, north) == (min(p[1] for p in ring), max(p[1] for p in ring))
    screenshot(page, "control-room-gap-area")
    assert errors.errors == []


def test_a_device_supplied_seal_number_is_text_not_markup(browser: Browser, contexts: list[BrowserContext],
                                                          api_server: ApiServer, database_url: str) -> None:
    # A seal's number comes from the device: a forged one must not run in the control room.
    (shipment,) = shipments_on(database_url, "uixss", LAT - 0.6, 36.0, 37.0, 1)
    forged = '<img src=x onerror="window.pwned=1">'
    alert_id = add_alert(database_url, shipment, "seal_mismatch", 36.2, LAT - 0.6, ended_at=datetime.now(UTC),
                         detail={"seal_number": forged, "reason": "<b>not declared</b>"})
    page, errors = _open(browser, contexts, api_server, subject="ui-xss")
    row = page.locator(f'#feed li[data-id="{alert_id}"]')
    row.wait_for(timeout=5_000)
    assert f"seal {forged}: <b>not declared</b>" in row.inner_text()
    assert row.locator("img, b").count() == 0
    assert page.evaluate("window.pwned") is None
    assert errors.errors == []


def _steps(page: Page) -> list[tuple[str, str, str]]:
    """(mark, label, state word) of each itinerary step shown."""
    return [(li.locator(".mark").inner_text(), li.locator(".what").inner_text(), li.locator(".state").inner_text())
            for li in page.locator("#details .itinerary li").all()]


def test_a_shipment_without_transit_offices_shows_departure_then_destination(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str) -> None:
    (shipment,) = shipments_on(database_url, "uiv1", LAT - 0.9, 36.0, 37.0, 1)
    departure, destination = query(database_url, "SELECT office_of_departure, office_of_destination FROM shipments"
                                                  " WHERE id = %s", (shipment.id,))[0]
    page, errors = _open(browser, contexts, api_server, f"?shipment={shipment.id}", "ui-v1")
    page.locator("#details h3", has_text=shipment.reference).wait_for(timeout=5_000)
    assert [(m, w, s.lower()) for m, w, s in _steps(page)] == [
        ("●", f"Departed {departure}", "done"), ("▶", f"Arrived at destination {destination}", "next")]
    assert errors.errors == []


def test_itinerary_through_a_border_post_with_risk_country_and_posts_on_the_map(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str,
        api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.enum("ZoneProperties", "kind", "border_post"), "zones of kind border_post"),
                       (api_offers.property("Shipment", "itinerary"), "Shipment.itinerary"),
                       (api_offers.property("Shipment", "risk"), "Shipment.risk"),
                       (api_offers.path("/shipments/{shipment_id}/timeline"), "GET /shipments/{id}/timeline"))
    (shipment,) = shipments_on(database_url, "uiitin", LAT - 1.2, 36.0, 37.0, 1)
    post = add_border_post(database_url, "uipost", 36.5, LAT - 1.2, "KEN")
    through(database_url, shipment, post)
    departure = query(database_url, "SELECT office_of_departure FROM shipments WHERE id = %s", (shipment.id,))[0][0]
    t0 = datetime.now(UTC) - timedelta(hours=5)
    add_milestone(database_url, shipment, "departed", t0, departure, "KEN", position=0, inside_s=600.0,
                  stationary_s=300.0)
    add_milestone(database_url, shipment, "arrived", t0 + timedelta(hours=2), post, "KEN", position=1)
    add_milestone(database_url, shipment, "departed", t0 + timedelta(hours=3, minutes=5), post, "KEN", position=1,
                  inside_s=3900.0, stationary_s=3000.0)
    add_milestone(database_url, shipment, "border_crossed", t0 + timedelta(hours=3, minutes=6), None, "UGA",
                  **{"from": "KEN", "to": "UGA"})
    execute(database_url, "UPDATE shipments SET risk_level = 'high', risk = %s::jsonb WHERE id = %s",
            ('{"score": 60, "computed": "high", "reasons": [{"factor": "goods", "points": 40, "detail": "2710 fuel"},'
             ' {"factor": "operator", "points": 20, "detail": "2 confirmed alerts in 12 months"}]}', shipment.id))

    page, errors = _open(browser, contexts, api_server, f"?shipment={shipment.id}", "ui-itinerary")
    page.locator("#details h3", has_text=shipment.reference).wait_for(timeout=5_000)
    steps = [(m, w, s.lower()) for m, w, s in _steps(page)]
    assert steps[1:] == [("●", f"Arrived at {post}", "done"), ("●", f"Left {post}", "done"),
                         ("●", "Crossed the border KEN → UGA", "done"),
                         ("▶", steps[-1][1], "next")]
    assert steps[0][1].startswith("Departed") and steps[-1][1].startswith("Arrived at destination")
    assert "inside 1 h 05 min, stationary 50 min" in page.locator("#details .itinerary li", has_text=f"Left {post}")\
        .inner_text()
    risk = page.locator("#details .risk-cell").inner_text()
    assert "high" in risk.lower() and "score 60" in risk and "+40 goods: 2710 fuel" in risk
    label = page.locator(".post-label", has_text=post)
    assert label.count() == 1 and label.is_visible()
    page.evaluate("([lat, lon]) => { window.ctt.map.setView([lat, lon], 10, {animate: false}); }", [LAT - 1.2, 36.5])
    page.locator("#details .itinerary").scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # the canvas is redrawn after the move
    screenshot(page, "control-room-itinerary")
    assert errors.errors == []


# The shapes of docs/api.md (Shipment.itinerary, GET /shipments/{id}/timeline items): the page's pure
# itinerary module on them, so that its order and states are checked before those resources exist.
_SPEC_SHIPMENT = {
    "departed_at": "2026-11-23T06:00:00Z", "arrived_at": None, "office_of_departure": "KEMBA",
    "office_of_destination": "RWKGL",
    "itinerary": [
        {"position": 0, "role": "departure", "office_code": "KEMBA", "country": "KEN",
         "arrived_at": None, "departed_at": "2026-11-23T06:10:00Z"},
        {"position": 1, "role": "transit", "office_code": "KEMAL", "country": "KEN",
         "arrived_at": None, "departed_at": None},
        {"position": 2, "role": "transit", "office_code": "UGKAT", "country": "UGA",
         "arrived_at": "2026-11-24T09:00:00Z", "departed_at": None},
        {"position": 3, "role": "destination", "office_code": "RWKGL", "country": "RWA",
         "arrived_at": None, "departed_at": None}]}
_SPEC_EVENTS = [
    {"kind": "border_crossed", "office_code": None, "position": None, "country": "UGA", "at": "2026-11-23T20:00:00Z",
     "lon": 34.1, "lat": 0.6, "late": True, "detail": {"from": "KEN", "to": "UGA"}},
    {"kind": "inspection_authorised", "office_code": "UGKAT", "position": 2, "country": "UGA",
     "at": "2026-11-24T09:30:00Z", "lon": None, "lat": None, "late": False, "detail": {}}]


def test_itinerary_order_and_states_on_the_spec_shapes(browser: Browser, contexts: list[BrowserContext],
                                                       api_server: ApiServer) -> None:
    page, errors = _open(browser, contexts, api_server, subject="ui-itinerary-unit")
    steps = page.evaluate("""async ([s, events]) => {
        const m = await import("/itinerary.js");
        const steps = m.itinerarySteps(s, events);
        const box = document.getElementById("details");
        box.hidden = false;
        box.innerHTML = `<h3>spec-shaped shipment</h3><h4>Itinerary</h4>${m.itineraryHtml(steps)}`;
        return steps.map((x) => [x.label, x.state]); }""", [_SPEC_SHIPMENT, _SPEC_EVENTS])
    assert steps == [
        # KEMAL was never reached (the truck reached UGKAT without it): where it should have come, by itinerary.
        ["Departed KEMBA", "done"], ["Arrived at KEMAL", "skipped"], ["Left KEMAL", "skipped"],
        ["Crossed the border KEN → UGA", "done"], ["Arrived at UGKAT", "done"],
        ["Inspection authorised at UGKAT", "done"], ["Left UGKAT", "next"], ["Arrived at destination RWKGL", "pending"]]
    assert page.locator("#details .itinerary li.skipped .mark").first.inner_text() == "✕"
    assert "late data" in page.locator("#details .itinerary li", has_text="Crossed the border").inner_text()
    screenshot(page, "control-room-itinerary-states")
    # An override's reason is typed by an operator and a reason's detail names goods: text, never markup.
    risk = page.evaluate("""async () => {
        const { riskHtml } = await import("/itinerary.js");
        const box = document.createElement("div");
        box.innerHTML = riskHtml({ level: "high", computed: "medium", score: 20, reasons: [
            { factor: "goods", points: 20, detail: "<b>goods</b> not declared" }],
          override: { level: "high", by: "op<i>1</i>", reason: '<img src=x onerror="window.pwned=1">' } });
        document.body.append(box);
        return [box.textContent, box.querySelectorAll("img, b, i").length]; }""")
    assert '<img src=x onerror="window.pwned=1">' in risk[0] and "<b>goods</b> not declared" in risk[0]
    assert risk[1] == 0 and page.evaluate("window.pwned") is None
    assert errors.errors == []


def test_open_transit_conditions_colour_the_truck(browser: Browser, contexts: list[BrowserContext],
                                                 api_server: ApiServer) -> None:
    page, errors = _open(browser, contexts, api_server, subject="ui-truck-state")
    states = page.evaluate("""async () => {
        const { truckState } = await import("/trucks.js");
        const moving = { state: "online", spd: 60 };
        return ["route_reversal", "gps_jamming", "border_dwell", "low_battery", "suspicious_gap"]
            .map((type) => truckState(moving, new Set([type]))); }""")
    # Instantaneous alerts (a gap, a bypass) are ended when raised: they never colour a truck.
    assert states == ["off_route", "no_signal", "stopped", "on_route", "on_route"]
    assert errors.errors == []
