"""The control room in real Chromium: the offline map is drawn, a truck moves when the
simulator publishes (and when a tracker does), a seal breach reaches the feed within 5 s, ack from the feed
reaches the database, the track replay shows where the alert happened, a withdrawn alert leaves the feed
live and a contested one says so, a resync reloads the feed, and a role that may not act is not offered
the buttons."""

from __future__ import annotations

import threading
import time

import psycopg
from playwright.sync_api import Browser, BrowserContext, Page

from ctt.transit import register
from firmware_sim.runner import SimClock, Simulation
from firmware_sim.scenarios import quiet_fleet
from protocol.records import Fix, SealEvent, encode
from tests.dashboards.conftest import PageErrors, screenshot
from tests.dashboards.world import Shipment, shipments_on
from tests.support import (
    ApiServer,
    Device,
    IngestProcess,
    device_link,
    provision,
    query,
    unique_prefix,
    wait_for,
)
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = -0.5  # a parallel of its own: no other test's route is drawn over this one


def open_control_room(browser: Browser, contexts: list[BrowserContext], api: ApiServer,
                      token: str) -> tuple[Page, PageErrors]:
    contexts.append(browser.new_context(viewport={"width": 1400, "height": 850}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api.url.removesuffix('/api/v1')}/#token={token}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    return page, errors


def marker_lon(page: Page, shipment: Shipment) -> float | None:
    lon = page.evaluate("id => { const p = window.ctt.trucks.position(id); return p && p.lng; }", shipment.id)
    return None if lon is None else float(lon)


def test_the_map_is_drawn_offline_and_the_token_leaves_the_address_bar(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer) -> None:
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-viewer", "operator"))
    assert page.evaluate("window.ctt.countries") >= 200  # Natural Earth's countries, from the npm package
    assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
    assert "token" not in page.url
    assert page.locator("#who").inner_text() == "ui-viewer · operator"
    assert errors.errors == []


def test_a_truck_moves_when_the_simulator_publishes(browser: Browser, contexts: list[BrowserContext],
                                                   api_server: ApiServer, ingest: IngestProcess,
                                                   database_url: str) -> None:
    # Two trucks of the simulator's Northern Corridor fleet, 20 simulated minutes in 20 s.
    clock = SimClock.ending_now(20 * 60, 60.0)
    fleet = quiet_fleet(clock.start_ms, 20 * 60, trucks=2, prefix=unique_prefix("uisim"))
    with psycopg.connect(database_url) as conn:
        shipment_id = next(iter(register(conn, fleet).values()))
    provision([d.device_id for d in fleet.devices])
    sim = Simulation(fleet.devices, clock, fleet.end_ms, device_link)
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-sim", "operator"))
    stop = threading.Event()
    runner = threading.Thread(target=sim.run, kwargs={"stop": stop, "drain_s": 2.0}, daemon=True)
    runner.start()
    try:
        where = "id => { const p = window.ctt.trucks.position(id); return p && [p.lat, p.lng]; }"
        first = wait_for(lambda: page.evaluate(where, shipment_id), 20, "the simulated truck on the map")
        wait_for(lambda: page.evaluate(where, shipment_id) != first, 20, "the simulated truck to move")
    finally:
        stop.set()
        runner.join(30)
    assert errors.errors == []


def test_live_truck_seal_breach_ack_and_replay(browser: Browser, contexts: list[BrowserContext],
                                              api_server: ApiServer, ingest: IngestProcess,
                                              database_url: str) -> None:
    (shipment,) = shipments_on(database_url, "ui", LAT, 36.0, 37.0, 1)
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-operator", "operator"))
    now = int(time.time() * 1000)
    with Device(shipment.tracker) as tracker, Device(shipment.seal) as seal:
        tracker.publish_all([("pos", encode(Fix(seq=0, ts=now - 60_000, lat=LAT, lon=36.10, spd=55.0)))])
        wait_for(lambda: marker_lon(page, shipment) == 36.10, 10, "the truck on the map")
        tracker.publish_all([("pos", encode(Fix(seq=1, ts=now - 45_000, lat=LAT, lon=36.12, spd=55.0)))])
        wait_for(lambda: marker_lon(page, shipment) == 36.12, 10, "the truck to move")

        armed = SealEvent(seq=0, ts=now - 3_600_000, seal_id=shipment.seal, event="armed", lat=LAT, lon=36.0)
        opened = SealEvent(seq=1, ts=now - 30_000, seal_id=shipment.seal, event="opened", lat=LAT, lon=36.12)
        seal.publish_all([("seal", encode(armed)), ("seal", encode(opened))])
        published = time.monotonic()
        item = page.locator("#feed li", has_text=shipment.reference).filter(has_text="Seal breach")
        item.wait_for(timeout=5_000)
        assert time.monotonic() - published < 5.0
        assert "flash" in (item.get_attribute("class") or "")  # the highlight (and the sound) of a new breach
        wait_for(lambda: page.evaluate("id => window.ctt.trucks.trucks.get(id).state", shipment.id)
                 == "seal_breached", 5, "the truck coloured as breached")
        tracker.publish_all([("pos", encode(Fix(seq=2, ts=now - 15_000, lat=LAT, lon=36.125, spd=0.0)))])
        wait_for(lambda: marker_lon(page, shipment) == 36.125, 10, "the last position")

    item.get_by_role("button", name="Acknowledge").click()
    rows = wait_for(lambda: query(database_url, "SELECT status, acknowledged_by FROM alerts WHERE shipment_id = %s "
                                                "AND type = 'seal_breach' AND status = 'acknowledged'",
                                  (shipment.id,)), 5, "the acknowledgement in the database")
    assert rows == [("acknowledged", "ui-operator")]
    page.locator("#feed li", has_text=shipment.reference).filter(has_text="acknowledged").wait_for(timeout=5_000)
    screenshot(page, "control-room")

    _click_truck(page, shipment)
    page.locator("#details h3", has_text=shipment.reference).wait_for(timeout=5_000)
    details = page.locator("#details").inner_text()
    assert shipment.tracker in details and shipment.seal in details
    page.get_by_role("button", name="Replay track").click()
    slider = page.locator("#replay input[type=range]")
    slider.wait_for(timeout=5_000)
    assert slider.get_attribute("max") == "2"  # three fixes
    assert page.locator("#replay li.active").count() == 0  # the breach came after the first fix
    slider.fill("2")
    assert page.locator("#replay li.active", has_text="Seal breach").count() == 1
    screenshot(page, "control-room-replay")
    assert errors.errors == []


def _click_truck(page: Page, shipment: Shipment) -> None:
    # A real click on the canvas, where the truck is drawn.
    point = page.evaluate("""id => {
        const map = window.ctt.map;
        map.setView(window.ctt.trucks.position(id), 12, {animate: false});
        const p = map.latLngToContainerPoint(window.ctt.trucks.position(id));
        const box = map.getContainer().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", shipment.id)
    page.mouse.click(point[0], point[1])


def test_an_integrator_is_not_offered_alert_actions(browser: Browser, contexts: list[BrowserContext],
                                                    api_server: ApiServer, database_url: str) -> None:
    (shipment,) = shipments_on(database_url, "uiint", LAT - 0.3, 36.0, 37.0, 1)
    query(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity, lat, lon)"
                        " VALUES ('route_deviation', %s, %s, now(), now(), 'high', %s, 36.5) RETURNING id",
          (shipment.id, shipment.tracker, LAT - 0.3))
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-integrator", "integrator"))
    item = page.locator("#feed li", has_text=shipment.reference)
    item.wait_for(timeout=5_000)
    assert item.locator("button").count() == 0
    assert errors.errors == []


def _add_alert(database_url: str, shipment: Shipment, kind: str, lat: float) -> int:
    rows = query(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity,"
                               " lat, lon) VALUES (%s, %s, %s, now(), now(), 'high', %s, 36.5) RETURNING id",
                 (kind, shipment.id, shipment.tracker, lat))
    return int(rows[0][0])


def test_a_withdrawal_leaves_the_feed_live_and_a_contested_alert_says_so(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str) -> None:
    (shipment,) = shipments_on(database_url, "uiwd", LAT - 0.6, 36.0, 37.0, 1)
    withdrawn = _add_alert(database_url, shipment, "unscheduled_stop", LAT - 0.6)
    disputed = _add_alert(database_url, shipment, "route_deviation", LAT - 0.6)
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-live", "operator"))
    item = {i: page.locator(f'#feed li[data-id="{i}"]') for i in (withdrawn, disputed)}
    item[withdrawn].wait_for(timeout=5_000)
    assert item[disputed].count() == 1 and item[disputed].locator(".contested").count() == 0

    # What the engine does when late data shows the stop never happened, and when it disputes an
    # alert an officer has acknowledged: one alert change each, on the live stream.
    query(database_url, "UPDATE alerts SET detail = detail || '{\"withdrawn\": true}', updated_at = now()"
                        " WHERE id = %s RETURNING id", (withdrawn,))
    query(database_url, "UPDATE alerts SET status = 'acknowledged', acknowledged_by = 'o', acknowledged_at = now(),"
                        " updated_at = now() WHERE id = %s RETURNING id", (disputed,))
    query(database_url, "UPDATE alerts SET contested_reason = 'late fixes show the truck on its route',"
                        " updated_at = now() WHERE id = %s RETURNING id", (disputed,))
    item[withdrawn].wait_for(state="detached", timeout=5_000)
    label = item[disputed].locator(".contested")
    label.wait_for(timeout=5_000)
    assert label.inner_text() == "contested: late fixes show the truck on its route"
    page.evaluate("id => document.querySelector(`#feed li[data-id='${id}']`).scrollIntoView()", disputed)
    screenshot(page, "control-room-withdrawn-contested")

    # A resync (the server no longer keeps the changes this page missed) reloads the feed from the list:
    # an alert this page forgot comes back, the withdrawn one does not.
    page.evaluate("id => { window.ctt.feed.alerts.delete(id); window.ctt.feed.render(); }", disputed)
    assert item[disputed].count() == 0
    page.evaluate("window.ctt.stream.dispatchEvent(new MessageEvent('resync', {data: '{}'}))")
    label.wait_for(timeout=5_000)
    assert item[withdrawn].count() == 0
    assert errors.errors == []
