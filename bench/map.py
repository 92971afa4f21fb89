"""Control-room map with 10,000 trucks in real headless Chromium: ours
(``dashboards/control/trucks.js``: one canvas, one path per colour, one redraw per
animation frame) against Leaflet's circle markers on its canvas renderer
(``preferCanvas``, one path and one redraw request per truck) and against one
DOM marker per truck (``L.marker`` with a ``divIcon``), same run, same machine.

For each: the time to draw all trucks once, then the gaps between animation
frames while every frame brings a burst of position updates (as the live
stream delivers them): median and p95 frame time, 16.7 ms being 60 fps. Last
line: ``ratio_leaflet=<leaflet/ours> ratio_dom=<dom/ours>`` of the p95 frame time
(what a stutter is made of).

    .venv/bin/python -m bench.map [--quick]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import threading
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page, Route, sync_playwright

from ctt.config import REPO_ROOT
from tests.dashboards.conftest import CHROMIUM, FLAGS


@dataclass(frozen=True)
class Scale:
    trucks: int
    burst: int
    rounds: int


# 100 updates a frame is 6,000 a second: 10,000 trucks reporting every 30 s send 333.
FULL = Scale(trucks=10_000, burst=100, rounds=300)
QUICK = Scale(trucks=2_000, burst=100, rounds=60)

HARNESS = """<!doctype html><html><head>
<link rel="stylesheet" href="/node_modules/leaflet/dist/leaflet.css">
<style>html, body, #map { margin: 0; height: 100%; } .truck { background: #2e7d32; border-radius: 50%; }</style>
<script src="/node_modules/leaflet/dist/leaflet.js"></script>
<script type="module">
import { TruckLayer } from "/control/trucks.js";
const map = L.map("map", { preferCanvas: true }).setView([-1.5, 35.5], 7);
const rng = (() => { let s = 7; return () => (s = (s * 16807) % 2147483647) / 2147483647; })();
const where = () => [33 + 5 * rng(), -4 + 4 * rng()];
const feature = (id, [lon, lat]) => ({ id, type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] },
  properties: { shipment: id, reference: `R${id}`, device: `d${id}`, spd: 60, state: "online", open_alerts: [] } });
const painted = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));

class LeafletCircles {  // peer: Leaflet's circle markers on its canvas renderer (preferCanvas)
  constructor() { this.markers = new Map(); this.renderer = L.canvas(); }
  update(f) {
    const [lon, lat] = f.geometry.coordinates;
    const m = this.markers.get(f.id);
    if (m) m.setLatLng([lat, lon]);
    else this.markers.set(f.id, L.circleMarker([lat, lon], { renderer: this.renderer, radius: 6, weight: 1.5,
      color: "#fff", fillColor: "#2e7d32", fillOpacity: 0.95 }).addTo(map));
  }
}

class DomTrucks {  // peer: one DOM element per truck
  constructor() { this.markers = new Map(); }
  update(f) {
    const [lon, lat] = f.geometry.coordinates;
    const m = this.markers.get(f.id);
    if (m) m.setLatLng([lat, lon]);
    else this.markers.set(f.id, L.marker([lat, lon], { icon: L.divIcon({ className: "truck", iconSize: [12, 12] }) })
      .addTo(map));
  }
}

function make(kind) {
  if (kind === "dom") return new DomTrucks();
  if (kind === "leaflet") return new LeafletCircles();
  return new TruckLayer(L, map, () => {});
}

window.run = async (kind, trucks, burst, rounds) => {
  const layer = make(kind);
  let t = performance.now();
  for (let id = 1; id <= trucks; id++) layer.update(feature(id, where()));
  await painted();
  const first = performance.now() - t;
  // Under load: every frame brings `burst` position updates; the gaps between frames say how smooth
  // the map stays (16.7 ms: 60 fps).
  const stamps = await new Promise((resolve) => {
    const seen = [];
    const tick = (ts) => {
      seen.push(ts);
      for (let k = 0; k < burst; k++) layer.update(feature(1 + Math.floor(rng() * trucks), where()));
      if (seen.length <= rounds) requestAnimationFrame(tick); else resolve(seen);
    };
    requestAnimationFrame(tick);
  });
  return { first, times: stamps.slice(1).map((ts, i) => ts - stamps[i]) };
};
window.ready = true;
</script></head><body><div id="map"></div></body></html>"""


def serve_dashboards() -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(REPO_ROOT / "dashboards"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def measure(page: Page, base: str, kind: str, scale: Scale) -> dict[str, Any]:
    page.route(f"{base}/bench.html", lambda route: _harness(route))
    page.goto(f"{base}/bench.html")
    page.wait_for_function("window.ready === true")
    result: dict[str, Any] = page.evaluate("([k, n, b, r]) => window.run(k, n, b, r)",
                                           [kind, scale.trucks, scale.burst, scale.rounds])
    return result


def _harness(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html", body=HARNESS)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 trucks, a few seconds")
    scale = QUICK if parser.parse_args().quick else FULL
    server = serve_dashboards()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    p95s: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for kind in ("ours", "leaflet", "dom"):
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            r = measure(page, base, kind, scale)
            p95s[kind] = p95(r["times"])
            print(f"{kind:>7}: {scale.trucks:,} trucks drawn in {r['first']:.0f} ms; with {scale.burst:,} updates "
                  f"a frame: frame time median {statistics.median(r['times']):.1f} ms, p95 {p95(r['times']):.1f} ms",
                  flush=True)
            page.close()
        browser.close()
    server.shutdown()
    print(f"ratio_leaflet={p95s['leaflet'] / p95s['ours']:.1f} ratio_dom={p95s['dom'] / p95s['ours']:.1f}")


if __name__ == "__main__":
    main()
