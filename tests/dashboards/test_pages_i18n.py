"""The control room, KPI and devices pages in French: chosen by the browser's language, the key texts
from the catalogue, a date and a number formatted the French way; the dark theme following the device;
and a reader's choice of language and theme surviving a reload. Screenshots: control-room-fr.png,
kpi-fr.png, devices-fr.png, control-room-dark.png."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, expect

from tests.dashboards.conftest import screenshot
from tests.dashboards.test_pages_a11y import a_truck_with_alerts, choose, open_page
from tests.dashboards.world import shipments_on
from tests.support import ApiServer, execute, scalar

# "1 déc. 2026, 20:27 UTC": day, French month, year, 24-hour time.
FRENCH_DATE = re.compile(r"\b\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) "
                         r"\d{4}(,| à) \d{2}:\d{2}")
FRENCH = {"locale": "fr-FR"}  # the browser's language: the pages follow it with no choice made


def test_the_pages_in_french_follow_the_browser(browser: Browser, contexts: list[BrowserContext],
                                                 api_server: ApiServer, database_url: str) -> None:
    shipment, breach = a_truck_with_alerts(database_url, "frctl")
    arrived = shipments_on(database_url, "frkpi", 9.0, 30.0, 31.0, 3)
    for hours, s in zip((10, 20, 30), arrived, strict=True):
        execute(database_url, "UPDATE shipments SET status = 'arrived', departed_at = now() - interval '2 days',"
                              " arrived_at = now() - interval '2 days' + make_interval(hours => %s) WHERE id = %s",
                (hours, s.id))
    route = scalar(database_url, "SELECT r.name FROM routes r JOIN shipments s ON s.route_id = r.id WHERE s.id = %s",
                   (arrived[0].id,))

    page, errors = open_page(browser, contexts, api_server, "control", "ui-fr", **FRENCH)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_have_text("Salle de contrôle du transit")
    row = page.locator(f'#feed li[data-ids~="{breach}"]')
    expect(row).to_contain_text("Rupture de scellé")
    expect(row).to_contain_text("critique")
    expect(row.get_by_role("button", name="Prendre en charge")).to_be_visible()
    expect(page.locator(".leaflet-control-zoom-in")).to_have_attribute("title", "Zoom avant")
    expect(page.locator(".trucks-legend")).to_contain_text("Scellé rompu")
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    expect(page.locator("#details dl")).to_contain_text("Délai")
    deadline = page.locator("#details dt", has_text="Délai").locator("xpath=following-sibling::dd[1]").inner_text()
    assert FRENCH_DATE.search(deadline), deadline
    page.wait_for_function("id => window.ctt.trucks.trucks.has(id)", arg=shipment.id, timeout=10_000)
    screenshot(page, "control-room-fr")
    assert errors.errors == []

    page, errors = open_page(browser, contexts, api_server, "kpi", "ui-fr-kpi", **FRENCH)
    expect(page.locator("h1")).to_have_text("Performance du transit")
    cells = page.locator("#transit tr", has_text=route).locator("td").all_inner_texts()
    assert cells[:9] == [route, "3", "3", "20,0", "28,0", "20,0", "100 %", "0", "0"]  # a decimal comma
    assert FRENCH_DATE.search(page.locator("#window").inner_text())
    expect(page.locator("#transit th").first).to_have_text("Itinéraire")
    screenshot(page, "kpi-fr")
    assert errors.errors == []

    page, errors = open_page(browser, contexts, api_server, "devices", "ui-fr-dev", **FRENCH)
    expect(page.locator("h1")).to_have_text("Balises et scellés")
    page.fill("#q", shipment.tracker.rsplit("-", 2)[0])
    tracker = page.locator(f"tr[data-id='{shipment.tracker}']")
    expect(tracker).to_contain_text("balise")
    expect(tracker).to_contain_text("remise à")
    screenshot(page, "devices-fr")
    assert errors.errors == []


def test_the_dark_theme_follows_the_device_and_choices_survive_a_reload(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str) -> None:
    shipment, _ = a_truck_with_alerts(database_url, "dark")
    page, errors = open_page(browser, contexts, api_server, "control", "ui-dark", color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # "as the device": dark at night
    expect(page.locator("#pref-theme")).to_have_value("system")
    page.wait_for_function("id => window.ctt.trucks.trucks.has(id)", arg=shipment.id, timeout=10_000)
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    page.locator("#details h3").wait_for()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 21, 27)"
    screenshot(page, "control-room-dark")
    # The reader's choice is kept: French and the light theme after a reload, though the device says dark.
    choose(page, "light", "fr")
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(page.locator("#pref-language")).to_have_value("fr")
    expect(page.locator("h1")).to_have_text("Salle de contrôle du transit")
    assert errors.errors == []
