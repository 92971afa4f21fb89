"""The officer app offline first (issue 15): the list from the phone's IndexedDB with its age and
an offline banner; acknowledge, resolve and a case entry made offline, queued, and sent exactly
once when the network is back (one audit entry each); a resolution that another officer beat
shown as a conflict; a photo taken offline and uploaded later; English and French; axe."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.axe import violations
from tests.dashboards.conftest import screenshot
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer, query, scalar, unique_prefix, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

LAT = 46.2  # a parallel of its own
HERE = (LAT, 16.25)
# The smallest PNG: a 1x1 pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2a6b6f20000000049454e44ae426082")


def _api(api: ApiServer, token: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(f"{api.url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def _world(database_url: str, api: ApiServer, alerts: int) -> tuple[str, list[int], int]:
    """A region with ``alerts`` alerts on shipments of one route, and an open case (another officer
    resolved one more alert as a confirmed irregularity)."""
    region = unique_prefix("OFF").upper()
    add_region(database_url, region, 15.9, LAT - 0.3, 17.1, LAT + 0.3)
    shipments = shipments_on(database_url, "offline", LAT, 16.0, 17.0, alerts + 1)
    ids = [add_alert(database_url, s, "unscheduled_stop", 16.3 + 0.1 * i, LAT) for i, s in enumerate(shipments)]
    other = mint(ApiSettings(), "officer.other", "officer", region)
    status, alert = _api(api, other, f"/alerts/{ids[-1]}/resolve",
                         {"note": "undeclared goods", "outcome": "confirmed_irregularity"})
    assert status == 200, alert
    case = int(scalar(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s", (ids[-1],)))
    return region, ids[:-1], case


def _open(browser: Browser, contexts: list[BrowserContext], api: ApiServer, region: str,
          subject: str = "officer.kisumu", locale: str = "en-GB") -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  locale=locale, geolocation={"latitude": HERE[0], "longitude": HERE[1]},
                                  permissions=["geolocation"])
    contexts.append(context)
    page = context.new_page()
    page.goto(f"{api.url.removesuffix('/api/v1')}/officer/#token={mint(ApiSettings(), subject, 'officer', region)}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    # The service worker controls the page (the shell is cached) and the list is on the phone.
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
    page.wait_for_selector("body[data-fresh=true]")
    return context, page


def _audits(database_url: str, action: str, object_id: int) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM audit_log WHERE action = %s AND object_id = %s",
                      (action, str(object_id))))


def _axe_both_themes(page: Page) -> None:
    """No WCAG 2.1 AA violation in the light and the dark theme (chosen with prefs.js's select)."""
    for theme in ("dark", "light"):
        page.locator("#pref-theme").select_option(theme)
        page.wait_for_function(f"document.documentElement.dataset.theme === '{theme}'")
        assert violations(page) == [], theme


def _offline_reload(context: BrowserContext, page: Page) -> None:
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-cached=true]", timeout=10_000)
    page.wait_for_selector("#offline:not([hidden])")


def test_offline_actions_are_sent_once_and_a_conflict_is_shown(browser: Browser, contexts: list[BrowserContext],
                                                               api_server: ApiServer, database_url: str) -> None:
    region, (acked, resolved, beaten), case = _world(database_url, api_server, 3)
    context, page = _open(browser, contexts, api_server, region)
    page.wait_for_selector(f"#case-{case}")

    _offline_reload(context, page)
    banner = page.locator("#offline").inner_text()
    assert banner.startswith("Offline: showing what this phone saved, as of "), banner
    assert page.locator("#alerts li").count() == 3
    assert page.locator(f"#alert-{acked} .age").inner_text().startswith("as of ")

    page.locator(f"#alert-{acked}").get_by_role("button", name="Acknowledge").click()
    item = page.locator(f"#alert-{resolved}")
    item.get_by_role("button", name="Resolve…").click()
    item.locator("select").select_option("false_alarm")
    item.locator("textarea").fill("Driver asleep, seal intact")
    item.get_by_role("button", name="Resolve", exact=True).click()
    beaten_item = page.locator(f"#alert-{beaten}")
    beaten_item.get_by_role("button", name="Resolve…").click()
    beaten_item.locator("select").select_option("technical_fault")
    beaten_item.locator("textarea").press_sequentially("Tracker loose")
    beaten_item.get_by_role("button", name="Resolve", exact=True).press("Enter")  # the keyboard works too
    entry = page.locator(f"#case-{case} textarea")
    entry.fill("Photos of the load taken at the roadside")
    assert entry.input_value() == "Photos of the load taken at the roadside"
    page.locator(f"#case-{case}").get_by_role("button", name="Add entry").click()
    queue = "window.officer.state.outbox.map(r => r.kind + ':' + r.state).join(' ')"
    wait_for(lambda: page.evaluate(queue) == "ack:queued resolve:queued resolve:queued entry:queued", 10,
             "four queued actions")
    assert page.locator(".outbox.queued").count() == 4
    assert page.locator(f"#alert-{acked} .outbox").inner_text() == "Acknowledgement queued: sent when online"

    # Meanwhile another officer resolves one of them; the queue survives a reload.
    status, _ = _api(api_server, mint(ApiSettings(), "officer.rival", "officer", region), f"/alerts/{beaten}/resolve",
                     {"note": "seen first", "outcome": "false_alarm"})
    assert status == 200
    page.reload()
    page.wait_for_selector("body[data-cached=true]", timeout=10_000)
    wait_for(lambda: page.locator(".outbox.queued").count() == 4, 5, "the queue after a reload")
    assert _audits(database_url, "alert.acknowledged", acked) == 0
    screenshot(page, "officer-offline-queued")
    assert violations(page) == []

    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")  # as a phone regaining signal does
    wait_for(lambda: _audits(database_url, "alert.resolved", resolved) == 1, 15, "the queued resolution")
    wait_for(lambda: _audits(database_url, "case.entry_added", case) == 1, 10, "the queued case entry")
    assert _audits(database_url, "alert.acknowledged", acked) == 1
    conflict = page.locator(f"#alert-{beaten} .outbox.conflict")
    conflict.wait_for(timeout=10_000)
    wait_for(lambda: "already resolved by officer.rival at " in conflict.inner_text(), 5, "who resolved it first")
    assert conflict.get_attribute("role") == "alert"
    assert query(database_url, "SELECT resolved_by, outcome FROM alerts WHERE id = %s", (beaten,)) == [
        ("officer.rival", "false_alarm")]
    page.wait_for_selector("#offline", state="hidden")
    screenshot(page, "officer-conflict")
    assert violations(page) == []

    # Exactly once: a later drain (page timer, Background Sync) sends nothing again.
    page.evaluate("window.officer.flush()")
    page.reload()
    page.wait_for_selector("body[data-fresh=true]", timeout=10_000)
    assert (_audits(database_url, "alert.acknowledged", acked), _audits(database_url, "alert.resolved", resolved),
            _audits(database_url, "case.entry_added", case)) == (1, 1, 1)
    assert query(database_url, "SELECT count(*) FROM case_entries WHERE case_id = %s AND text LIKE 'Photos of%%'",
                 (case,)) == [(1,)]
    # The conflict stays until dismissed, by the keyboard.
    conflict = page.locator(f"#alert-{beaten} .outbox.conflict")
    conflict.get_by_role("button", name="Dismiss").focus()
    page.keyboard.press("Enter")
    wait_for(lambda: page.locator(f"#alert-{beaten}").count() == 0, 5, "the dismissed conflict's alert to go")


def test_photo_taken_offline_is_uploaded_later(browser: Browser, contexts: list[BrowserContext],
                                               api_server: ApiServer, database_url: str) -> None:
    region, (alert,), _ = _world(database_url, api_server, 1)
    context, page = _open(browser, contexts, api_server, region)
    context.set_offline(True)
    page.locator(f"#alert-{alert} input[type=file]").set_input_files(
        {"name": "seal.png", "mimeType": "image/png", "buffer": PNG})
    queued = page.locator(f"#alert-{alert} .outbox[data-kind=photo]")
    assert queued.inner_text() == "Photo queued: uploaded when online"
    path = page.evaluate("window.officer.state.outbox[0].path")
    assert path.startswith(f"/alerts/{alert}/photos?taken_at=") and f"lat={HERE[0]:.6f}" in path, path
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_for(lambda: queued.inner_text() == "Photo sent", 15, "the photo to be sent")
    digest = hashlib.sha256(PNG).hexdigest()
    audits = query(database_url, "SELECT detail->>'sha256' FROM audit_log WHERE action = 'photo.attached'"
                                 " AND detail->>'sha256' = %s", (digest,))
    assert len(audits) == 1


def test_french_and_english_offline_without_axe_violations(browser: Browser, contexts: list[BrowserContext],
                                                           api_server: ApiServer, database_url: str) -> None:
    region, (alert, _), _ = _world(database_url, api_server, 2)
    context, page = _open(browser, contexts, api_server, region, locale="fr-FR")
    assert page.locator("html").get_attribute("lang") == "fr"
    item = page.locator(f"#alert-{alert}")
    assert item.get_by_role("button", name="Prendre en charge").count() == 1
    page.locator(f"#alert-{alert} .actions").get_by_role("button", name="Aller au camion").click()
    geo = item.locator("a.geo")
    assert geo.inner_text() == "Ouvrir dans les cartes"
    assert (geo.get_attribute("href") or "").startswith(f"geo:{LAT:.6f},")
    assert item.locator(".meta.truck").count() in (0, 1)  # a position only when the tracker has reported
    page.locator("#pref-theme").select_option("dark")
    screenshot(page, "officer-fr-dark")
    _axe_both_themes(page)
    screenshot(page, "officer-fr")
    _offline_reload(context, page)
    assert page.locator("#offline").inner_text().startswith("Hors ligne")
    assert page.locator(f"#alert-{alert} .age").inner_text().startswith("état ")
    _axe_both_themes(page)
    screenshot(page, "officer-fr-offline")
    page.locator("#pref-language").select_option("en")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.locator("#offline").inner_text().startswith("Offline")
    assert item.get_by_role("button", name="Acknowledge").count() == 1
    assert violations(page) == []
    screenshot(page, "officer-en-offline")


def test_api_answers_stay_out_of_cache_storage_and_logout_forgets_them(
        browser: Browser, contexts: list[BrowserContext], api_server: ApiServer, database_url: str) -> None:
    region, (alert,), _ = _world(database_url, api_server, 1)
    _, page = _open(browser, contexts, api_server, region)
    page.reload()  # every request of this load passes through the service worker
    page.wait_for_selector("body[data-fresh=true]")  # the list fetched again
    page.wait_for_function("caches.has('ctt-officer-area')")
    cached = page.evaluate("""async () => {
        const urls = [];
        for (const name of await caches.keys())
            for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
        return urls; }""")
    api = [u for u in cached if u.startswith("/api/")]
    area = ("/api/v1/zones", "/api/v1/routes", f"/api/v1/regions/{region}", "/api/v1/places")  # public geography
    assert api and all(u in area for u in api), api
    assert "/static/locales/fr.json" in cached and "/static/i18n.js" in cached
    stored = ("() => import('/officer/store.js')"
              ".then(async (s) => [(await s.all('alerts')).length, await s.value('meta', 'token')])")
    assert page.evaluate(stored)[0] == 1
    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("#login:not([hidden])")
    wait_for(lambda: page.evaluate(stored) == [0, None], 5, "the phone's copy to be deleted")
    assert page.evaluate("caches.has('ctt-officer-area')") is False
    assert page.locator(f"#alert-{alert}").count() == 0
