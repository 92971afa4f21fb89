// Issue 14's figures: how fast alerts are answered per severity and region (GET /kpi/response),
// and how officers judged them per alert type (GET /kpi/outcomes): a chart of the outcome mix
// per type with its false-alarm rate, the figure the risk unit tunes each rule with.
import { alertLabel, escapeHtml, label } from "/static/format.js";
import { t } from "/static/i18n.js";
import { note, num, pct } from "./numbers.js";

export const OUTCOME_COLOURS = {
  false_alarm: "#9e9e9e", technical_fault: "#7e57c2", confirmed_irregularity: "#ef6c00", goods_seized: "#c62828",
  other: "#26a69a", none: "#e0e0e0",
};
// An outcome's name in the page's language ("none": resolved before outcomes were recorded).
const outcomeLabel = (k) => (k === "none" ? t("kpi.outcome.none") : t(`outcome.${k}`));

// Rows for the page's table: severity, region, alerts, answered, median/p90 minutes to answer and to resolve.
export function answerRows(rows) {
  return rows.map((r) => [`<span class="sev ${escapeHtml(r.severity)}">${label("severity", r.severity)}</span>`,
    escapeHtml(r.region ?? t("kpi.no_region")), num(r.alerts, 0), num(r.acknowledged, 0), num(r.ack_median_min),
    num(r.ack_p90_min), num(r.resolved, 0), num(r.resolve_median_min), num(r.resolve_p90_min), num(r.escalated, 0)]);
}

const ROW_H = 26;
const LABEL_W = 190;
const BAR_W = 560;
const RATE_W = 150;

// One stacked bar per alert type: the share of each outcome among its resolutions, and the
// false-alarm rate at its end. Counts are in each segment's title.
export function outcomesChart(types) {
  if (!types.length) return `<p class='muted'>${escapeHtml(t("kpi.outcomes.empty"))}</p>`;
  const keys = Object.keys(OUTCOME_COLOURS);
  const height = types.length * ROW_H + 34;
  const rows = types.map((type, i) => {
    const y = i * ROW_H + 4;
    let x = LABEL_W;
    const segments = keys.filter((k) => type.outcomes[k]).map((k) => {
      const w = (BAR_W * type.outcomes[k]) / type.resolved;
      const rect = `<rect x="${x}" y="${y}" width="${w}" height="${ROW_H - 8}" fill="${OUTCOME_COLOURS[k]}"
        data-outcome="${k}"><title>${escapeHtml(t("kpi.outcomes.segment", { outcome: outcomeLabel(k),
          n: num(type.outcomes[k], 0), of: num(type.resolved, 0) }))}</title></rect>`;
      x += w;
      return rect;
    });
    return `<g data-type="${escapeHtml(type.type)}">
      <text x="0" y="${y + 13}" class="post">${alertLabel(type.type)}</text>
      ${segments.join("")}
      <text x="${LABEL_W + BAR_W + 8}" y="${y + 13}" class="value rate">${escapeHtml(t("kpi.outcomes.rate",
        { rate: pct(type.false_alarm_rate), n: num(type.resolved, 0) }))}</text></g>`;
  });
  let lx = LABEL_W;
  const legend = keys.map((k) => {
    const name = outcomeLabel(k);
    const item = `<rect x="${lx}" y="${height - 16}" width="10" height="10" fill="${OUTCOME_COLOURS[k]}"/>
      <text x="${lx + 14}" y="${height - 7}" class="measure-left">${escapeHtml(name)}</text>`;
    lx += 24 + name.length * 6;
    return item;
  });
  return `<svg class="chart outcomes" viewBox="0 0 ${LABEL_W + BAR_W + RATE_W + 40} ${height}" width="100%"
      role="img" aria-label="${escapeHtml(t("kpi.outcomes.chart"))}">${rows.join("")}
      ${legend.join("")}</svg>${note("kpi.note.outcomes")}`;
}
