// KPIs: transit times per route, stop time, alerts per route and type, time to acknowledgement;
// Time Release figures (border posts, segments, countries) and the risk levels' alert outcomes;
// time to acknowledge and resolve per severity and region, and the outcome mix per alert type.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { ALERT_LABEL, duration, escapeHtml, when } from "/static/format.js";
import { postsChart, riskRows } from "./timerelease.js";
import { answerRows, outcomesChart } from "./answers.js";

const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));
const num = (v, digits = 1) => (v == null ? "–" : Number(v).toFixed(digits));
const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)} %`);

function table(head, rows) {
  if (!rows.length) return "<p class='muted'>Nothing in this window.</p>";
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c) => `<td${c.cls ? ` class="${c.cls}"` : ""}>${c.html ?? c}</td>`)
    .join("")}</tr>`).join("")}</tbody></table>`;
}

// Median as a dark bar inside its p90 bar, on one scale for the whole table.
function bars(median, p90, max) {
  if (median == null || !max) return { html: "", cls: "bars" };
  return { cls: "bars", html: `<div class="hbar" title="median ${num(median)}, p90 ${num(p90)}">
    <span class="p90" style="width:${(100 * p90) / max}%"></span>
    <span class="median" style="width:${(100 * median) / max}%"></span></div>` };
}

function transit(routes) {
  const max = Math.max(0, ...routes.map((r) => r.transit_p90_h || 0));
  $("transit").innerHTML = table(
    ["Route", "Departed", "Arrived", "Median h", "p90 h", "Mean h", "On time", "In transit", "Overdue", ""],
    routes.map((r) => [escapeHtml(r.name), r.departed, r.arrived, num(r.transit_median_h), num(r.transit_p90_h),
      num(r.transit_mean_h), pct(r.on_time_share), r.in_transit_now, r.overdue_now,
      bars(r.transit_median_h, r.transit_p90_h, max)]),
  ) + "<p class='legend-note'>Bars: median (dark) inside the 90th percentile (light).</p>";
}

function stops(rows) {
  const max = Math.max(0, ...rows.map((r) => r.p90_min || 0));
  $("stops").innerHTML = table(
    ["Route", "Stops", "Ongoing", "Total min", "Median min", "p90 min", ""],
    rows.map((r) => [escapeHtml(r.route_name), r.stops, r.ongoing, num(r.total_min, 0), num(r.median_min),
      num(r.p90_min), bars(r.median_min, r.p90_min, max)]),
  );
}

function alerts(rows) {
  // Only the types raised in the window: fourteen columns of zeros would hide the ones that matter.
  const types = Object.keys(ALERT_LABEL).filter((t) => rows.some((r) => r.type === t));
  const byRoute = new Map();
  for (const r of rows) {
    const counts = byRoute.get(r.route_name) || Object.fromEntries(types.map((t) => [t, 0]));
    counts[r.type] += r.count;
    byRoute.set(r.route_name, counts);
  }
  const max = Math.max(1, ...[...byRoute.values()].flatMap((c) => Object.values(c)));
  const cell = (n) => ({ html: `<span class="heat" style="background:rgba(198,40,40,${(0.75 * n) / max})">${n}</span>` });
  $("alerts").innerHTML = table(
    ["Route", ...types.map((t) => ALERT_LABEL[t]), "All"],
    [...byRoute.entries()].map(([name, c]) => [escapeHtml(name), ...types.map((t) => cell(c[t])),
      Object.values(c).reduce((a, b) => a + b, 0)]),
  );
}

function response(r) {
  const rows = [["All types", r.overall], ...r.by_type.map((t) => [ALERT_LABEL[t.type] || t.type, t])];
  const max = Math.max(0, ...rows.map(([, f]) => f.p90_min || 0));
  $("response").innerHTML = table(
    ["Alert type", "Answered", "Median min", "p90 min", "Unanswered now", "Oldest unanswered min", ""],
    rows.map(([label, f]) => [label, f.answered, num(f.median_min), num(f.p90_min), f.open, num(f.oldest_open_min),
      bars(f.median_min, f.p90_min, max)]),
  );
}

// A resource of issue 13 this API may not serve yet (404): the section says so instead of failing the page.
async function optional(path, ...sections) {
  try {
    return await client.get(path);
  } catch (e) {
    if (e.status !== 404) throw e;
    for (const id of sections) {
      $(id).innerHTML = `<p class="muted">Not offered by this API (GET ${escapeHtml(path.split("?")[0])}).</p>`;
    }
    return null;
  }
}

function timeRelease(figures) {
  $("posts").innerHTML = postsChart(figures.posts);
  $("segments").innerHTML = table(["From", "To", "Trips", "Median", "p90", ""],
    figures.segments.map((g) => [escapeHtml(g.from), escapeHtml(g.to), g.trips, duration(g.median_s),
      duration(g.p90_s), bars(g.median_s, g.p90_s, Math.max(...figures.segments.map((x) => x.p90_s)))]));
  $("countries").innerHTML = table(["Country", "Trips", "Median", "p90", ""],
    figures.countries.map((c) => [escapeHtml(c.country), c.trips, duration(c.median_s), duration(c.p90_s),
      bars(c.median_s, c.p90_s, Math.max(...figures.countries.map((x) => x.p90_s)))]));
  $("csv").hidden = false;
}

function risk(figures) {
  $("risk").innerHTML = table(["Risk level", "Shipments", "Alerts", "Confirmed", "False alarms", "Not resolved",
    "Confirmed share", "False alarm share"], riskRows(figures.levels))
    + "<p class='legend-note'>Shares of the resolved alerts. Confirmed: confirmed irregularity or goods seized.</p>";
}

function answers(figures) {
  $("answers").innerHTML = table(["Severity", "Region", "Alerts", "Answered", "Median min", "p90 min", "Resolved",
    "Median min to resolve", "p90 min to resolve", "Escalated"], answerRows(figures.rows))
    + "<p class='legend-note'>Minutes from an alert's creation to its first answer (acknowledged, or resolved "
    + "without one) and to its resolution. An alert counts in every region its shipment touches.</p>";
}

async function downloadCsv() {
  try {
    const { blob, filename } = await client.download(`/kpi/time-release?${period()}&format=csv`);
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (e) {
    alert(`Could not download: ${e.message}`);
  }
}

let shown = null; // the window on the page: [from, to]
const period = () => `since=${shown[0].toISOString()}&until=${shown[1].toISOString()}`;

async function load() {
  const to = new Date();
  const from = new Date(to.getTime() - Number($("days").value) * 86400000);
  shown = [from, to];
  const [kpi, release, levels, answered, judged] = await Promise.all([
    client.get(`/kpi?from=${from.toISOString()}&to=${to.toISOString()}`),
    optional(`/kpi/time-release?${period()}`, "posts", "segments", "countries"),
    optional(`/kpi/risk?${period()}`, "risk"),
    optional(`/kpi/response?${period()}`, "answers"),
    optional(`/kpi/outcomes?${period()}`, "outcomes"),
  ]);
  if (release) timeRelease(release);
  if (levels) risk(levels);
  if (answered) answers(answered);
  if (judged) $("outcomes").innerHTML = outcomesChart(judged.types);
  $("window").textContent = `${when(kpi.window.from)} – ${when(kpi.window.to)}; now-figures at `
    + `${when(kpi.generated_at)}${client.session.region ? `; region ${client.session.region} only` : ""}`;
  transit(kpi.routes);
  stops(kpi.stops);
  alerts(kpi.alerts);
  response(kpi.response);
  document.body.dataset.ready = "true";
}

async function start(session) {
  $("login").hidden = true;
  $("who").textContent = `${session.subject} · ${session.role}`;
  $("days").addEventListener("change", load);
  $("csv").addEventListener("click", downloadCsv);
  await load();
}

boot(client, start);
