// KPIs: transit times per route, stop time, alerts per route and type, time to acknowledgement;
// Time Release figures (border posts, segments, countries) and the risk levels' alert outcomes;
// time to acknowledge and resolve per severity and region, and the outcome mix per alert type.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { ALERT_TYPES, alertLabel, duration, escapeHtml, when } from "/static/format.js";
import { t } from "/static/i18n.js";
import { mountPreferences } from "/static/prefs.js";
import { postsChart, riskRows } from "./timerelease.js";
import { answerRows, outcomesChart } from "./answers.js";
import { head, note, num, pct } from "./numbers.js";

const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));

// A table: `columns` are catalogue keys (kpi.col.*) of the headings; "" is a heading-less column (bars).
function table(columns, rows) {
  if (!rows.length) return `<p class='muted'>${escapeHtml(t("kpi.empty"))}</p>`;
  return `<table><thead><tr>${columns.map((c) => `<th scope="col">${c ? head(c)
    : `<span class="visually-hidden">${escapeHtml(t("kpi.col.bars"))}</span>`}</th>`).join("")}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c) => `<td${c.cls ? ` class="${c.cls}"` : ""}>${c.html ?? c}</td>`)
    .join("")}</tr>`).join("")}</tbody></table>`;
}

// Median as a dark bar inside its p90 bar, on one scale for the whole table.
function bars(median, p90, max) {
  if (median == null || !max) return { html: "", cls: "bars" };
  return { cls: "bars", html: `<div class="hbar" title="${escapeHtml(t("kpi.bar", { median: num(median),
    p90: num(p90) }))}">
    <span class="p90" style="width:${(100 * p90) / max}%"></span>
    <span class="median" style="width:${(100 * median) / max}%"></span></div>` };
}

function transit(routes) {
  const max = Math.max(0, ...routes.map((r) => r.transit_p90_h || 0));
  $("transit").innerHTML = table(
    ["route", "departed", "arrived", "median_h", "p90_h", "mean_h", "on_time", "in_transit", "overdue", ""],
    routes.map((r) => [escapeHtml(r.name), num(r.departed, 0), num(r.arrived, 0), num(r.transit_median_h),
      num(r.transit_p90_h), num(r.transit_mean_h), pct(r.on_time_share), num(r.in_transit_now, 0), num(r.overdue_now, 0),
      bars(r.transit_median_h, r.transit_p90_h, max)]),
  ) + note("kpi.note.bars");
}

function stops(rows) {
  const max = Math.max(0, ...rows.map((r) => r.p90_min || 0));
  $("stops").innerHTML = table(
    ["route", "stops", "ongoing", "total_min", "median_min", "p90_min", ""],
    rows.map((r) => [escapeHtml(r.route_name), num(r.stops, 0), num(r.ongoing, 0), num(r.total_min, 0), num(r.median_min),
      num(r.p90_min), bars(r.median_min, r.p90_min, max)]),
  );
}

function alerts(rows) {
  // Only the types raised in the window: fourteen columns of zeros would hide the ones that matter.
  const types = ALERT_TYPES.filter((type) => rows.some((r) => r.type === type));
  const byRoute = new Map();
  for (const r of rows) {
    const counts = byRoute.get(r.route_name) || Object.fromEntries(types.map((type) => [type, 0]));
    counts[r.type] += r.count;
    byRoute.set(r.route_name, counts);
  }
  const max = Math.max(1, ...[...byRoute.values()].flatMap((c) => Object.values(c)));
  // The count is written in every cell; the heat's strength only repeats it (at most 45 % opacity: text stays legible).
  const cell = (n) => ({ html: `<span class="heat" style="--heat:${((45 * n) / max).toFixed(0)}%">${num(n, 0)}</span>` });
  $("alerts").innerHTML = table(
    ["route", ...types.map((type) => `=${alertLabel(type)}`), "all"],
    [...byRoute.entries()].map(([name, c]) => [escapeHtml(name), ...types.map((type) => cell(c[type])),
      num(Object.values(c).reduce((a, b) => a + b, 0), 0)]),
  );
}

function response(r) {
  const rows = [[escapeHtml(t("kpi.all_types")), r.overall], ...r.by_type.map((x) => [alertLabel(x.type), x])];
  const max = Math.max(0, ...rows.map(([, f]) => f.p90_min || 0));
  $("response").innerHTML = table(
    ["alert_type", "answered", "median_min", "p90_min", "unanswered", "oldest_min", ""],
    rows.map(([label, f]) => [label, num(f.answered, 0), num(f.median_min), num(f.p90_min), num(f.open, 0),
      num(f.oldest_open_min),
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
      $(id).innerHTML = `<p class="muted">${escapeHtml(t("kpi.not_offered", { path: path.split("?")[0] }))}</p>`;
    }
    return null;
  }
}

function timeRelease(figures) {
  $("posts").innerHTML = postsChart(figures.posts);
  $("segments").innerHTML = table(["from", "to", "trips", "median", "p90", ""],
    figures.segments.map((g) => [escapeHtml(g.from), escapeHtml(g.to), num(g.trips, 0), duration(g.median_s),
      duration(g.p90_s), bars(g.median_s, g.p90_s, Math.max(...figures.segments.map((x) => x.p90_s)))]));
  $("countries").innerHTML = table(["country", "trips", "median", "p90", ""],
    figures.countries.map((c) => [escapeHtml(c.country), num(c.trips, 0), duration(c.median_s), duration(c.p90_s),
      bars(c.median_s, c.p90_s, Math.max(...figures.countries.map((x) => x.p90_s)))]));
  $("csv").hidden = false;
}

function risk(figures) {
  $("risk").innerHTML = table(["risk_level", "shipments", "alerts", "confirmed", "false_alarms", "not_resolved",
    "confirmed_share", "false_alarm_share"], riskRows(figures.levels)) + note("kpi.note.risk");
}

function answers(figures) {
  $("answers").innerHTML = table(["severity", "region", "alerts", "answered", "median_min", "p90_min", "resolved",
    "median_resolve", "p90_resolve", "escalated"], answerRows(figures.rows)) + note("kpi.note.answers");
}

async function downloadCsv() {
  try {
    const { blob, filename } = await client.download(`/kpi/time-release?${period()}&format=csv`);
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (e) {
    alert(t("kpi.download_failed", { message: e.message }));
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
  $("window").textContent = t(client.session.region ? "kpi.window.region" : "kpi.window.all", {
    from: when(kpi.window.from), to: when(kpi.window.to), at: when(kpi.generated_at), region: client.session.region });
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
  window.addEventListener("ctt-languagechange", load); // every figure drawn again in the new language
  await load();
}

mountPreferences(document.querySelector("header"));
boot(client, start);
