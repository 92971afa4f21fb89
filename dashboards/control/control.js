// The control room: trucks live on the map, routes and zones, the alert feed, one shipment's details.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { addBasemap } from "/static/basemap.js";
import { escapeHtml } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { mountPreferences } from "/static/prefs.js";
import { DetailPanel } from "./details.js";
import { AlertFeed } from "./feed.js";
import { STATES, TruckLayer, legend, stateBadge } from "./trucks.js";
import { TruckList } from "./trucklist.js";

const L = window.L;
const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));

// The corridor is drawn as a line as wide as the corridor on the ground, at any zoom.
function corridorWeight(map, corridorM, lat) {
  const metresPerPixel = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (map.getZoom() + 8);
  return Math.max(3, (2 * corridorM) / metresPerPixel);
}

// Zones by kind: a border post is thick, dashed in long strokes and labelled with its office code;
// an office solid; a stop zone finely dotted; the legend says which is which (labels "control.zone.<kind>").
export const ZONE_STYLE = {
  office: { color: "#6a1b9a", weight: 1.5, fillOpacity: 0.15 },
  border_post: { color: "#b71c1c", weight: 3, fillOpacity: 0.2, dashArray: "8 4" },
  stop: { color: "#2e7d32", weight: 1, fillOpacity: 0.15, dashArray: "3" },
  weighbridge: { color: "#455a64", weight: 1.5, fillOpacity: 0.1, dashArray: "1 4" },
  inspection: { color: "#00838f", weight: 1.5, fillOpacity: 0.1 },
};
const zoneKind = (kind) => (kind in ZONE_STYLE ? kind : "stop");

// The zone kinds' strokes as drawn on the map; `redraw()` refills it in the page's language.
function zoneLegend() {
  const control = L.control({ position: "bottomleft" });
  control.redraw = () => {
    control.getContainer().innerHTML = `<strong class="legend-title">${escapeHtml(t("control.zones"))}</strong><br>`
      + Object.entries(ZONE_STYLE).map(([kind, s]) => `<svg width="18" height="12"
      aria-hidden="true"><rect x="1.5" y="1.5" width="15" height="9" fill="${s.color}" fill-opacity="${s.fillOpacity}"
      stroke="${s.color}" stroke-width="${Math.min(s.weight, 2.5)}" stroke-dasharray="${s.dashArray || ""}"/></svg>
      ${escapeHtml(t(`control.zone.${kind}`))}`).join("<br>");
  };
  control.onAdd = () => L.DomUtil.create("div", "legend zones");
  return control;
}

// Leaflet's zoom buttons say "Zoom in"/"Zoom out" in English: their title and name in the page's language.
function translateZoom(map) {
  for (const [cls, key] of [["in", "control.zoom_in"], ["out", "control.zoom_out"]]) {
    const button = map.getContainer().querySelector(`.leaflet-control-zoom-${cls}`);
    button?.setAttribute("title", t(key));
    button?.setAttribute("aria-label", t(key));
  }
}

// The area a suspicious gap's truck could have reached (alert.detail.area), drawn while its alert is selected.
class GapArea {
  constructor(map) {
    this.map = map;
    this.layer = null;
  }

  show(a) {
    this.clear();
    const area = a.type === "suspicious_gap" ? a.detail?.area : null;
    if (!area || area.type !== "Polygon") return false;
    this.layer = L.featureGroup([
      L.geoJSON(area, { style: { color: "#6d4c41", weight: 2, dashArray: "6 4", fillColor: "#a1887f",
        fillOpacity: 0.25 } })
        .bindTooltip(escapeHtml(t("control.gap.area", { n: formatNumber(Math.round(a.detail.unexplained_min)) }))),
    ]).addTo(this.map);
    // Where the truck reappeared (the alert's position: the first fix after the gap).
    if (a.lat != null) {
      L.circleMarker([a.lat, a.lon], { radius: 6, color: "#3e2723", fillColor: "#fff", fillOpacity: 1, weight: 2 })
        .bindTooltip(escapeHtml(t("control.gap.first_fix"))).addTo(this.layer);
    }
    this.map.fitBounds(this.layer.getBounds().pad(0.1), { animate: false });
    return true;
  }

  clear() {
    if (this.layer) this.layer.remove();
    this.layer = null;
  }
}

async function drawGeography(map) {
  const [routes, zones] = await Promise.all([client.get("/routes"), client.get("/zones")]);
  const corridors = [];
  const postLabels = [];
  for (const route of routes.features) {
    const latlngs = route.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
    const corridor = L.polyline(latlngs, { color: "#0b5cad", opacity: 0.15, lineCap: "round", interactive: false })
      .addTo(map);
    corridors.push([corridor, route.properties.corridor_m, latlngs[0][0]]);
    L.polyline(latlngs, { color: "#0b5cad", weight: 1.5, opacity: 0.8 })
      .bindTooltip(() => escapeHtml(t("control.route.tooltip", { name: route.properties.name,
        m: formatNumber(route.properties.corridor_m) }))).addTo(map);
  }
  const restyle = () => corridors.forEach(([c, m, lat]) => c.setStyle({ weight: corridorWeight(map, m, lat) }));
  map.on("zoomend", restyle);
  restyle();
  L.geoJSON(zones, {
    style: (f) => ZONE_STYLE[zoneKind(f.properties.kind)],
    onEachFeature: (f, layer) => {
      const p = f.properties;
      // A function: the tooltip is written when shown, in the language of the moment.
      layer.bindTooltip(() => {
        const what = t(`control.zone.${zoneKind(p.kind)}`);
        const code = p.office_code ? ` ${escapeHtml(p.office_code)}` : "";
        return `${escapeHtml(p.name)} (${escapeHtml(what)}${code}${p.country ? `, ${escapeHtml(p.country)}` : ""})`;
      });
      // A border post carries its office code on the map: the posts are what an operator looks for.
      if (p.kind === "border_post") postLabels.push([layer.getBounds().getCenter(), p.office_code]);
    },
  }).addTo(map);
  for (const [at, code] of postLabels) {
    L.marker(at, {
      icon: L.divIcon({ className: "post-label", html: `<span>▲ ${escapeHtml(code)}</span>`, iconSize: null }),
      keyboard: false, interactive: false,
    }).addTo(map);
  }
  const lines = routes.features.flatMap((r) => r.geometry.coordinates.map(([lon, lat]) => [lat, lon]));
  if (lines.length) map.fitBounds(L.latLngBounds(lines).pad(0.05));
}

// Trucks per state, each with its shape and its word (never the colour alone).
function showCounts(counts) {
  $("counts").innerHTML = Object.keys(STATES).reverse()
    .map((s) => `<span data-state="${s}">${stateBadge(s)} ${escapeHtml(t(`control.state.${s}`))} `
      + `${formatNumber(counts[s])}</span>`)
    .join("");
}

function showSound(feed) {
  $("sound").textContent = t(feed.sound ? "control.sound.on" : "control.sound.off");
  $("sound").setAttribute("aria-pressed", String(feed.sound));
}

async function start(session) {
  $("login").hidden = true;
  $("who").textContent = `${session.subject} · ${session.role}${session.region ? ` · ${session.region}` : ""}`;
  $("logout").hidden = false;

  const map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, worldCopyJump: true }).setView([-2, 35], 6);
  const countries = await addBasemap(L, map);
  const truckLegend = legend(L).addTo(map);
  const zones = zoneLegend().addTo(map);
  const details = new DetailPanel(L, map, $("details"), client);
  const trucks = new TruckLayer(L, map, (id) => details.show(id));
  const truckList = new TruckList($("trucks-list"), $("trucks-list-box"), trucks, (id) => details.show(id));
  trucks.onCounts = (counts) => { showCounts(counts); truckList.render(); };
  const gapArea = new GapArea(map);
  const feed = new AlertFeed($("feed"), client, (a) => {
    if (!gapArea.show(a) && a.lat != null) map.flyTo([a.lat, a.lon], Math.max(map.getZoom(), 10), { duration: 0.6 });
    details.show(a.shipment);
  });
  $("open-only").addEventListener("change", (e) => { feed.openOnly = e.target.checked; feed.render(); });
  $("sound").addEventListener("click", () => { feed.sound = !feed.sound; showSound(feed); });
  // Everything drawn by the page in words is drawn again in the new language.
  const redraw = () => {
    showSound(feed);
    truckLegend.redraw();
    zones.redraw();
    translateZoom(map);
    showCounts(trucks.counts());
    truckList.render(true);
    feed.render();
    details.redraw();
  };
  redraw();
  window.addEventListener("ctt-languagechange", redraw);

  await drawGeography(map);
  // The stream first sends every visible truck's latest position, then live changes.
  const stream = client.stream(["position", "alert"], {
    position: (f) => trucks.update(f),
    alert: (a) => { feed.receive(a); trucks.alert(a); },
    resync: () => feed.reload(),
  });
  await feed.load();
  // For tests and for the curious: the page's live objects.
  window.ctt = { map, trucks, feed, details, client, stream, countries, gapArea };
  document.body.dataset.ready = "true";

  // Links from the officers' page: /?shipment=ID&lat=..&lon=.. (where the alert happened).
  const params = new URLSearchParams(location.search);
  if (params.has("lat") && params.has("lon")) map.setView([Number(params.get("lat")), Number(params.get("lon"))], 12);
  if (params.has("shipment")) details.show(Number(params.get("shipment")));
}

mountPreferences(document.querySelector("header"));
boot(client, start);
