// Formatting and small geodesy shared by the pages.

import { formatDateTime, formatDistance, formatNumber, formatRelative, has, t } from "./i18n.js";

// The severity colours: the feed's stripe and the replay's pins (the badge says the word too).
export const SEVERITY_COLOUR = { critical: "#c62828", high: "#b34700", medium: "#f9a825", low: "#1565c0" };
// The alert types the engine raises (protocol.alerts), in the order the pages list them; labels in the
// catalogues as "alert.type.<type>".
export const ALERT_TYPES = [
  "route_deviation", "unscheduled_stop", "seal_breach", "transit_overdue", "signal_lost", "device_tamper",
  "border_bypass", "office_skipped", "border_dwell", "seal_mismatch", "low_battery", "suspicious_gap",
  "gps_jamming", "route_reversal", "device_battery",
];

// An alert type's label in the page's language, escaped (the type itself when the catalogue lacks it).
export function alertLabel(type) {
  return escapeHtml(has(`alert.type.${type}`) ? t(`alert.type.${type}`) : type);
}

// A value's label from the catalogue (`${prefix}.${value}`), escaped; the value itself when unknown.
export function label(prefix, value) {
  return escapeHtml(has(`${prefix}.${value}`) ? t(`${prefix}.${value}`) : value);
}

// One line on what the engine found (alert.detail, docs/alerts.md), escaped; "" when nothing to add.
export function alertDetail(a) {
  const d = a.detail || {};
  const e = escapeHtml;
  switch (a.type) {
    case "border_bypass": return d.from || d.to
      ? t("common.alert_detail.border_bypass", { from: e(d.from || "?"), to: e(d.to || "?") }) : "";
    case "office_skipped": return d.office
      ? t("common.alert_detail.office_skipped", { office: e(d.office), reached: e(d.reached || "?") }) : "";
    case "suspicious_gap": return d.unexplained_min == null ? ""
      : t("common.alert_detail.suspicious_gap", { unexplained: formatNumber(Math.round(d.unexplained_min)),
        gap: formatNumber(Math.round(d.gap_min)) });
    case "seal_mismatch": return d.seal_number
      ? t("common.alert_detail.seal_mismatch", { seal: e(d.seal_number), reason: e(d.reason || "") })
      : e(d.reason || "");
    default: return "";
  }
}

// A country code as a small labelled tag (ISO 3166-1 alpha-3); "" when unknown.
export function countryTag(code, own = null) {
  if (!code) return "";
  const mine = own && code === own;
  const title = t(mine ? "common.country.own" : "common.country.other", { code });
  return `<span class="country${mine ? " own" : ""}" title="${escapeHtml(title)}">${escapeHtml(code)}</span>`;
}

// Seconds as "3 h 05 min", "12 min", "40 s" (units from the catalogue, numbers in the page's locale).
export function duration(s) {
  if (s == null) return "–";
  if (s < 90) return t("common.duration.s", { n: formatNumber(Math.round(s)) });
  const m = Math.round(s / 60);
  return m < 60 ? t("common.duration.min", { n: formatNumber(m) })
    : t("common.duration.h_min", { h: formatNumber(Math.floor(m / 60)), m: String(m % 60).padStart(2, "0") });
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
  return `<span class="contested" title="${escapeHtml(t("common.contested.title"))}${reason}">`
    + `${escapeHtml(t("common.contested"))}${reason}</span>`;
}

// A moment as a date and time in UTC, in the page's locale ("–" when none).
export function when(iso) {
  return formatDateTime(iso);
}

// How long ago, in the page's locale ("5 minutes ago"); a moment slightly ahead (clock skew) is "now".
export function ago(iso, now = Date.now()) {
  return formatRelative(new Date(Math.min(new Date(iso).getTime(), now)).toISOString(), now);
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

// A bearing as one of the eight points of the compass, abbreviated in the page's language.
export function compass(deg) {
  return t(`common.compass.${["N", "NE", "E", "SE", "S", "SW", "W", "NW"][Math.round(deg / 45) % 8]}`);
}

// Metres as a distance in the page's locale ("850 m", "4.2 km").
export function km(m) {
  return formatDistance(m);
}
