"""The basemap in real Chromium, offline: town names of the Northern Corridor from GET /places, never
overlapping, in the theme's colours (axe finds nothing on the map in either theme), and a metric scale bar."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page

from tests.dashboards.axe import violations
from tests.dashboards.conftest import screenshot
from tests.dashboards.test_control_room import open_control_room
from tests.support import ApiServer
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

CORRIDOR = [[-4.3, 36.6], [-1.1, 39.9]]  # Mombasa to Nairobi, [lat, lon] corners
NAMES = ".ctt-place span"
# Every label's box against every other's: [] when none overlap.
OVERLAPS = """sel => {
  const r = [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect());
  const out = [];
  r.forEach((a, i) => r.slice(i + 1).forEach(b => {
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push([a, b]);
  }));
  return out.length;
}"""


def shown(page: Page, *towns: str) -> None:
    page.wait_for_function("""towns => { const n = [...document.querySelectorAll('.ctt-place span')]
        .map(e => e.textContent); return towns.every(t => n.includes(t)); }""", arg=list(towns), timeout=10_000)


def test_the_corridor_shows_its_towns_and_a_scale_bar(browser: Browser, contexts: list[BrowserContext],
                                                      api_server: ApiServer) -> None:
    page, errors = open_control_room(browser, contexts, api_server, mint(ApiSettings(), "ui-places", "operator"))
    page.evaluate(f"() => {{ window.ctt.map.fitBounds({CORRIDOR}, {{ animate: false }}); }}")
    shown(page, "Mombasa", "Nairobi", "Machakos", "Mtito Andei")
    names = page.locator(NAMES).all_inner_texts()
    assert 8 <= len(names) <= 80, names  # a density, not every one of the corridor's ~120 towns
    assert page.evaluate(OVERLAPS, NAMES) == 0
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and scale.inner_text().endswith(" km")  # metric only
    assert "GeoNames" in page.locator(".leaflet-control-attribution").inner_text()  # CC BY 4.0 asks for it
    screenshot(page, "control-room-places")
    assert violations(page, "#map") == []
    # Closer, more names: Voi, which a county seat nearby hides at the corridor's scale.
    page.evaluate("() => { window.ctt.map.setView([-3.4, 38.56], 10, { animate: false }); }")
    shown(page, "Voi")
    assert page.evaluate(OVERLAPS, NAMES) == 0

    light = page.locator(NAMES).first.evaluate("e => getComputedStyle(e).color")
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    assert page.locator(NAMES).first.evaluate("e => getComputedStyle(e).color") != light
    screenshot(page, "control-room-places-dark")
    assert violations(page, "#map") == []
    assert errors.errors == []
