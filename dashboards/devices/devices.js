// Devices: every tracker and e-seal with its battery trend and forecast, last message and fix,
// shipment, location, credentials and custody; filters, sortable columns, details on a click.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { ago, countryTag, escapeHtml as e, when } from "/static/format.js";

const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));
const FLAG_LABEL = { assigned_to_closed: "still out: shipment closed", missing_after_arrival: "missing after arrival" };
const KIND_LABEL = { tracker: "tracker", seal: "e-seal", unknown: "unknown" };
const view = { sort: "last_seen", order: "desc", cursor: null, shown: 0 };

// Hourly battery means as a small line (0 to 100 %), with its values in the title.
function sparkline(series) {
  if (series.length < 2) return "";
  const w = 60, h = 18;
  const t0 = new Date(series[0].at).getTime(), span = new Date(series.at(-1).at).getTime() - t0 || 1;
  const points = series.map((p) => `${(((new Date(p.at).getTime() - t0) / span) * w).toFixed(1)},`
    + `${(h - (p.bat / 100) * h).toFixed(1)}`).join(" ");
  const title = series.map((p) => `${when(p.at)}: ${p.bat} %`).join("\n");
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img"
    aria-label="battery over the last hours"><title>${e(title)}</title><polyline points="${points}"/></svg>`;
}

function forecast(b) {
  if (b.drain_per_h == null) return `<span class="forecast">no trend yet (${b.points} readings)</span>`;
  const drain = b.drain_per_h > 0 ? `−${b.drain_per_h.toFixed(1)} %/h` : "not draining";
  const left = b.hours_left == null ? "" : ` · empty in ${b.hours_left.toFixed(1)} h`;
  const verdict = b.lasts_until_deadline == null ? ""
    : b.lasts_until_deadline ? ` <span class="tag ok">lasts to deadline</span>`
      : ` <span class="tag warn">will not last to deadline</span>`;
  return `<span class="forecast">${drain}${left}${verdict}</span>`;
}

function battery(d) {
  const level = d.battery.level == null ? "–" : `${Math.round(d.battery.level)} %`;
  return `${level}${sparkline(d.battery.series)}${forecast(d.battery)}`;
}

function custody(c) {
  const a = c.assignment;
  if (c.state === "never_issued") return "<span class='muted'>never issued</span>";
  if (c.state === "issued") return `issued at ${e(a.issued_office)} to ${e(a.reference)}`;
  return `returned at ${e(a.returned_office)}`;
}

function credentials(c) {
  if (!c.signing_key) return "<span class='muted'>no signing key</span>";
  return `signing key${c.must_sign ? ", must sign" : ""}`;
}

function row(d) {
  const state = d.state ? ` <span class="tag state-${e(d.state)}">${e(d.state)}</span>` : "";
  const loc = d.location ? `${d.location.lat.toFixed(4)}, ${d.location.lon.toFixed(4)}`
    + `${d.location.source === "tracker" ? " <span class='muted'>(truck)</span>" : ""}` : "–";
  const flags = d.flags.map((f) => `<span class="tag warn">${FLAG_LABEL[f] || e(f)}</span>`).join("");
  return `<tr data-id="${e(d.id)}">
    <td class="id">${e(d.id)}</td><td>${KIND_LABEL[d.kind]}</td><td>${e(d.firmware || "–")}</td>
    <td>${battery(d)}</td>
    <td title="${when(d.last_seen)}">${d.last_seen ? ago(d.last_seen) : "never"}${state}</td>
    <td title="${when(d.last_fix?.ts)}">${d.last_fix ? ago(d.last_fix.ts) : "–"}</td>
    <td>${d.shipment ? `${e(d.shipment.reference)} <span class="status">${e(d.shipment.status)}</span>` : "–"}</td>
    <td>${loc} ${countryTag(d.last_fix?.country)}</td>
    <td>${credentials(d.credentials)}</td><td>${custody(d.custody)}</td><td>${flags}</td></tr>`;
}

function query() {
  const params = new URLSearchParams({ sort: view.sort, order: view.order, limit: "100" });
  for (const id of ["q", "kind", "state", "battery_below"]) if ($(id).value) params.set(id, $(id).value);
  if ($("flagged").checked) params.set("flagged", "true");
  if (view.cursor) params.set("cursor", view.cursor);
  return params;
}

async function load(more = false) {
  if (!more) view.cursor = null;
  const page = await client.get(`/devices?${query()}`);
  const rows = page.items.map(row).join("");
  const body = $("devices").tBodies[0];
  if (more) body.insertAdjacentHTML("beforeend", rows); else body.innerHTML = rows;
  view.shown = (more ? view.shown : 0) + page.items.length;
  view.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
  $("count").textContent = `${view.shown} device${view.shown === 1 ? "" : "s"}${page.next_cursor ? " (more)" : ""}`;
}

function sortBy(th) {
  const key = th.dataset.sort;
  view.order = view.sort === key && view.order === "desc" ? "asc" : "desc";
  view.sort = key;
  for (const h of document.querySelectorAll("th[data-sort]")) {
    h.setAttribute("aria-sort", h === th ? (view.order === "asc" ? "ascending" : "descending") : "none");
  }
  return load();
}

async function details(id) {
  for (const tr of document.querySelectorAll("tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  const d = await client.get(`/devices/${encodeURIComponent(id)}`);
  const b = d.battery;
  const history = d.assignments.map((a) => `<li>${e(a.reference)}: issued ${when(a.issued_at)} at `
    + `${e(a.issued_office)} by ${e(a.issued_by)}${a.returned_at ? `; returned ${when(a.returned_at)} at `
    + `${e(a.returned_office)} by ${e(a.returned_by)}` : "; <strong>not returned</strong>"}`
    + `${a.note ? ` (${e(a.note)})` : ""}</li>`).join("");
  $("detail-body").innerHTML = `<h2>${e(d.id)} <span class="muted">${KIND_LABEL[d.kind]}</span></h2>
    <dl>
      <dt>Firmware</dt><dd>${e(d.firmware || "–")}</dd>
      <dt>Connection</dt><dd>${e(d.state || "never heard from")} ${d.state_at ? `since ${when(d.state_at)}` : ""}</dd>
      <dt>First / last message</dt><dd>${when(d.first_seen)} / ${when(d.last_seen)}</dd>
      <dt>Battery</dt><dd>${battery(d)}</dd>
      <dt>Empty at</dt><dd>${when(b.empty_at)}</dd>
      <dt>Deadline</dt><dd>${d.shipment ? when(d.shipment.deadline) : "–"}</dd>
      <dt>Last fix</dt><dd>${d.last_fix ? `${when(d.last_fix.ts)}, ${d.last_fix.lat.toFixed(5)}, `
        + `${d.last_fix.lon.toFixed(5)}` : "–"}</dd>
      <dt>Shipment</dt><dd>${d.shipment ? `${e(d.shipment.reference)} (${e(d.shipment.status)})` : "–"}</dd>
      <dt>Credentials</dt><dd>${credentials(d.credentials)}</dd>
      <dt>Custody</dt><dd>${custody(d.custody)}</dd>
      <dt>Flags</dt><dd>${d.flags.map((f) => `<span class="tag warn">${FLAG_LABEL[f]}</span>`).join("") || "none"}</dd>
    </dl>
    <h3>Custody history</h3><ul>${history || "<li class='muted'>none</li>"}</ul>`;
  $("details").hidden = false;
}

async function start(session) {
  $("login").hidden = true;
  $("who").textContent = `${session.subject} · ${session.role}`;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th));
  }
  $("filters").addEventListener("input", () => { if ($("filters").checkValidity()) load(); });
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("more").addEventListener("click", () => load(true));
  $("devices").tBodies[0].addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-id]");
    if (tr) details(tr.dataset.id);
  });
  $("close").addEventListener("click", () => { $("details").hidden = true; });
  await load();
  document.body.dataset.ready = "true";
}

boot(client, start);
