"""The KPI page's issue-13 parts in real Chromium, on milestones and alerts in the test database:
the time spent at each border post (chart: median inside p90), per segment and per country
(tables), the CSV download, and per risk level the alerts and how officers judged them. An
officer's figures cover their region only, so each test's region holds only its own shipments."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.conftest import ApiOffers, PageErrors, screenshot
from tests.dashboards.world import add_alert, add_border_post, add_milestone, add_region, shipments_on, through
from tests.support import ApiServer, execute, query, unique_prefix
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

HOUR = timedelta(hours=1)


def _open(browser: Browser, contexts: list[BrowserContext], api: ApiServer, region: str) -> tuple[Page, PageErrors]:
    contexts.append(browser.new_context(viewport={"width": 1280, "height": 1300}, accept_downloads=True))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    token = mint(ApiSettings(), "officer.kpi", "officer", region)
    page.goto(f"{api.url.removesuffix('/api/v1')}/kpi/#token={token}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    return page, errors


def _cells(page: Page, section: str, first: str) -> list[str]:
    return page.locator(f"#{section} tr", has_text=first).first.locator("td").all_inner_texts()


def test_time_release_chart_tables_and_csv(browser: Browser, contexts: list[BrowserContext], api_server: ApiServer,
                                           database_url: str, api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.path("/kpi/time-release"), "GET /kpi/time-release"),
                       (api_offers.enum("ZoneProperties", "kind", "border_post"), "zones of kind border_post"))
    lat = 14.0
    region = unique_prefix("K").upper()
    add_region(database_url, region, 21.9, lat - 0.2, 23.1, lat + 0.2)
    shipments = shipments_on(database_url, "kpitr", lat, 22.0, 23.0, 3)
    post = add_border_post(database_url, "kpipost", 22.5, lat, "KEN")
    departure, destination = query(database_url, "SELECT office_of_departure, office_of_destination FROM shipments"
                                                  " WHERE id = %s", (shipments[0].id,))[0]
    for i, s in enumerate(shipments):
        through(database_url, s, post)
        departed: datetime = query(database_url, "UPDATE shipments SET departed_at = now() - interval '2 days'"
                                                 " WHERE id = %s RETURNING departed_at", (s.id,))[0][0]
        to_post, inside, stationary = (2 + i) * HOUR, (1 + i) * 3600.0, (1 + i) * 1800.0
        left = departed + to_post + timedelta(seconds=inside)
        add_milestone(database_url, s, "departed", departed, departure, "KEN", position=0)
        add_milestone(database_url, s, "arrived", departed + to_post, post, "KEN", position=1)
        add_milestone(database_url, s, "departed", left, post, "KEN", position=1, inside_s=inside,
                      stationary_s=stationary)
        add_milestone(database_url, s, "border_crossed", left + timedelta(minutes=1), None, "UGA",
                      **{"from": "KEN", "to": "UGA"})
        add_milestone(database_url, s, "arrived", left + 5 * HOUR, destination, "UGA", position=2)

    page, errors = _open(browser, contexts, api_server, region)
    # Dwell 1800/3600/5400 s, inside 3600/7200/10800 s: median, then p90 by linear interpolation.
    bar = page.locator(f'#posts g[data-post="{post}"]')
    assert bar.locator("text.post").text_content() == f"{post} · KEN"
    assert page.locator(f'#posts g[data-post="{post}"][data-measure="dwell"] .value').text_content() \
        == "1 h 00 min / 1 h 24 min"
    assert page.locator(f'#posts g[data-post="{post}"][data-measure="inside"] .value').text_content() \
        == "2 h 00 min / 2 h 48 min"
    # Departure to the post 2/3/4 h; the post to destination 5 h each; in Kenya 3/5/7 h + 1 min.
    assert [r.locator("td").all_inner_texts()[:5] for r in page.locator("#segments tbody tr").all()] == [
        [departure, post, "3", "3 h 00 min", "3 h 48 min"], [post, destination, "3", "5 h 00 min", "5 h 00 min"]]
    assert _cells(page, "countries", "KEN")[:4] == ["KEN", "3", "5 h 01 min", "6 h 37 min"]

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("time-release-")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("section,office_code")
    assert any(line.startswith(f"post,{post},") and ",3," in line for line in lines)
    screenshot(page, "kpi-time-release")
    assert errors.errors == []


def test_alerts_and_outcomes_per_risk_level(browser: Browser, contexts: list[BrowserContext], api_server: ApiServer,
                                           database_url: str, api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.path("/kpi/risk"), "GET /kpi/risk"))
    lat = 15.0
    region = unique_prefix("Q").upper()
    add_region(database_url, region, 21.9, lat - 0.2, 23.1, lat + 0.2)
    high, low = shipments_on(database_url, "kpirisk", lat, 22.0, 23.0, 2)
    execute(database_url, "UPDATE shipments SET risk_level = 'high' WHERE id = %s", (high.id,))
    execute(database_url, "UPDATE shipments SET risk_level = 'low' WHERE id = %s", (low.id,))
    for kind, outcome in (("route_deviation", "confirmed_irregularity"), ("unscheduled_stop", "false_alarm"),
                          ("route_reversal", "goods_seized"), ("border_dwell", None)):
        alert_id = add_alert(database_url, high, kind, 22.5, lat)
        if outcome:
            execute(database_url, "UPDATE alerts SET status = 'resolved', resolved_by = 'o', resolved_at = now(),"
                                  " note = 'checked', outcome = %s WHERE id = %s", (outcome, alert_id))
    add_alert(database_url, low, "low_battery", 22.6, lat, severity="low")

    page, errors = _open(browser, contexts, api_server, region)
    rows = {r.locator("td").first.inner_text().lower(): r.locator("td").all_inner_texts()[1:]
            for r in page.locator("#risk tbody tr").all()}
    # Shipments, alerts, confirmed, false alarms, not resolved, confirmed share, false alarm share (of resolved).
    assert rows == {"low": ["1", "1", "0", "0", "1", "–", "–"], "medium": ["0", "0", "0", "0", "0", "–", "–"],
                    "high": ["1", "4", "2", "1", "1", "67 %", "33 %"]}
    page.locator("#risk").scroll_into_view_if_needed()
    screenshot(page, "kpi-risk")
    assert errors.errors == []
