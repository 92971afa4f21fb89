// Message catalogues and locale formatting for every page (docs/dashboards.md, "Languages").
//
// One catalogue per language, /static/locales/<code>.json: a flat object of keys to strings with
// {name} placeholders, plus "_name" (the language's own name). Adding a language is adding a file:
// /config.json lists the catalogues present. The language is the one chosen on the page (kept in
// localStorage), else the browser's first one we have, else English; every key missing from a
// catalogue falls back to English (a test fails on any missing key, so this is only a safety net).

const STORAGE = "ctt.language";
const FALLBACK = "en";
let current = FALLBACK;
let messages = {};
let english = {};
let available = [{ code: FALLBACK, name: "English" }];

async function fetchCatalogue(code) {
  const response = await fetch(`/static/locales/${encodeURIComponent(code)}.json`);
  if (!response.ok) throw new Error(`no catalogue for ${code} (HTTP ${response.status})`);
  return response.json();
}

// The languages offered: [{code, name}] from /config.json (the server lists the catalogue files).
export function languages() {
  return available;
}

// The language in use (a BCP 47 code such as "en" or "fr").
export function language() {
  return current;
}

function preferred(codes) {
  const chosen = localStorage.getItem(STORAGE);
  if (chosen && codes.includes(chosen)) return chosen;
  for (const tag of navigator.languages || [navigator.language || FALLBACK]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (codes.includes(base)) return base;
  }
  return FALLBACK;
}

// Load the catalogues (once at start, before anything is shown); `config` is /config.json's body.
export async function startLanguage(config) {
  if (config && Array.isArray(config.languages) && config.languages.length) available = config.languages;
  english = await fetchCatalogue(FALLBACK);
  await use(preferred(available.map((l) => l.code)));
}

async function use(code) {
  messages = code === FALLBACK ? english : { ...english, ...(await fetchCatalogue(code)) };
  current = code;
  document.documentElement.lang = code;
  translatePage();
}

// Switch language (kept for the next visit); listeners of "languagechange" on window redraw.
export async function setLanguage(code) {
  localStorage.setItem(STORAGE, code);
  await use(code);
  window.dispatchEvent(new CustomEvent("ctt-languagechange", { detail: code }));
}

// The message for `key` with its {placeholders} filled from `params` (not escaped: escape for HTML).
export function t(key, params = {}) {
  const text = messages[key] ?? english[key];
  if (text === undefined) return key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Whether the catalogue has `key` (for labels of values the server may add later).
export function has(key) {
  return key in messages || key in english;
}

// Fill the static text of a page: data-i18n="key" sets the text; data-i18n-attr="attr:key;attr:key"
// sets attributes (aria-label, title, placeholder).
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

// Locale formatting: dates and times (UTC unless asked), numbers, distances, durations.
// Intl refuses timeZoneName beside dateStyle/timeStyle ("Can't set option timeZoneName when dateStyle is
// used"): the default names its fields instead (day, short month, year, 24-hour time, the zone).
const DATE_TIME = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  hourCycle: "h23", timeZoneName: "short" };

export function formatDateTime(iso, options = {}) {
  if (!iso) return "–";
  const fields = options.dateStyle || options.timeStyle ? {} : DATE_TIME;
  return new Intl.DateTimeFormat(current, { timeZone: "UTC", ...fields, ...options }).format(new Date(iso));
}

export function formatNumber(value, options = {}) {
  if (value == null || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(current, options).format(value);
}

// Metres as "850 m", "4.2 km", "1,234 km" in the page's locale.
export function formatDistance(m) {
  if (m == null) return "–";
  if (m < 1000) return `${formatNumber(Math.round(m))} m`;
  const digits = m < 10000 ? 1 : 0;
  return `${formatNumber(m / 1000, { minimumFractionDigits: digits, maximumFractionDigits: digits })} km`;
}

// "5 minutes ago", "in 2 hours" in the page's locale.
export function formatRelative(iso, now = Date.now()) {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(current, { numeric: "auto" });
  const a = Math.abs(s);
  if (a < 90) return rtf.format(s, "second");
  if (a < 5400) return rtf.format(Math.round(s / 60), "minute");
  if (a < 172800) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}
