"""Photos from the roadside in the control room, in real Chromium: an alert's photo in the
shipment's details (thumbnail, when, where, who, SHA-256), the full image in a dialog that
Escape closes, the same photo in the case panel, in English and French, axe-clean."""

from __future__ import annotations

import hashlib

import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.axe import violations
from tests.dashboards.conftest import PageErrors, screenshot
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer, query, unique_prefix, wait_for
from tests.tracking_api.photo_support import TAKEN, image
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LOADED = "img => img.complete && img.naturalWidth > 0"


def _language(page: Page, code: str) -> None:
    # The catalogues as the page starts them (the control room calls startLanguage once P3's part
    # is merged; calling it again here is harmless), then the language asked for.
    page.evaluate("""async code => {
        const i18n = await import('/static/i18n.js');
        await i18n.startLanguage(await (await fetch('/config.json')).json());
        await i18n.setLanguage(code);
    }""", code)


def test_an_alerts_photo_in_the_details_and_the_case_panel_in_both_languages(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str) -> None:
    lat = 15.0
    region = unique_prefix("P").upper()
    add_region(database_url, region, 21.9, lat - 0.2, 23.1, lat + 0.2)
    (shipment,) = shipments_on(database_url, "cphotos", lat, 22.0, 23.0, 1)
    alert_id = add_alert(database_url, shipment, "seal_breach", 22.5, lat, severity="critical")
    officer = {"Authorization": f"Bearer {mint(ApiSettings(), 'ui-photo-officer', 'officer', region)}"}
    resolved = requests.post(f"{api_server.url}/alerts/{alert_id}/resolve", timeout=10, headers=officer,
                             json={"note": "seal cut", "outcome": "goods_seized"})
    assert resolved.status_code == 200, resolved.text
    content = image("JPEG", (800, 600), "darkred")
    uploaded = requests.post(f"{api_server.url}/alerts/{alert_id}/photos", params=TAKEN, data=content, timeout=10,
                             headers={**officer, "Content-Type": "image/jpeg"})
    assert uploaded.status_code == 201, uploaded.text
    digest = hashlib.sha256(content).hexdigest()

    contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
    page = contexts[-1].new_page()
    errors = PageErrors(page)
    page.goto(f"{api_server.url.removesuffix('/api/v1')}/#token={mint(ApiSettings(), 'ui-photos', 'operator')}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    _language(page, "en")
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    photo = page.locator(f'#details .shipment-alerts li[data-id="{alert_id}"] .photo')
    photo.wait_for(timeout=5_000)
    wait_for(lambda: photo.locator("img").evaluate(LOADED), 5, "the thumbnail")
    caption = photo.inner_text()
    for text in ("Taken ", "UTC", "By ui-photo-officer", f"SHA-256 {digest[:16]}", str(TAKEN["note"]),
                 "Position -3.3961"):
        assert text in caption, (text, caption)
    assert (photo.locator("img").get_attribute("alt") or "").startswith(f"Photo {uploaded.json()['id']} taken ")
    assert violations(page, "#details .photos") == []

    # Keyboard: the thumbnail is a button; Enter opens the full image, Escape closes it.
    photo.locator("button.thumb").focus()
    page.keyboard.press("Enter")
    full = page.locator("dialog.photo-full img")
    wait_for(lambda: full.evaluate("img => img.complete && img.naturalWidth === 800"), 5, "the full image")
    assert digest in page.locator("dialog.photo-full").inner_text()
    screenshot(page, "control-room-photo-full")
    page.keyboard.press("Escape")
    wait_for(lambda: page.locator("dialog.photo-full").count() == 0, 5, "the dialog to close")

    (case_id,) = query(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s", (alert_id,))[0]
    page.evaluate("id => window.ctt.details.cases.open(id)", case_id)
    in_case = page.locator("#case .photos .photo")
    in_case.wait_for(timeout=5_000)
    assert "By ui-photo-officer" in in_case.inner_text()

    _language(page, "fr")
    page.evaluate("id => window.ctt.details.show(id)", shipment.id)
    photo.wait_for(timeout=5_000)
    wait_for(lambda: "Par ui-photo-officer" in photo.inner_text() and "Prise le" in photo.inner_text(), 5,
             "the French caption")
    wait_for(lambda: photo.locator("img").evaluate(LOADED), 5, "the thumbnail")
    photo.scroll_into_view_if_needed()
    screenshot(page, "control-room-photos-fr")
    assert errors.errors == []
