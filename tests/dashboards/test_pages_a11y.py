"""The control room, KPI and devices pages against WCAG 2.1 AA (axe-core, tests/dashboards/axe.py) in
both themes and both languages, switched in the page as a reader would (one browser context per page);
and the control room with the keyboard alone: an alert's details, the resolve and assign forms, the
trucks list, Escape closing each and the focus coming back."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.dashboards.axe import violations
from tests.dashboards.conftest import PageErrors
from tests.dashboards.world import Shipment, add_alert, shipments_on
from tests.support import ApiServer, execute
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = 9.5  # a parallel of its own
# Each page, and what must be on it before it is checked.
PAGES = {"control": ("/", "#feed li"), "kpi": ("/kpi/", "#transit"), "devices": ("/devices/", "tbody tr")}
SETTINGS = [("light", "en"), ("dark", "en"), ("dark", "fr"), ("light", "fr")]


def a_truck_with_alerts(database_url: str, name: str) -> tuple[Shipment, int]:
    """A shipment on the map (a latest position) with an open seal breach and a route deviation."""
    (shipment,) = shipments_on(database_url, name, LAT, 30.0, 31.0, 1)
    execute(database_url, "INSERT INTO latest_positions (device_id, seq, ts, lat, lon, spd, received_at) "
                          "VALUES (%s, 5, now(), %s, 30.4, 50, now())", (shipment.tracker, LAT))
    execute(database_url, "SELECT pg_notify('ctt_positions', '')")  # as ingest does: the stream reads them
    breach = add_alert(database_url, shipment, "seal_breach", 30.4, LAT, severity="critical")
    add_alert(database_url, shipment, "route_deviation", 30.3, LAT)
    return shipment, breach


def open_page(browser: Browser, contexts: list[BrowserContext], api: ApiServer, which: str,
              subject: str, **context: Any) -> tuple[Page, PageErrors]:
    path, ready = PAGES[which]
    contexts.append(browser.new_context(viewport={"width": 1400, "height": 900}, **context))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api.url.removesuffix('/api/v1')}{path}#token={mint(ApiSettings(), subject, 'operator')}")
    try:
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the page never got ready: {errors.errors}") from None
    page.locator(ready).first.wait_for(timeout=10_000)
    return page, errors


def choose(page: Page, theme: str, language: str) -> None:
    """Theme and language as the reader picks them in the header's preferences."""
    page.select_option("#pref-theme", theme)
    page.select_option("#pref-language", language)
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.wait_for_timeout(300)  # the redraw after a language change fetches nothing but lets the page settle


@pytest.mark.parametrize("which", list(PAGES))
def test_no_wcag_aa_violation_in_either_theme_or_language(
        which: str, browser: Browser, contexts: list[BrowserContext], api_server: ApiServer,
        database_url: str) -> None:
    shipment, _ = a_truck_with_alerts(database_url, f"axe{which}")
    page, errors = open_page(browser, contexts, api_server, which, f"ui-axe-{which}")
    if which == "control":
        page.evaluate("id => window.ctt.details.show(id)", shipment.id)  # the details panel is checked too
        page.locator("#details h3").wait_for()
        page.locator("#trucks-list-box summary").click()
    if which == "devices":
        page.fill("#q", shipment.tracker)
        page.locator(f"tr[data-id='{shipment.tracker}'] button.open").click()
        page.locator("#details h2").wait_for()
    found = {}
    for theme, language in SETTINGS:
        choose(page, theme, language)
        found[(theme, language)] = violations(page)
    assert found == {s: [] for s in SETTINGS}
    assert errors.errors == []


def test_the_control_room_with_the_keyboard_alone(browser: Browser, contexts: list[BrowserContext],
                                                  api_server: ApiServer, database_url: str) -> None:
    shipment, breach = a_truck_with_alerts(database_url, "keys")
    page, errors = open_page(browser, contexts, api_server, "control", "ui-keys")
    page.wait_for_function("id => window.ctt.trucks.trucks.has(id)", arg=shipment.id, timeout=10_000)
    kb = page.keyboard
    # The first Tab reaches the skip link; it leads to the alerts.
    kb.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    kb.press("Enter")
    expect(page.locator("#feed-section")).to_be_focused()
    # An alert's label is a link: Enter opens its shipment's details, with the focus on their heading.
    row = page.locator(f'#feed li[data-ids~="{breach}"]')
    row.locator("a.open").focus()
    kb.press("Enter")
    expect(page.locator("#details h3")).to_be_focused()
    expect(page.locator("#details h3")).to_contain_text(shipment.reference)
    # Escape closes them and gives the focus back to the alert.
    kb.press("Escape")
    expect(page.locator("#details")).to_be_hidden()
    expect(row.locator("a.open")).to_be_focused()
    # Resolve…: Space opens the form on its outcome; Escape closes it, the focus back on "Resolve…".
    resolve = row.get_by_role("button", name="Resolve…")
    resolve.focus()
    kb.press("Space")
    expect(row.locator("select.outcome")).to_be_focused()
    kb.press("Tab")
    expect(row.locator("input")).to_be_focused()
    kb.press("Escape")
    expect(row.get_by_role("button", name="Resolve…")).to_be_focused()
    # Assign… in the details: Enter opens the form on its first field; Escape closes it, focus back.
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    assign = page.locator(f'#details .shipment-alerts li[data-id="{breach}"] .assign')
    assign.focus()
    kb.press("Enter")
    expect(page.locator("#details .assign-form input[name=assignee]")).to_be_focused()
    kb.press("Escape")
    expect(page.locator("#details .assign-form")).to_have_count(0)
    expect(assign).to_be_focused()
    # The trucks list (the map's text alternative): opened and used with the keyboard.
    page.locator("#trucks-list-box summary").focus()
    kb.press("Enter")
    truck = page.locator(f'#trucks-list button[data-id="{shipment.id}"]')
    expect(truck).to_contain_text("Seal breached")  # the state in words, beside its shape
    truck.focus()
    # Focus is visible: the focused button has an outline.
    assert truck.evaluate("b => getComputedStyle(b).outlineStyle") != "none"
    kb.press("Enter")
    expect(page.locator("#details h3")).to_be_focused()
    # States are told by shape and word as well as colour: five shapes in the legend, each named.
    legend = page.locator(".trucks-legend")
    expect(legend.locator("svg path")).to_have_count(5)
    assert len(set(legend.locator("svg path").evaluate_all("ps => ps.map(p => p.getAttribute('d'))"))) == 5
    for word in ("Seal breached", "Off route", "No signal", "Stopped", "On route"):
        expect(legend).to_contain_text(word)
    assert errors.errors == []
