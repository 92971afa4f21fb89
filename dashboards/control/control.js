// The control room: trucks live on the map, routes and zones, the alert feed, one shipment's details.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { addBasemap } from "/static/basemap.js";
import { escapeHtml } from "/static/format.js";
import { DetailPanel } from "./details.js";
import { AlertFeed } from "./feed.js";
import { STATES, TruckLayer, legend } from "./trucks.js";

const L = window.L;
const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));

// The corridor is drawn as a line as wide as the corridor on the ground, at any zoom.
function corridorWeight(map, corridorM, lat) {
  const metresPerPixel = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (map.getZoom() + 8);
  return Math.max(3, (2 * corridorM) / metresPerPixel);
}

// Zones by kind: a border post is thick, dashed in long strokes and labelled with its office code;
// an office solid; a stop zone finely dotted; the legend says which is which.
export const ZONE_STYLE = {
  office: { label: "office", style: { color: "#6a1b9a", weight: 1.5, fillOpacity: 0.15 } },
  border_post: { label: "border post", style: { color: "#b71c1c", weight: 3, fillOpacity: 0.2, dashArray: "8 4" } },
  stop: { label: "authorised stop", style: { color: "#2e7d32", weight: 1, fillOpacity: 0.15, dashArray: "3" } },
  weighbridge: { label: "weighbridge", style: { color: "#455a64", weight: 1.5, fillOpacity: 0.1, dashArray: "1 4" } },
  inspection: { label: "inspection area", style: { color: "#00838f", weight: 1.5, fillOpacity: 0.1 } },
};

// The zone kinds' strokes as drawn on the map.
function zoneLegend() {
  const control = L.control({ position: "bottomleft" });
  control.onAdd = () => {
    const div = L.DomUtil.create("div", "legend zones");
    div.innerHTML = Object.values(ZONE_STYLE).map(({ label, style: s }) => `<svg width="18" height="12"
      aria-hidden="true"><rect x="1.5" y="1.5" width="15" height="9" fill="${s.color}" fill-opacity="${s.fillOpacity}"
      stroke="${s.color}" stroke-width="${Math.min(s.weight, 2.5)}" stroke-dasharray="${s.dashArray || ""}"/></svg>
      ${label}`).join("<br>");
    return div;
  };
  return control;
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
        .bindTooltip(`Reachable during the gap: ${Math.round(a.detail.unexplained_min)} min unexplained`),
    ]).addTo(this.map);
    // Where the truck reappeared (the alert's position: the first fix after the gap).
    if (a.lat != null) {
      L.circleMarker([a.lat, a.lon], { radius: 6, color: "#3e2723", fillColor: "#fff", fillOpacity: 1, weight: 2 })
        .bindTooltip("first fix after the gap").addTo(this.layer);
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
      .bindTooltip(`${escapeHtml(route.properties.name)} · corridor ±${route.properties.corridor_m} m`).addTo(map);
  }
  const restyle = () => corridors.forEach(([c, m, lat]) => c.setStyle({ weight: corridorWeight(map, m, lat) }));
  map.on("zoomend", restyle);
  restyle();
  L.geoJSON(zones, {
    style: (f) => (ZONE_STYLE[f.properties.kind] || ZONE_STYLE.stop).style,
    onEachFeature: (f, layer) => {
      const p = f.properties;
      const what = (ZONE_STYLE[p.kind] || ZONE_STYLE.stop).label;
      const code = p.office_code ? ` ${escapeHtml(p.office_code)}` : "";
      layer.bindTooltip(`${escapeHtml(p.name)} (${what}${code}${p.country ? `, ${escapeHtml(p.country)}` : ""})`);
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

function showCounts(counts) {
  $("counts").innerHTML = Object.entries(STATES).reverse()
    .map(([s, { colour, label }]) => `<span style="--c:${colour}" data-state="${s}">${label} ${counts[s]}</span>`)
    .join("");
}

async function start(session) {
  $("login").hidden = true;
  $("who").textContent = `${session.subject} · ${session.role}${session.region ? ` · ${session.region}` : ""}`;
  $("logout").hidden = false;

  const map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, worldCopyJump: true }).setView([-2, 35], 6);
  const countries = await addBasemap(L, map);
  legend(L).addTo(map);
  zoneLegend().addTo(map);
  const details = new DetailPanel(L, map, $("details"), client);
  const trucks = new TruckLayer(L, map, (id) => details.show(id));
  trucks.onCounts = showCounts;
  const gapArea = new GapArea(map);
  const feed = new AlertFeed($("feed"), client, (a) => {
    if (!gapArea.show(a) && a.lat != null) map.flyTo([a.lat, a.lon], Math.max(map.getZoom(), 10), { duration: 0.6 });
    details.show(a.shipment);
  });
  $("open-only").addEventListener("change", (e) => { feed.openOnly = e.target.checked; feed.render(); });
  $("sound").addEventListener("click", (e) => {
    feed.sound = !feed.sound;
    e.target.textContent = feed.sound ? "Sound on" : "Sound off";
  });

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

boot(client, start);
