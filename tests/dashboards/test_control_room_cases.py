"""The control room's issue-14 parts in real Chromium: a shipment's alerts in its details with
"Assign…" (an officer and a unit) reaching the database, and, once an officer confirmed the
alert, the case link and the open-cases panel showing the case with its evidence."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext

from tests.dashboards.conftest import ApiOffers, PageErrors, screenshot
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer, execute, query, unique_prefix, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings
from tracking_api.services.cases import report_maker


def test_assign_from_the_details_then_the_case_link_and_panel(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str,
        api_offers: ApiOffers) -> None:
    api_offers.require((api_offers.path("/alerts/{alert_id}/assign"), "POST /alerts/{id}/assign"),
                       (api_offers.path("/cases"), "GET /cases"))
    lat = 17.0
    region = unique_prefix("C").upper()
    add_region(database_url, region, 21.9, lat - 0.2, 23.1, lat + 0.2)
    unit = f"{region}-MOBILE"
    execute(database_url, "INSERT INTO units (code, name, region) VALUES (%s, 'Mobile team', %s)", (unit, region))
    (shipment,) = shipments_on(database_url, "ccases", lat, 22.0, 23.0, 1)
    alert_id = add_alert(database_url, shipment, "seal_breach", 22.5, lat, severity="critical")

    contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api_server.url.removesuffix('/api/v1')}/#token={mint(ApiSettings(), 'ui-cases', 'operator')}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    item = page.locator(f'#details .shipment-alerts li[data-id="{alert_id}"]')
    assert item.locator(".assigned").inner_text() == "Not assigned"

    item.get_by_role("button", name="Assign…").click()
    item.locator("input[name=assignee]").fill("officer.malaba")
    item.locator("select[name=unit]").select_option(unit)
    item.get_by_role("button", name="Assign", exact=True).click()
    wait_for(lambda: query(database_url, "SELECT assignee, unit, assigned_by FROM alerts WHERE id = %s",
                           (alert_id,)) == [("officer.malaba", unit, "ui-cases")], 5, "the assignment")
    wait_for(lambda: item.locator(".assigned").inner_text() == f"Assigned to officer officer.malaba, unit {unit}", 5,
             "the details to show it")

    # An officer confirms it on site: a case opens; the details link to it and the panel lists it.
    page.evaluate("id => window.ctt.client.post(`/alerts/${id}/resolve`, {note: 'seal cut, goods seized', "
                  "outcome: 'goods_seized'})", alert_id)
    page.evaluate("id => Promise.all([window.ctt.details.show(id), window.ctt.details.cases.load()])", shipment.id)
    (case_id,) = query(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s", (alert_id,))[0]
    link = page.locator(f'#details .shipment-alerts li[data-id="{alert_id}"] .case-link')
    assert link.inner_text() == f"Case {case_id} (open)"
    assert page.locator(f'#cases li[data-case="{case_id}"]').inner_text().startswith(f"Case {case_id} · ")
    link.click()
    expected = ["track", "timeline", "seal events", "alerts", "audit"] + (["report"] if report_maker() else [])
    wait_for(lambda: page.locator("#case tr[data-evidence]").count() == len(expected), 5, "the case's evidence")
    assert page.locator("#case tr[data-evidence] td:first-child").all_inner_texts() == expected
    page.locator("#cases-section").scroll_into_view_if_needed()
    screenshot(page, "control-room-cases")
    assert errors.errors == []
