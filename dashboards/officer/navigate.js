// Going to the truck: where it was last seen (GET /positions/latest, the live stream's position
// events while online; the copy on the phone offline), the distance and direction from the
// phone in words, and an "Open in maps" link (geo: URI) for turn-by-turn navigation.
import { bearingDeg, compass, distanceM } from "/static/format.js";
import { formatDistance, t } from "/static/i18n.js";

// A truck's position from a position feature (the API's and the stream's): {lat, lon, ts, device}.
export function fix(feature) {
  const [lon, lat] = feature.geometry.coordinates;
  return { lat, lon, ts: feature.properties.ts, device: feature.properties.device,
    shipment: feature.properties.shipment };
}

// The latest fixes of the shipments in `shipments` (a Set of ids), from GET /positions/latest.
export async function latestFixes(client, shipments) {
  const collection = await client.get("/positions/latest");
  return collection.features.filter((f) => shipments.has(f.properties.shipment)).map(fix);
}

// "N", "NE", ... as a word of the page's language ("north-east", "nord-est").
export function compassWord(deg) {
  return t(`officer.compass.${compass(deg)}`);
}

// From the phone `here` ([lat, lon]) to `there` ({lat, lon}): metres, degrees and a sentence.
export function towards(here, there) {
  const target = [there.lat, there.lon];
  const metres = distanceM(here, target);
  const bearing = bearingDeg(here, target);
  return { metres, bearing, text: t("officer.towards", { distance: formatDistance(metres), direction: compassWord(bearing) }) };
}

// geo:<lat>,<lon>?q=<lat>,<lon>(<label>): Android offers the map apps; the label names the truck.
export function geoUri(lat, lon, label) {
  const at = `${lat.toFixed(6)},${lon.toFixed(6)}`;
  return `geo:${at}?q=${at}(${encodeURIComponent(label)})`;
}
