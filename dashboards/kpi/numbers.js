// The KPI page's numbers and words in the page's language: figures with a fixed number of decimals,
// shares as percentages, column headings and notes from the catalogue ("kpi.col.*", "kpi.note.*").
import { escapeHtml } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";

// A figure with `digits` decimals ("–" when none): "4.0" in English, "4,0" in French.
export const num = (v, digits = 1) => (v == null ? "–"
  : formatNumber(Number(v), { minimumFractionDigits: digits, maximumFractionDigits: digits }));

// A share (0..1) as a whole percentage: "67 %" (the space kept in every language, as the tables always had).
export const pct = (v) => (v == null ? "–" : t("kpi.percent", { n: formatNumber(Math.round(v * 100)) }));

// A column heading: a catalogue key under kpi.col, or "=" followed by HTML already in the page's language.
export const head = (column) => (column.startsWith("=") ? column.slice(1) : escapeHtml(t(`kpi.col.${column}`)));

// A note under a table or chart.
export const note = (key) => `<p class='legend-note'>${escapeHtml(t(key))}</p>`;
