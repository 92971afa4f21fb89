// Issue 14's figures: how fast alerts are answered per severity and region (GET /kpi/response),
// and how officers judged them per alert type (GET /kpi/outcomes): a chart of the outcome mix
// per type with its false-alarm rate, the figure the risk unit tunes each rule with.
import { ALERT_LABEL, escapeHtml } from "/static/format.js";

export const OUTCOME_COLOURS = {
  false_alarm: "#9e9e9e", technical_fault: "#7e57c2", confirmed_irregularity: "#ef6c00", goods_seized: "#c62828",
  other: "#26a69a", none: "#e0e0e0",
};
const OUTCOME_LABEL = {
  false_alarm: "false alarm", technical_fault: "technical fault", confirmed_irregularity: "confirmed irregularity",
  goods_seized: "goods seized", other: "other", none: "no outcome",
};
const num = (v) => (v == null ? "–" : Number(v).toFixed(1));
const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)} %`);

// Rows for the page's table: severity, region, alerts, answered, median/p90 minutes to answer and to resolve.
export function answerRows(rows) {
  return rows.map((r) => [`<span class="sev ${escapeHtml(r.severity)}">${escapeHtml(r.severity)}</span>`,
    escapeHtml(r.region ?? "(none)"), r.alerts, r.acknowledged, num(r.ack_median_min), num(r.ack_p90_min),
    r.resolved, num(r.resolve_median_min), num(r.resolve_p90_min), r.escalated]);
}

const ROW_H = 26;
const LABEL_W = 190;
const BAR_W = 560;
const RATE_W = 150;

// One stacked bar per alert type: the share of each outcome among its resolutions, and the
// false-alarm rate at its end. Counts are in each segment's title.
export function outcomesChart(types) {
  if (!types.length) return "<p class='muted'>No alert resolved in this window.</p>";
  const keys = Object.keys(OUTCOME_COLOURS);
  const height = types.length * ROW_H + 34;
  const rows = types.map((t, i) => {
    const y = i * ROW_H + 4;
    let x = LABEL_W;
    const segments = keys.filter((k) => t.outcomes[k]).map((k) => {
      const w = (BAR_W * t.outcomes[k]) / t.resolved;
      const rect = `<rect x="${x}" y="${y}" width="${w}" height="${ROW_H - 8}" fill="${OUTCOME_COLOURS[k]}"
        data-outcome="${k}"><title>${OUTCOME_LABEL[k]}: ${t.outcomes[k]} of ${t.resolved}</title></rect>`;
      x += w;
      return rect;
    });
    return `<g data-type="${escapeHtml(t.type)}">
      <text x="0" y="${y + 13}" class="post">${escapeHtml(ALERT_LABEL[t.type] || t.type)}</text>
      ${segments.join("")}
      <text x="${LABEL_W + BAR_W + 8}" y="${y + 13}" class="value rate">${pct(t.false_alarm_rate)} false alarms`
      + ` (${t.resolved})</text></g>`;
  });
  let lx = LABEL_W;
  const legend = keys.map((k) => {
    const item = `<rect x="${lx}" y="${height - 16}" width="10" height="10" fill="${OUTCOME_COLOURS[k]}"/>
      <text x="${lx + 14}" y="${height - 7}" class="measure-left">${OUTCOME_LABEL[k]}</text>`;
    lx += 24 + OUTCOME_LABEL[k].length * 6;
    return item;
  });
  return `<svg class="chart outcomes" viewBox="0 0 ${LABEL_W + BAR_W + RATE_W + 40} ${height}" width="100%"
      role="img" aria-label="Outcome mix per alert type, with the false-alarm rate">${rows.join("")}
      ${legend.join("")}</svg>
    <p class="legend-note">Share of each outcome among the alerts of the type resolved in the window; the rate is
      false alarms over the resolutions with an outcome.</p>`;
}
