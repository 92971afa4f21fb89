// The officer's phone: their region's alerts that are not resolved, nearest first, with distance
// and direction; acknowledge, resolve with a note, case entries, photos; going to the truck; push
// notifications. Offline first: what the API last said is kept on the phone (store.js) and shown
// at once, with its age, then refreshed; actions are queued (outbox.js) and sent exactly once when
// the phone is back online. Alerts on the officer's own country's ground come first; then the
// handover: alerts of shipments whose itinerary crosses their administration, elsewhere.
import { API, ApiError, Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { outcomeSelect } from "/static/outcomes.js";
import {
  SEVERITY_COLOUR, alertLabel, bearingDeg, compass, distanceM, escapeHtml, supersedes,
} from "/static/format.js";
import {
  formatDateTime, formatDistance, formatNumber, formatRelative, has, startLanguage, t, translatePage,
} from "/static/i18n.js";
import { mountPreferences } from "/static/prefs.js";
import * as store from "./store.js";
import * as outbox from "./outbox.js";
import { fix, geoUri, latestFixes, towards } from "./navigate.js";
import { photoControl, photoPath } from "./photos.js";

const $ = (id) => document.getElementById(id);
// The officer's own phone: the token survives closing the app.
const client = new Client(tokenStore(localStorage));
const noCache = new URLSearchParams(location.search).has("nocache"); // v1 behaviour, for bench/officer.py
const RETRY_MS = [2000, 5000, 15000, 30000, 60000, 300000]; // the outbox's backoff while sends fail
// alerts: id -> alert; saved: id -> when the phone stored it (ms); positions: shipment -> fix;
// itineraries: shipment -> {shipment, timeline}; editing: alert id -> its list item while a form is open;
// online: the last API request got an answer; refreshed: when the list last came from the network;
// going: the alert whose truck the officer is going to; outbox: the queued actions, in order.
const state = {
  alerts: new Map(), saved: new Map(), positions: new Map(), itineraries: new Map(), cases: [], here: null,
  fresh: new Set(), editing: new Map(), country: null, me: null, online: navigator.onLine, refreshed: null,
  going: null, outbox: [], retry: 0, retryTimer: null,
};

export function mine(a, me) {
  return !!me && ((a.assignee != null && a.assignee === me.subject) || (a.unit != null && a.unit === me.unit));
}

// Alerts kept visible although resolved: a queued action or a conflict still to show on them.
function pending(a) {
  return state.outbox.some((r) => r.alert === a.id && r.state !== "sent");
}

export function ordered(alerts, here, me = null) {
  const list = [...alerts].filter((a) => (a.status !== "resolved" && !a.withdrawn) || pending(a));
  for (const a of list) {
    a._distance = here && a.lat != null ? distanceM(here, [a.lat, a.lon]) : null;
    a._bearing = here && a.lat != null ? bearingDeg(here, [a.lat, a.lon]) : null;
  }
  // Nearest first when the phone knows where it is; alerts without a position last; else newest first.
  return list.sort((a, b) => {
    const assigned = mine(b, me) - mine(a, me);
    if (assigned) return assigned;
    if (here) {
      if (a._distance == null || b._distance == null) return (a._distance == null) - (b._distance == null);
      return a._distance - b._distance;
    }
    return new Date(b.started_at) - new Date(a.started_at);
  });
}

// [own ground, handover], each nearest first; everything in the first when the officer's country is unknown.
export function byGround(list, country) {
  if (!country) return [list, []];
  return [list.filter((a) => a.country === country), list.filter((a) => a.country !== country)];
}

function render() {
  const list = ordered(state.alerts.values(), state.here, state.me);
  const [own, handover] = byGround(list, state.country);
  $("alerts").replaceChildren(...own.map((a) => state.editing.get(a.id) || item(a)));
  $("handover").replaceChildren(...handover.map((a) => state.editing.get(a.id) || item(a)));
  $("own-heading").hidden = !state.country;
  $("own-heading").textContent = t("officer.ownGround", { country: state.country ?? "" });
  $("handover-section").hidden = !state.country || handover.length === 0;
  $("empty").hidden = list.length > 0;
  renderBanner();
  renderCases();
}

// Offline (or not yet refreshed): a sentence, not a colour, with the age of what is shown.
function renderBanner() {
  const banner = $("offline");
  const ages = [...state.saved.values()];
  const oldest = ages.length ? Math.min(...ages) : null;
  banner.hidden = state.online && state.refreshed !== null;
  if (banner.hidden) return;
  const asOf = oldest ? t("officer.asOf", { age: formatRelative(new Date(oldest).toISOString()) }) : t("officer.nothingSaved");
  banner.textContent = state.online ? t("officer.updating", { asOf }) : t("officer.offline", { asOf });
  banner.dataset.state = state.online ? "updating" : "offline";
}

function statusWord(a) {
  return has(`status.${a.status}`) ? t(`status.${a.status}`) : a.status;
}

function typeLabel(type) {
  return has(`alert.type.${type}`) ? escapeHtml(t(`alert.type.${type}`)) : alertLabel(type);
}

function countryTag(code) {
  if (!code) return `<span class="country unknown" title="${escapeHtml(t("officer.countryUnknown.title"))}">`
    + `${escapeHtml(t("officer.countryUnknown"))}</span>`;
  const own = code === state.country;
  return `<span class="country${own ? " own" : ""}" title="${escapeHtml(t(own ? "officer.ground.own"
    : "officer.ground.other", { country: code }))}">${escapeHtml(code)}</span>`;
}

function item(a) {
  const li = document.createElement("li");
  li.dataset.id = a.id;
  li.id = `alert-${a.id}`;
  li.className = [state.fresh.has(a.id) ? "new" : "", mine(a, state.me) ? "mine" : ""].join(" ").trim();
  li.style.setProperty("--c", SEVERITY_COLOUR[a.severity]);
  const where = a._distance == null ? "" : `<span class="dist"><span class="arrow" aria-hidden="true"
      style="transform:rotate(${a._bearing.toFixed(0)}deg)">↑</span> ${formatDistance(a._distance)} ${compass(a._bearing)}</span>`;
  const assigned = mine(a, state.me) ? `<div class="meta assigned">${escapeHtml(a.assignee === state.me.subject
    ? t("officer.assigned.you") : t("officer.assigned.unit", { unit: a.unit }))}</div>` : "";
  const saved = state.saved.get(a.id);
  const age = saved && (!state.online || state.refreshed === null)
    ? `<div class="meta age">${escapeHtml(t("officer.asOf", { age: formatRelative(new Date(saved).toISOString()) }))}</div>` : "";
  li.innerHTML = `
    <div class="top"><span class="sev ${a.severity}">${escapeHtml(t(`severity.${a.severity}`))}</span>
      <strong>${typeLabel(a.type)}</strong>${where}</div>
    ${assigned}
    <div class="meta">${countryTag(a.country)}
      ${escapeHtml(a.reference)} · ${escapeHtml(a.device)} · ${escapeHtml(formatRelative(a.started_at))}
      · <span class="status">${escapeHtml(statusWord(a))}${a.ended_at ? ` · ${escapeHtml(t("officer.ended"))}` : ""}</span></div>
    ${a.contested ? `<div class="meta contested">${escapeHtml(t("officer.contested"))}${a.contested_reason
      ? `: ${escapeHtml(a.contested_reason)}` : ""}</div>` : ""}
    ${age}`;
  li.append(...itinerary(a), ...truck(a), ...queued(a));
  if (client.may("act_on_alerts")) li.append(actions(a));
  return li;
}

// The shipment's itinerary (offices in order) and its last milestone, from the phone's copy.
function itinerary(a) {
  const it = state.itineraries.get(a.shipment);
  if (!it) return [];
  const div = Object.assign(document.createElement("div"), { className: "meta itinerary" });
  const offices = (it.shipment.itinerary || []).map((o) => o.office_code).join(" → ");
  const last = it.timeline.items.at(-1);
  div.textContent = t("officer.itinerary", { offices })
    + (last ? ` · ${t("officer.lastMilestone", { kind: last.kind.replace(/_/g, " "),
      when: formatDateTime(last.at) })}` : "");
  return [div];
}

// The truck's last known position: its age, and distance and direction from the phone.
function truck(a) {
  const p = state.positions.get(a.shipment);
  if (!p) return [];
  const div = Object.assign(document.createElement("div"), { className: "meta truck" });
  const seen = t("officer.truck.seen", { age: formatRelative(p.ts) });
  div.textContent = state.here ? `${seen} · ${towards(state.here, p).text}` : seen;
  if (state.going === a.id) div.classList.add("going");
  return [div];
}

const QUEUED_LABEL = { ack: "officer.queued.ack", resolve: "officer.queued.resolve", entry: "officer.queued.entry",
  photo: "officer.queued.photo" };

// The alert's outbox records: queued, sent (photos), refused or in conflict (role=alert, until dismissed).
function queued(a) {
  return state.outbox.filter((r) => r.alert === a.id).map((r) => {
    const div = Object.assign(document.createElement("div"), { className: `outbox ${r.state}` });
    div.dataset.kind = r.kind;
    if (r.state === "queued" || r.state === "sent") {
      div.textContent = r.state === "sent" ? t("officer.sent.photo") : t(QUEUED_LABEL[r.kind]);
      return div;
    }
    div.setAttribute("role", "alert");
    const text = document.createElement("span");
    text.textContent = r.state === "conflict" ? t("officer.conflict", { detail: r.detail })
      : t("officer.refused", { detail: r.detail });
    div.append(text, button(t("officer.dismiss"), async () => { await outbox.dismiss(r.seq); await showOutbox(); }));
    return div;
  });
}

function actions(a) {
  const div = document.createElement("div");
  div.className = "actions";
  const waiting = state.outbox.filter((r) => r.alert === a.id && r.state === "queued").map((r) => r.kind);
  if (a.status === "resolved" || waiting.includes("resolve")) {
    div.append(photoControl((file) => photo(a, file)));
    return div;
  }
  if (a.status === "open" && !waiting.includes("ack")) div.append(button(t("officer.acknowledge"), () => act(a, "ack", {})));
  div.append(button(t("officer.resolve"), () => askNote(a, div)));
  div.append(button(state.going === a.id ? t("officer.going.stop") : t("officer.going"), () => goTo(a)));
  div.append(photoControl((file) => photo(a, file)));
  const p = state.positions.get(a.shipment) || (a.lat != null ? { lat: a.lat, lon: a.lon } : null);
  if (p) {
    div.append(Object.assign(document.createElement("a"), { className: "geo", textContent: t("officer.openInMaps"),
      href: geoUri(p.lat, p.lon, a.vehicle || a.reference) }));
  }
  const map = Object.assign(document.createElement("a"), { textContent: t("officer.map"), href: "#" });
  map.addEventListener("click", (e) => {
    e.preventDefault();
    // The control room keeps its token per tab: hand it over in the fragment, which it removes at once.
    const at = a.lat != null ? `&lat=${a.lat}&lon=${a.lon}` : "";
    location.href = `/?shipment=${a.shipment}${at}#token=${encodeURIComponent(client.store.get())}`;
  });
  div.append(map);
  return div;
}

function askNote(a, div) {
  const note = Object.assign(document.createElement("textarea"), { rows: 3, maxLength: 2000, required: true,
    placeholder: t("officer.note.placeholder") });
  note.setAttribute("aria-label", t("officer.note"));
  const outcome = outcomeSelect();
  outcome.required = true;
  const ok = button(t("officer.resolve.confirm"), () => note.value.trim() && outcome.value
    && act(a, "resolve", { note: note.value.trim(), outcome: outcome.value }));
  const cancel = button(t("officer.cancel"), () => { state.editing.delete(a.id); render(); });
  div.replaceChildren(outcome, note, ok, cancel);
  div.addEventListener("keydown", (e) => { if (e.key === "Escape") cancel.click(); });
  state.editing.set(a.id, div.closest("li"));
  outcome.focus();
}

// Every action goes through the outbox: sent at once when online, later otherwise; one key each.
async function act(a, kind, body) {
  await outbox.enqueue({ kind, alert: a.id, path: `/alerts/${a.id}/${kind}`, body });
  state.editing.delete(a.id);
  await showOutbox();
  flush();
}

async function photo(a, file) {
  const position = state.here ? { lat: state.here[0], lon: state.here[1], accuracy: state.accuracy } : null;
  await outbox.enqueue({ kind: "photo", alert: a.id, path: photoPath(a.id, new Date().toISOString(), position),
    blob: file, content_type: file.type || "image/jpeg" });
  await showOutbox();
  flush();
}

function button(label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  b.addEventListener("click", onClick);
  return b;
}

// ---- the outbox: sent in order; answers update the alerts; retried with backoff ----

async function showOutbox() {
  state.outbox = await outbox.records();
  if (state.online && state.outbox.some((r) => r.state === "conflict" && !r.explained)) {
    await explainConflicts();
    state.outbox = await outbox.records();
  }
  render();
}

function onSent(record, status, payload) {
  if (status >= 200 && status < 300 && payload && (record.kind === "ack" || record.kind === "resolve")) put(payload);
}

// A conflict says who got there first and when: the alert as it now is (whoever sent the outbox,
// this page or the service worker), added to the server's detail once.
async function explainConflicts() {
  for (const r of state.outbox.filter((o) => o.state === "conflict" && o.alert && !o.explained)) {
    const a = await online(() => client.get(`/alerts/${r.alert}`)).catch(() => undefined);
    if (!a) return;
    put(a);
    const who = a.resolved_by ? t("officer.conflict.resolvedBy", { who: a.resolved_by, when: formatDateTime(a.resolved_at) })
      : null;
    await store.update({ ...r, explained: true, detail: who ? `${who} (${r.detail})` : r.detail });
  }
}

async function flush() {
  clearTimeout(state.retryTimer);
  try {
    await outbox.drain(onSent);
    state.retry = 0;
  } catch (e) {
    if (!(e instanceof outbox.Offline)) throw e;
    state.retryTimer = setTimeout(flush, RETRY_MS[Math.min(state.retry++, RETRY_MS.length - 1)]);
    await requestSync();
  }
  await showOutbox();
}

// Background Sync where the browser has it: the service worker sends the outbox with the page closed.
async function requestSync() {
  try {
    const registration = await navigator.serviceWorker?.ready;
    if (registration && "sync" in registration) await registration.sync.register(outbox.SYNC_TAG);
  } catch { /* no Background Sync: the page's timer and "online" event send it */ }
}

// ---- the data: from the phone first, then from the network ----

async function fromPhone() {
  const [alerts, positions, itineraries] = await Promise.all(["alerts", "positions", "itineraries"].map(store.all));
  for (const r of alerts) { state.alerts.set(r.key, r.value); state.saved.set(r.key, r.saved_at); }
  for (const r of positions) state.positions.set(r.key, { ...r.value, saved_at: r.saved_at });
  for (const r of itineraries) state.itineraries.set(r.key, r.value);
  state.cases = (await store.value("meta", "cases")) || [];
  state.outbox = await outbox.records();
}

// Runs `fn` against the API; a network failure marks the page offline instead of throwing.
async function online(fn) {
  try {
    const result = await fn();
    setOnline(true);
    return result;
  } catch (e) {
    if (e instanceof ApiError) throw e;
    setOnline(false);
    return undefined;
  }
}

function setOnline(value) {
  if (state.online === value) return;
  state.online = value;
  render();
}

async function load() {
  // The API already limits an officer to their region.
  const pages = await online(() => Promise.all(["open", "acknowledged"].map(
    (s) => client.get(`/alerts?status=${s}&limit=200`))));
  if (!pages) return;
  const now = Date.now();
  const items = pages.flatMap((p) => p.items);
  const listed = new Set(items.map((a) => a.id));
  // Resolved elsewhere meanwhile: gone from the list, unless an action of ours still waits on it.
  for (const id of state.alerts.keys()) if (!listed.has(id) && !pending({ id })) state.alerts.delete(id);
  for (const a of items) put(a, now);
  state.refreshed = now;
  render();
  document.body.dataset.fresh = "true";
  if (!noCache) await store.replace("alerts", [...state.alerts].map(([id, a]) => [id, a]), now);
  loadAround();
}

// The trucks' last positions, the itineraries and the open cases: after the list, in the background.
async function loadAround() {
  const shipments = new Set([...state.alerts.values()].map((a) => a.shipment));
  const fixes = await online(() => latestFixes(client, shipments)).catch(() => undefined);
  for (const f of fixes || []) state.positions.set(f.shipment, f);
  if (fixes && !noCache) await store.putMany("positions", fixes.map((f) => [f.shipment, f]));
  for (const id of [...shipments].slice(0, 30)) {
    const it = await online(async () => ({ shipment: await client.get(`/shipments/${id}`),
      timeline: await client.get(`/shipments/${id}/timeline`) })).catch(() => undefined);
    if (!it) continue;
    state.itineraries.set(id, it);
    if (!noCache) await store.put("itineraries", id, it);
  }
  const cases = await online(() => client.get("/cases?status=open&limit=20")).catch(() => undefined);
  if (cases) {
    state.cases = cases.items;
    if (!noCache) await store.put("meta", "cases", cases.items);
  }
  render();
}

// Keeps the newest copy of an alert; false when `a` is an older one arriving late.
function put(a, savedAt = Date.now()) {
  if (!supersedes(a, state.alerts.get(a.id))) return false;
  state.alerts.set(a.id, a);
  state.saved.set(a.id, savedAt);
  if (!noCache) store.put("alerts", a.id, a, savedAt);
  return true;
}

// ---- cases: the officer's entries, queued like the rest ----

// Each case's item is built once (a half-written entry survives re-renders); its notes are redrawn.
const caseItems = new Map();

function renderCases() {
  const section = $("cases-section");
  section.hidden = state.cases.length === 0 || !client.may("act_on_alerts");
  $("cases").replaceChildren(...state.cases.map((c) => {
    if (!caseItems.has(c.id)) caseItems.set(c.id, caseItem(c));
    const li = caseItems.get(c.id);
    li.querySelector(".notes").replaceChildren(...caseNotes(c));
    return li;
  }));
}

function caseItem(c) {
  const li = Object.assign(document.createElement("li"), { id: `case-${c.id}` });
  const title = Object.assign(document.createElement("div"), { className: "top" });
  title.textContent = t("officer.case.title", { id: c.id, reference: c.reference });
  const notes = Object.assign(document.createElement("div"), { className: "notes" });
  const form = document.createElement("form");
  const text = Object.assign(document.createElement("textarea"), { rows: 2, required: true, maxLength: 4000 });
  text.setAttribute("aria-label", t("officer.case.entry"));
  const add = Object.assign(document.createElement("button"), { type: "submit", textContent: t("officer.case.add") });
  form.append(text, add);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    await outbox.enqueue({ kind: "entry", case: c.id, path: `/cases/${c.id}/entries`, body: { text: text.value.trim() } });
    text.value = "";
    await showOutbox();
    flush();
  });
  li.append(title, notes, form);
  return li;
}

function caseNotes(c) {
  return state.outbox.filter((r) => r.case === c.id).map((r) => {
    const div = Object.assign(document.createElement("div"), { className: `outbox ${r.state}` });
    div.textContent = r.state === "queued" ? t("officer.queued.entry")
      : t(r.state === "conflict" ? "officer.conflict" : "officer.refused", { detail: r.detail });
    if (r.state !== "queued") {
      div.setAttribute("role", "alert");
      div.append(button(t("officer.dismiss"), async () => { await outbox.dismiss(r.seq); await showOutbox(); }));
    }
    return div;
  });
}

// ---- where the phone is, going to the truck ----

function locate() {
  if (!navigator.geolocation) { $("where").textContent = t("officer.where.none"); return; }
  navigator.geolocation.watchPosition((pos) => {
    state.here = [pos.coords.latitude, pos.coords.longitude];
    state.accuracy = pos.coords.accuracy;
    $("where").textContent = t("officer.where.you", { lat: formatNumber(pos.coords.latitude, { maximumFractionDigits: 4 }),
      lon: formatNumber(pos.coords.longitude, { maximumFractionDigits: 4 }), accuracy: Math.round(pos.coords.accuracy) });
    render();
  }, (err) => {
    $("where").textContent = t("officer.where.unavailable", { error: err.message });
  }, { enableHighAccuracy: true, maximumAge: 30000 });
}

// Toggles following one truck: its position from the stream (and a poll) while online.
function goTo(a) {
  state.going = state.going === a.id ? null : a.id;
  if (state.going) refreshTruck(a);
  render();
  document.querySelector(`#alert-${a.id} .actions button:nth-of-type(${a.status === "open" ? 3 : 2})`)?.focus();
}

async function refreshTruck(a) {
  const fixes = await online(() => latestFixes(client, new Set([a.shipment]))).catch(() => undefined);
  for (const f of fixes || []) positionArrived(f);
}

function positionArrived(f) {
  if (![...state.alerts.values()].some((a) => a.shipment === f.shipment)) return;
  state.positions.set(f.shipment, f);
  if (!noCache) store.put("positions", f.shipment, f);
  render();
}

function live() {
  const stream = client.stream(["alert", "position"], {
    // Changes were missed for good (no longer kept by the server): start again from the list.
    resync: () => { load(); },
    alert: (a) => {
      setOnline(true);
      if (!put(a)) return;
      if (a.event === "opened") {
        state.fresh.add(a.id);
        if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
      }
      render();
    },
    position: (feature) => positionArrived(fix(feature)),
  });
  return stream;
}

// ---- push notifications ----

async function enablePush() {
  const status = $("notify-status");
  status.hidden = false;
  try {
    const registration = await navigator.serviceWorker.ready;
    const { public_key: key } = await client.get("/push/vapid-public-key");
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key),
    });
    await client.post("/push/subscriptions", subscription.toJSON());
    status.textContent = t("officer.push.on");
    $("notify").hidden = true;
  } catch (e) {
    status.textContent = t("officer.push.unavailable", { error: e.message });
  }
}

function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// The officer's administration: the session's country, else their region's (GET /regions/{code}).
async function ownCountry(session) {
  if (session.country) return session.country;
  if (!session.region) return null;
  const region = await online(() => client.get(`/regions/${encodeURIComponent(session.region)}`));
  if (!region) return (await store.value("meta", "country")) ?? null;
  return region.properties.country || null;
}

// ---- start ----

// The language and theme selects (prefs.js) in the header; a language change redraws everything.
function preferences() {
  mountPreferences(document.querySelector("header"));
  window.addEventListener("ctt-languagechange", () => { translatePage(); showWho(); caseItems.clear(); render(); });
}

function showWho() {
  const s = client.session;
  if (!s) return;
  $("who").textContent = `${s.subject}${s.region ? ` · ${s.region}` : ""}${state.country ? ` · ${state.country}` : ""}`;
}

// A resumed session offline: the one stored at the last start (a network failure is not a logout).
const resumeOnline = client.resume.bind(client);
client.resume = async () => {
  try {
    return await resumeOnline();
  } catch (e) {
    if (e instanceof ApiError || noCache) throw e;
    client.session = await store.value("meta", "session") ?? null;
    return client.session;
  }
};
// Logging out forgets the officer's data on the phone: IndexedDB (the token there too) and the area.
const logoutOnline = client.logout.bind(client);
client.logout = () => { logoutOnline(); store.wipe(); caches.delete?.("ctt-officer-area"); };

async function start(session) {
  $("login").hidden = true;
  if (!noCache) {
    const previous = await store.value("meta", "session");
    if (previous && previous.subject !== session.subject) await store.wipe(); // another officer on this phone
    await store.putMany("meta", [["session", session], ["token", client.store.get()], ["api_base", API]]);
  }
  state.me = { subject: session.subject, unit: session.unit ?? null };
  state.country = await ownCountry(session);
  if (state.country && !noCache) store.put("meta", "country", state.country);
  showWho();
  if ("serviceWorker" in navigator && !noCache) {
    navigator.serviceWorker.register("sw.js", { type: "module" }).then(() => navigator.serviceWorker.ready)
      .then((r) => r.active?.postMessage({ type: "area", region: session.region ?? null })).catch(() => {});
    navigator.serviceWorker.addEventListener("message", (e) => { if (e.data?.type === "outbox") { showOutbox(); load(); } });
  }
  if ("serviceWorker" in navigator && "PushManager" in window && "Notification" in window
      && client.may("act_on_alerts")) {
    $("notify").hidden = Notification.permission === "denied";
    $("notify").addEventListener("click", enablePush);
  }
  locate();
  render();
  await load();
  live();
  flush();
  window.addEventListener("online", () => { setOnline(true); flush(); load(); });
  window.addEventListener("offline", () => setOnline(false));
  setInterval(render, 60000); // "… min ago" stays true
  window.officer = { state, client, render, flush, explainConflicts, showOutbox };
  document.body.dataset.ready = "true";
}

// The phone's copy first (instant, also offline), before the session is checked over the network.
async function showSaved() {
  if (noCache) return;
  if (!client.store.get()) { await store.wipe(); return; } // logged out: nothing of theirs stays
  const session = await store.value("meta", "session");
  if (!session) return;
  client.session = session;
  state.me = { subject: session.subject, unit: session.unit ?? null };
  state.country = (await store.value("meta", "country")) ?? null;
  await fromPhone();
  showWho();
  render();
  document.body.dataset.cached = "true";
}

await startLanguage(await (await fetch("/config.json")).json());
preferences();
await showSaved().catch(() => {});
boot(client, start);
