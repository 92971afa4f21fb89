// Time Release figures (GET /kpi/time-release) and the risk unit's figures (GET /kpi/risk): a chart of
// the time spent at each border post, tables per segment and per country, a CSV download.
import { duration, escapeHtml, label } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { note, num } from "./numbers.js";

const BAR_H = 11;
const ROW_H = 30; // one measure (dwell or inside) of one post
const LABEL_W = 210;
const CHART_W = 900;
const VALUE_W = 150; // room right of the longest bar for its "median / p90" figures

const hours = (h) => t("kpi.hours", { n: formatNumber(h) });

// Nice tick spacing (seconds) for an axis up to `max` seconds: about five ticks.
function tickStep(max) {
  const steps = [600, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return steps.find((s) => max / s <= 6) || 86400 * Math.ceil(max / 86400 / 6);
}

// Per post, two rows: time stationary inside (dwell) and arrival to departure (inside); each a light
// p90 bar with the median as a dark bar in it, on one axis in hours. Values are also in the bars' titles.
export function postsChart(posts) {
  if (!posts.length) return `<p class='muted'>${escapeHtml(t("kpi.posts.empty"))}</p>`;
  const max = Math.max(1, ...posts.flatMap((p) => [p.dwell_p90_s || 0, p.inside_p90_s || 0]));
  const step = tickStep(max);
  const top = Math.ceil(max / step) * step;
  const x = (s) => LABEL_W + ((CHART_W - LABEL_W - VALUE_W) * s) / top;
  const height = posts.length * 2 * ROW_H + 30;
  const ticks = [];
  for (let tick = 0; tick <= top; tick += step) {
    ticks.push(`<line x1="${x(tick)}" x2="${x(tick)}" y1="0" y2="${height - 22}" class="grid"/>
      <text x="${x(tick)}" y="${height - 8}" class="tick">${escapeHtml(tick % 3600 ? duration(tick)
        : hours(tick / 3600))}</text>`);
  }
  const rows = posts.flatMap((p, i) => [["dwell", p.dwell_median_s, p.dwell_p90_s], ["inside", p.inside_median_s,
    p.inside_p90_s]].map(([what, median, p90], j) => {
    const y = (2 * i + j) * ROW_H + 4;
    const name = j === 0 ? `<text x="0" y="${y + 14}" class="post">${escapeHtml(p.office_code)}`
      + `${p.country ? ` · ${escapeHtml(p.country)}` : ""}</text>` : "";
    const measure = escapeHtml(t(`kpi.posts.${what}`));
    const bars = median == null
      ? `<text x="${x(0) + 4}" y="${y + 14}" class="tick">${escapeHtml(t("kpi.posts.no_data"))}</text>` : `
      <rect x="${x(0)}" y="${y}" width="${x(p90) - x(0)}" height="${BAR_H * 2}" class="p90">
        <title>${measure} p90 ${escapeHtml(duration(p90))}</title></rect>
      <rect x="${x(0)}" y="${y + BAR_H / 2}" width="${x(median) - x(0)}" height="${BAR_H}" class="median">
        <title>${escapeHtml(t("kpi.posts.median", { what: t(`kpi.posts.${what}`), value: duration(median) }))}</title>
      </rect>
      <text x="${x(p90) + 4}" y="${y + 15}" class="value">${escapeHtml(duration(median))} / ${escapeHtml(duration(p90))}</text>`;
    return `<g data-post="${escapeHtml(p.office_code)}" data-measure="${what}">${name}
      <text x="${LABEL_W - 8}" y="${y + 15}" class="measure">${measure}</text>${bars}</g>`;
  }));
  return `<svg class="chart" viewBox="0 0 ${CHART_W} ${height}" width="100%" role="img"
      aria-label="${escapeHtml(t("kpi.posts.chart"))}">
    ${ticks.join("")}${rows.join("")}</svg>${note("kpi.note.posts")}`;
}

export function riskRows(levels) {
  const share = (n, d) => (d ? t("kpi.percent", { n: formatNumber(Math.round((100 * n) / d)) }) : "–");
  return levels.map((l) => [`<span class="risk ${escapeHtml(l.level)}">${label("common.risk", l.level)}</span>`,
    num(l.shipments, 0), num(l.alerts, 0), num(l.confirmed, 0), num(l.false_alarms, 0), num(l.open, 0),
    share(l.confirmed, l.alerts - l.open), share(l.false_alarms, l.alerts - l.open)]);
}
