// Formatting and small geodesy shared by the pages.

export const SEVERITY_COLOUR = { critical: "#c62828", high: "#ef6c00", medium: "#f9a825", low: "#1565c0" };
export const ALERT_LABEL = {
  route_deviation: "Route deviation", unscheduled_stop: "Unscheduled stop", seal_breach: "Seal breach",
  transit_overdue: "Transit overdue", signal_lost: "Signal lost", device_tamper: "Device tampered",
  border_bypass: "Border bypassed", office_skipped: "Office of transit skipped", border_dwell: "Long stay at border",
  seal_mismatch: "Seal number mismatch", low_battery: "Low battery", suspicious_gap: "Suspicious coverage gap",
  gps_jamming: "Possible GPS jamming", route_reversal: "Route reversal", device_battery: "Battery will not last the trip",
};

export function alertLabel(type) {
  return ALERT_LABEL[type] || escapeHtml(type);
}

// One line on what the engine found (alert.detail, docs/alerts.md), escaped; "" when nothing to add.
export function alertDetail(a) {
  const d = a.detail || {};
  const e = escapeHtml;
  switch (a.type) {
    case "border_bypass": return d.from || d.to ? `crossed ${e(d.from || "?")} → ${e(d.to || "?")} outside a post` : "";
    case "office_skipped": return d.office ? `never reached ${e(d.office)} (reached ${e(d.reached || "?")})` : "";
    case "suspicious_gap": return d.unexplained_min == null ? ""
      : `${Math.round(d.unexplained_min)} min unexplained in a ${Math.round(d.gap_min)} min gap`;
    case "seal_mismatch": return d.seal_number ? `seal ${e(d.seal_number)}: ${e(d.reason || "")}` : e(d.reason || "");
    default: return "";
  }
}

// A country code as a small labelled tag (ISO 3166-1 alpha-3); "" when unknown.
export function countryTag(code, own = null) {
  if (!code) return "";
  const mine = own && code === own;
  return `<span class="country${mine ? " own" : ""}" title="${mine ? "your country's ground" : "on the ground of"}`
    + ` ${escapeHtml(code)}">${escapeHtml(code)}</span>`;
}

// Seconds as "3 h 05 min", "12 min", "40 s".
export function duration(s) {
  if (s == null) return "–";
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

// Whether `next` (an alert from the stream or the list) may replace `previous`: not when it is an older
// copy arriving late. Every copy carries `updated_at` (the one alert object, UTC).
export function supersedes(next, previous) {
  return !previous || new Date(next.updated_at) >= new Date(previous.updated_at);
}

// An alert that late data disputes after an officer acted on it: a word, not only a colour.
export function contestedLabel(a) {
  if (!a.contested) return "";
  const reason = a.contested_reason ? `: ${escapeHtml(a.contested_reason)}` : "";
  return `<span class="contested" title="Late data disputes this alert${reason}">contested${reason}</span>`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function ago(iso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const R = 6371008.8;
const rad = (d) => (d * Math.PI) / 180;

// Great-circle distance (m) between [lat, lon] pairs.
export function distanceM(a, b) {
  const h = Math.sin(rad(b[0] - a[0]) / 2) ** 2
    + Math.cos(rad(a[0])) * Math.cos(rad(b[0])) * Math.sin(rad(b[1] - a[1]) / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

// Initial bearing (degrees from north, clockwise) from a to b.
export function bearingDeg(a, b) {
  const y = Math.sin(rad(b[1] - a[1])) * Math.cos(rad(b[0]));
  const x = Math.cos(rad(a[0])) * Math.sin(rad(b[0]))
    - Math.sin(rad(a[0])) * Math.cos(rad(b[0])) * Math.cos(rad(b[1] - a[1]));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

export function compass(deg) {
  return ["N", "NE", "E", "SE", "S", "SW", "W", "NW"][Math.round(deg / 45) % 8];
}

export function km(m) {
  if (m == null) return "–";
  return m < 10000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m / 1000).toLocaleString("en")} km`;
}
