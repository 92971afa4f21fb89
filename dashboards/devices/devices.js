// Devices: every tracker and e-seal with its battery trend and forecast, last message and fix,
// shipment, location, credentials and custody; filters, sortable columns, details on a click.
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { ago, countryTag, escapeHtml as e, label, when } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { mountPreferences } from "/static/prefs.js";

const $ = (id) => document.getElementById(id);
const client = new Client(tokenStore(sessionStorage));
const tx = (key, params) => e(t(key, params)); // a message, escaped for HTML
const fixed = (v, digits) => formatNumber(v, { minimumFractionDigits: digits, maximumFractionDigits: digits });
const percent = (v) => t("devices.percent", { n: formatNumber(Math.round(v)) });
const view = { sort: "last_seen", order: "desc", cursor: null, shown: 0 };

// Hourly battery means as a small line (0 to 100 %), with its values in the title.
function sparkline(series) {
  if (series.length < 2) return "";
  const w = 60, h = 18;
  const t0 = new Date(series[0].at).getTime(), span = new Date(series.at(-1).at).getTime() - t0 || 1;
  const points = series.map((p) => `${(((new Date(p.at).getTime() - t0) / span) * w).toFixed(1)},`
    + `${(h - (p.bat / 100) * h).toFixed(1)}`).join(" ");
  const title = series.map((p) => `${when(p.at)}: ${percent(p.bat)}`).join("\n");
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img"
    aria-label="${tx("devices.spark")}"><title>${e(title)}</title><polyline points="${points}"/></svg>`;
}

function forecast(b) {
  if (b.drain_per_h == null) return `<span class="forecast">${tx("devices.no_trend", { n: b.points })}</span>`;
  const drain = b.drain_per_h > 0 ? tx("devices.drain", { n: fixed(b.drain_per_h, 1) }) : tx("devices.not_draining");
  const left = b.hours_left == null ? "" : ` · ${tx("devices.empty_in", { n: fixed(b.hours_left, 1) })}`;
  // A word and a mark in a bordered tag: never the colour alone.
  const verdict = b.lasts_until_deadline == null ? ""
    : b.lasts_until_deadline ? ` <span class="tag ok">✓ ${tx("devices.lasts")}</span>`
      : ` <span class="tag warn">⚠ ${tx("devices.will_not_last")}</span>`;
  return `<span class="forecast">${drain}${left}${verdict}</span>`;
}

function battery(d) {
  const level = d.battery.level == null ? "–" : e(percent(d.battery.level));
  return `${level}${sparkline(d.battery.series)}${forecast(d.battery)}`;
}

function custody(c) {
  const a = c.assignment;
  if (c.state === "never_issued") return `<span class='muted'>${tx("devices.never_issued")}</span>`;
  if (c.state === "issued") return tx("devices.issued", { office: a.issued_office, reference: a.reference });
  return tx("devices.returned", { office: a.returned_office });
}

function credentials(c) {
  if (!c.signing_key) return `<span class='muted'>${tx("devices.no_key")}</span>`;
  return tx(c.must_sign ? "devices.key_must_sign" : "devices.key");
}

function row(d) {
  const state = d.state ? ` <span class="tag state-${e(d.state)}">${label("devices.state", d.state)}</span>` : "";
  const loc = d.location ? `${fixed(d.location.lat, 4)}, ${fixed(d.location.lon, 4)}`
    + `${d.location.source === "tracker" ? ` <span class='muted'>${tx("devices.by_truck")}</span>` : ""}` : "–";
  // The id is a button: the keyboard opens a device's details as a click on its row does.
  return `<tr data-id="${e(d.id)}">
    <td class="id"><button type="button" class="open">${e(d.id)}</button></td><td>${label("devices.kind", d.kind)}</td>
    <td>${e(d.firmware || "–")}</td>
    <td>${battery(d)}</td>
    <td title="${e(when(d.last_seen))}">${d.last_seen ? e(ago(d.last_seen)) : tx("devices.never")}${state}</td>
    <td title="${e(when(d.last_fix?.ts))}">${d.last_fix ? e(ago(d.last_fix.ts)) : "–"}</td>
    <td>${d.shipment ? `${e(d.shipment.reference)} <span class="status">${label("common.shipment_status",
      d.shipment.status)}</span>` : "–"}</td>
    <td>${loc} ${countryTag(d.last_fix?.country)}</td>
    <td>${credentials(d.credentials)}</td><td>${custody(d.custody)}</td><td>${flags(d)}</td></tr>`;
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
  $("count").textContent = t(page.next_cursor ? "devices.count_more" : "devices.count", { n: formatNumber(view.shown) });
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

function flags(d) {
  return d.flags.map((f) => `<span class="tag warn">⚑ ${label("devices.flag", f)}</span>`).join("");
}

function historyItem(a) {
  const issued = tx("devices.history.issued", { reference: a.reference, at: when(a.issued_at), office: a.issued_office,
    who: a.issued_by });
  const returned = a.returned_at ? `; ${tx("devices.history.returned", { at: when(a.returned_at),
    office: a.returned_office, who: a.returned_by })}` : `; <strong>${tx("devices.history.not_returned")}</strong>`;
  return `<li>${issued}${returned}${a.note ? ` (${e(a.note)})` : ""}</li>`;
}

let shown = null; // the device whose details are open
let opener = null; // what had the focus when they opened: it gets it back on close

// One device's details in the side panel; the focus moves to their heading (Escape closes them).
async function details(id, { focus = true } = {}) {
  for (const tr of document.querySelectorAll("tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  if (focus) opener = document.activeElement;
  const d = await client.get(`/devices/${encodeURIComponent(id)}`);
  shown = id;
  const b = d.battery;
  const row = (key, value) => `<dt>${tx(`devices.detail.${key}`)}</dt><dd>${value}</dd>`;
  $("detail-body").innerHTML = `<h2 id="detail-title" tabindex="-1">${e(d.id)} <span class="muted">${
    label("devices.kind", d.kind)}</span></h2>
    <dl>
      ${row("firmware", e(d.firmware || "–"))}
      ${row("connection", `${d.state ? label("devices.state", d.state) : tx("devices.never_heard")} ${d.state_at
        ? tx("devices.since", { at: when(d.state_at) }) : ""}`)}
      ${row("messages", `${e(when(d.first_seen))} / ${e(when(d.last_seen))}`)}
      ${row("battery", battery(d))}
      ${row("empty_at", e(when(b.empty_at)))}
      ${row("deadline", d.shipment ? e(when(d.shipment.deadline)) : "–")}
      ${row("last_fix", d.last_fix ? `${e(when(d.last_fix.ts))}, ${fixed(d.last_fix.lat, 5)}, `
        + `${fixed(d.last_fix.lon, 5)}` : "–")}
      ${row("shipment", d.shipment ? `${e(d.shipment.reference)} (${label("common.shipment_status",
        d.shipment.status)})` : "–")}
      ${row("credentials", credentials(d.credentials))}
      ${row("custody", custody(d.custody))}
      ${row("flags", flags(d) || tx("devices.none"))}
    </dl>
    <h3>${tx("devices.history")}</h3><ul>${d.assignments.map(historyItem).join("")
      || `<li class='muted'>${tx("devices.none")}</li>`}</ul>`;
  $("details").hidden = false;
  if (focus) $("detail-title").focus();
}

function closeDetails() {
  $("details").hidden = true;
  shown = null;
  if (opener?.isConnected) opener.focus();
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
  $("close").addEventListener("click", closeDetails);
  $("details").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeDetails(); });
  // Every row and the open details drawn again in the new language.
  window.addEventListener("ctt-languagechange", () => Promise.all([load(), shown && details(shown, { focus: false })]));
  await load();
  document.body.dataset.ready = "true";
}

mountPreferences(document.querySelector("header"));
boot(client, start);
