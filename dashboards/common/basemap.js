// The offline basemap: country outlines from the world-atlas package (Natural Earth 1:50m),
// drawn on the map's canvas; a tile layer on top only where the deployment names a tile server.
import { TILE_ATTRIBUTION, TILE_URL } from "./api.js";

export async function addBasemap(L, map) {
  const topology = await (await fetch("/vendor/world-atlas/countries-50m.json")).json();
  const countries = window.topojson.feature(topology, topology.objects.countries);
  L.geoJSON(countries, {
    interactive: false,
    style: { color: "#8a99a8", weight: 0.8, fillColor: "#eef1ec", fillOpacity: 1 },
  }).addTo(map);
  if (TILE_URL) {
    L.tileLayer(TILE_URL, { attribution: TILE_ATTRIBUTION, maxZoom: 18 }).addTo(map);
  }
  return countries.features.length;
}
