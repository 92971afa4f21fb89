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

async function drawGeography(map) {
  const [routes, zones] = await Promise.all([client.get("/routes"), client.get("/zones")]);
  const corridors = [];
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
    style: (f) => (f.properties.kind === "office"
      ? { color: "#6a1b9a", weight: 1.5, fillOpacity: 0.15 }
      : { color: "#2e7d32", weight: 1, fillOpacity: 0.15, dashArray: "3" }),
    onEachFeature: (f, layer) => layer.bindTooltip(
      `${escapeHtml(f.properties.name)} (${f.properties.kind === "office"
        ? `office ${escapeHtml(f.properties.office_code)}` : "authorised stop"})`),
  }).addTo(map);
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
  const details = new DetailPanel(L, map, $("details"), client);
  const trucks = new TruckLayer(L, map, (id) => details.show(id));
  trucks.onCounts = showCounts;
  const feed = new AlertFeed($("feed"), client, (a) => {
    if (a.lat != null) map.flyTo([a.lat, a.lon], Math.max(map.getZoom(), 10), { duration: 0.6 });
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
  window.ctt = { map, trucks, feed, details, client, stream, countries };
  document.body.dataset.ready = "true";

  // Links from the officers' page: /?shipment=ID&lat=..&lon=.. (where the alert happened).
  const params = new URLSearchParams(location.search);
  if (params.has("lat") && params.has("lon")) map.setView([Number(params.get("lat")), Number(params.get("lon"))], 12);
  if (params.has("shipment")) details.show(Number(params.get("shipment")));
}

boot(client, start);
