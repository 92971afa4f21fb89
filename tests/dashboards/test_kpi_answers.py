"""The KPI page's issue-14 panel in real Chromium: time to acknowledge and to resolve per
severity and region (table) and the outcome mix per alert type with its false-alarm rate
(chart), on alerts of a region of the test's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, BrowserContext

from tests.dashboards.conftest import ApiOffers, PageErrors, screenshot
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer, execute, unique_prefix
from tracking_api.auth import mint
from tracking_api.config import ApiSettings


def test_answer_times_and_outcome_mix(browser: Browser, contexts: list[BrowserContext], api_server: ApiServer,
                                      database_url: str, api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.path("/kpi/response"), "GET /kpi/response"),
                       (api_offers.path("/kpi/outcomes"), "GET /kpi/outcomes"))
    lat = 16.0
    region = unique_prefix("W").upper()
    add_region(database_url, region, 21.9, lat - 0.2, 23.1, lat + 0.2)
    (shipment,) = shipments_on(database_url, "kpians", lat, 22.0, 23.0, 1)
    # Medium risk whatever other tests' confirmed alerts did to the scoring: severities as given.
    execute(database_url, "UPDATE shipments SET risk_level = 'medium' WHERE id = %s", (shipment.id,))
    # Critical stops answered after 2, 4 and 6 min and resolved after 10, 20, 30: two false alarms, one seized.
    for minutes, outcome in ((2, "false_alarm"), (4, "false_alarm"), (6, "goods_seized")):
        alert_id = add_alert(database_url, shipment, "unscheduled_stop", 22.5, lat, severity="critical",
                             ended_at=datetime.now(UTC) - timedelta(minutes=minutes))
        execute(database_url, "UPDATE alerts SET created_at = now() - interval '1 hour', status = 'resolved',"
                              " acknowledged_at = now() - interval '1 hour' + %s * interval '1 minute',"
                              " resolved_at = now() - interval '1 hour' + %s * interval '1 minute',"
                              " outcome = %s WHERE id = %s", (minutes, 5 * minutes, outcome, alert_id))
    add_alert(database_url, shipment, "route_deviation", 22.6, lat, severity="high", escalation_level=1)

    contexts.append(browser.new_context(viewport={"width": 1280, "height": 1000}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api_server.url.removesuffix('/api/v1')}/kpi/#token="
              f"{mint(ApiSettings(), 'supervisor.kpi', 'supervisor', region)}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)

    rows = [r.locator("td").all_inner_texts() for r in page.locator("#answers tbody tr").all()]
    # Severity (in capitals), region, alerts, answered, median, p90, resolved, median and p90 to resolve, escalated.
    assert rows == [["CRITICAL", region, "3", "3", "4.0", "5.6", "3", "20.0", "28.0", "0"],
                    ["HIGH", region, "1", "0", "–", "–", "0", "–", "–", "1"]]
    stops = page.locator('#outcomes g[data-type="unscheduled_stop"]')
    assert stops.locator(".rate").text_content() == "67 % false alarms (3)"
    assert stops.locator("rect").evaluate_all("rs => rs.map(r => r.dataset.outcome)") == ["false_alarm",
                                                                                         "goods_seized"]
    page.locator("#answers").scroll_into_view_if_needed()
    screenshot(page, "kpi-answers")
    assert errors.errors == []
