"""The devices page in real Chromium: a truck's devices with their battery forecast, custody
and flags as labels, sorting, a filter, and one device's details."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, expect

from tests.dashboards.conftest import PageErrors, screenshot
from tests.dashboards.world import shipments_on
from tests.support import ApiServer, execute
from tracking_api.auth import mint
from tracking_api.config import ApiSettings


def statuses(database_url: str, device_id: str, levels: list[float]) -> None:
    """Hourly statuses ending now with ``levels`` (%), and the device row ingest would keep."""
    for i, bat in enumerate(levels):
        execute(database_url, "INSERT INTO device_status (device_id, ts, state, bat, received_at) VALUES "
                              "(%s, now() - make_interval(hours => %s), 'online', %s, now())",
                (device_id, len(levels) - 1 - i, bat))
    execute(database_url, "INSERT INTO devices (device_id, state, state_ts, fw, bat) VALUES (%s, 'online', now(), "
                          "'2.4.1', %s)", (device_id, levels[-1]))


def test_devices_with_forecast_custody_and_flags(browser: Browser, contexts: list[BrowserContext],
                                                 api_server: ApiServer, database_url: str) -> None:
    healthy, draining, missing = shipments_on(database_url, "devpage", -8.0, 22.0, 23.0, 3)
    statuses(database_url, healthy.tracker, [99, 98.5, 98, 97.6, 97])
    statuses(database_url, draining.tracker, [80, 65, 50, 35, 20])  # 15 %/h: empty in 1.3 h, deadline in 47 h
    statuses(database_url, draining.seal, [90, 89, 88])
    execute(database_url, "INSERT INTO latest_positions (device_id, seq, ts, lat, lon, received_at) "
                          "VALUES (%s, 9, now(), -8.0, 22.4, now())", (healthy.tracker,))
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() - interval '3 days' "
                          "WHERE id = %s", (missing.id,))
    prefix = healthy.tracker.rsplit("-", 2)[0]

    contexts.append(browser.new_context(viewport={"width": 1500, "height": 800}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api_server.url.removesuffix('/api/v1')}/devices/#token={mint(ApiSettings(), 'ui-dev', 'operator')}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    page.fill("#q", prefix)
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(6)
    # Sorted by battery, lowest first: the draining tracker leads, the seals never heard from come last.
    page.click("th[data-sort=battery] button")
    page.click("th[data-sort=battery] button")
    expect(page.locator("th[data-sort=battery]")).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_have_attribute("data-id", draining.tracker)
    first = rows.first.inner_text()
    assert "20 %" in first and "will not last to deadline" in first and "−15.0 %/h" in first
    healthy_row = page.locator(f"tr[data-id='{healthy.tracker}']").inner_text()
    assert "lasts to deadline" in healthy_row and "2.4.1" in healthy_row and "tracker" in healthy_row
    assert "issued at" in healthy_row and "no signing key" in healthy_row
    assert "missing after arrival" in page.locator(f"tr[data-id='{missing.tracker}']").inner_text()
    assert "(truck)" in page.locator(f"tr[data-id='{healthy.seal}']").inner_text()  # located by its tracker
    # Flagged only: the arrived truck's two devices.
    page.check("#flagged")
    expect(rows).to_have_count(2)
    page.uncheck("#flagged")
    expect(rows).to_have_count(6)
    page.locator(f"tr[data-id='{missing.tracker}']").click()
    details = page.locator("#details")
    expect(details).to_be_visible()
    expect(details).to_contain_text("not returned")
    expect(details).to_contain_text(missing.reference)
    screenshot(page, "devices")
    assert errors.errors == []
