// Time Release figures (GET /kpi/time-release) and the risk unit's figures (GET /kpi/risk): a chart of
// the time spent at each border post, tables per segment and per country, a CSV download.
import { duration, escapeHtml } from "/static/format.js";

const BAR_H = 11;
const ROW_H = 30; // one measure (dwell or inside) of one post
const LABEL_W = 210;
const CHART_W = 900;
const VALUE_W = 150; // room right of the longest bar for its "median / p90" figures

// Nice tick spacing (seconds) for an axis up to `max` seconds: about five ticks.
function tickStep(max) {
  const steps = [600, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return steps.find((s) => max / s <= 6) || 86400 * Math.ceil(max / 86400 / 6);
}

// Per post, two rows: time stationary inside (dwell) and arrival to departure (inside); each a light
// p90 bar with the median as a dark bar in it, on one axis in hours. Values are also in the bars' titles.
export function postsChart(posts) {
  if (!posts.length) return "<p class='muted'>No departures from a border post in this window.</p>";
  const max = Math.max(1, ...posts.flatMap((p) => [p.dwell_p90_s || 0, p.inside_p90_s || 0]));
  const step = tickStep(max);
  const top = Math.ceil(max / step) * step;
  const x = (s) => LABEL_W + ((CHART_W - LABEL_W - VALUE_W) * s) / top;
  const height = posts.length * 2 * ROW_H + 30;
  const ticks = [];
  for (let t = 0; t <= top; t += step) {
    ticks.push(`<line x1="${x(t)}" x2="${x(t)}" y1="0" y2="${height - 22}" class="grid"/>
      <text x="${x(t)}" y="${height - 8}" class="tick">${t % 3600 ? duration(t) : `${t / 3600} h`}</text>`);
  }
  const rows = posts.flatMap((p, i) => [["dwell", p.dwell_median_s, p.dwell_p90_s], ["inside", p.inside_median_s,
    p.inside_p90_s]].map(([what, median, p90], j) => {
    const y = (2 * i + j) * ROW_H + 4;
    const label = j === 0 ? `<text x="0" y="${y + 14}" class="post">${escapeHtml(p.office_code)}`
      + `${p.country ? ` · ${escapeHtml(p.country)}` : ""}</text>` : "";
    const bars = median == null ? `<text x="${x(0) + 4}" y="${y + 14}" class="tick">no data</text>` : `
      <rect x="${x(0)}" y="${y}" width="${x(p90) - x(0)}" height="${BAR_H * 2}" class="p90">
        <title>${what} p90 ${duration(p90)}</title></rect>
      <rect x="${x(0)}" y="${y + BAR_H / 2}" width="${x(median) - x(0)}" height="${BAR_H}" class="median">
        <title>${what} median ${duration(median)}</title></rect>
      <text x="${x(p90) + 4}" y="${y + 15}" class="value">${duration(median)} / ${duration(p90)}</text>`;
    return `<g data-post="${escapeHtml(p.office_code)}" data-measure="${what}">${label}
      <text x="${LABEL_W - 8}" y="${y + 15}" class="measure">${what}</text>${bars}</g>`;
  }));
  return `<svg class="chart" viewBox="0 0 ${CHART_W} ${height}" width="100%" role="img"
      aria-label="Time at each border post: median inside the 90th percentile">
    ${ticks.join("")}${rows.join("")}</svg>
    <p class="legend-note">Dwell: time stationary inside the post; inside: arrival to departure. Dark bar and first
      figure: median; light bar and second figure: 90th percentile.</p>`;
}

export function riskRows(levels) {
  const share = (n, d) => (d ? `${Math.round((100 * n) / d)} %` : "–");
  return levels.map((l) => [`<span class="risk ${escapeHtml(l.level)}">${escapeHtml(l.level)}</span>`, l.shipments,
    l.alerts, l.confirmed, l.false_alarms, l.open, share(l.confirmed, l.alerts - l.open),
    share(l.false_alarms, l.alerts - l.open)]);
}
