// The officer's phone: their region's alerts that are not resolved, nearest first, with distance
// and direction; acknowledge, resolve with a note, open the truck on the map; push notifications.
// Alerts on their own country's ground come first; then the handover: alerts of shipments whose
// itinerary crosses their administration, on another country's ground (or where none is known).
import { Client, tokenStore } from "/static/api.js";
import { boot } from "/static/login.js";
import { outcomeSelect } from "/static/outcomes.js";
import {
  SEVERITY_COLOUR, ago, alertDetail, alertLabel, bearingDeg, compass, contestedLabel, countryTag, distanceM,
  escapeHtml, km, supersedes,
} from "/static/format.js";

const $ = (id) => document.getElementById(id);
// The officer's own phone: the token survives closing the app.
const client = new Client(tokenStore(localStorage));
// editing: alert id -> its list item while a note is being written (kept across re-renders).
// country: the officer's administration (alpha-3), null when the API does not say.
// me: the officer's subject and unit (GET /session): alerts assigned to either come first.
const state = { alerts: new Map(), here: null, fresh: new Set(), editing: new Map(), country: null, me: null };

export function mine(a, me) {
  return !!me && ((a.assignee != null && a.assignee === me.subject) || (a.unit != null && a.unit === me.unit));
}

export function ordered(alerts, here, me = null) {
  const list = [...alerts].filter((a) => a.status !== "resolved" && !a.withdrawn);
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
  $("handover-section").hidden = !state.country || handover.length === 0;
  $("empty").hidden = list.length > 0;
}

const UNKNOWN_COUNTRY = '<span class="country unknown" title="no country loaded where it happened">country unknown</span>';

function item(a) {
  const li = document.createElement("li");
  li.dataset.id = a.id;
  li.id = `alert-${a.id}`;
  li.className = [state.fresh.has(a.id) ? "new" : "", mine(a, state.me) ? "mine" : ""].join(" ").trim();
  li.style.setProperty("--c", SEVERITY_COLOUR[a.severity]);
  const where = a._distance == null ? "" : `<span class="dist"><span class="arrow"
      style="transform:rotate(${a._bearing.toFixed(0)}deg)">↑</span> ${km(a._distance)} ${compass(a._bearing)}</span>`;
  const detail = alertDetail(a);
  li.innerHTML = `
    <div class="top"><span class="sev ${a.severity}">${a.severity}</span>
      <strong>${alertLabel(a.type)}</strong>${where}</div>
    ${mine(a, state.me) ? `<div class="meta assigned">Assigned to ${a.assignee === state.me.subject ? "you"
      : `your unit ${escapeHtml(a.unit)}`}</div>` : ""}
    <div class="meta">${countryTag(a.country, state.country) || UNKNOWN_COUNTRY}
      ${escapeHtml(a.reference)} · ${escapeHtml(a.device)} · ${ago(a.started_at)}
      · <span class="status">${a.status}${a.ended_at ? " · ended" : ""}</span></div>
    ${detail ? `<div class="meta detail">${detail}</div>` : ""}
    ${a.contested ? `<div class="meta">${contestedLabel(a)}</div>` : ""}`;
  if (client.may("act_on_alerts")) li.append(actions(a));
  return li;
}

function actions(a) {
  const div = document.createElement("div");
  div.className = "actions";
  if (a.status === "open") div.append(button("Acknowledge", () => act(a, "ack", {})));
  div.append(button("Resolve…", () => askNote(a, div)));
  const map = Object.assign(document.createElement("a"), { textContent: "Map", href: "#" });
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
  const note = Object.assign(document.createElement("textarea"), {
    rows: 3, placeholder: "What did you find? (required)", maxLength: 2000,
  });
  const outcome = outcomeSelect();
  const ok = button("Resolve", () => note.value.trim() && outcome.value
    && act(a, "resolve", { note: note.value.trim(), outcome: outcome.value }));
  div.replaceChildren(outcome, note, ok, button("Cancel", () => { state.editing.delete(a.id); render(); }));
  state.editing.set(a.id, div.closest("li"));
  note.focus();
}

async function act(a, action, body) {
  try {
    put(await client.post(`/alerts/${a.id}/${action}`, body));
    state.editing.delete(a.id);
    render();
  } catch (e) {
    alert(`Could not ${action}: ${e.message}`);
  }
}

function button(label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  b.addEventListener("click", onClick);
  return b;
}

function locate() {
  if (!navigator.geolocation) { $("where").textContent = "No location on this device: newest first"; return; }
  navigator.geolocation.watchPosition((pos) => {
    state.here = [pos.coords.latitude, pos.coords.longitude];
    $("where").textContent = `You: ${pos.coords.latitude.toFixed(4)}, ${pos.coords.longitude.toFixed(4)}`
      + ` (±${Math.round(pos.coords.accuracy)} m)`;
    render();
  }, (err) => {
    $("where").textContent = `Location unavailable (${err.message}): newest first`;
  }, { enableHighAccuracy: true, maximumAge: 30000 });
}

async function load() {
  // The API already limits an officer to their region.
  const pages = await Promise.all(["open", "acknowledged"].map((s) => client.get(`/alerts?status=${s}&limit=200`)));
  for (const page of pages) for (const a of page.items) put(a);
  render();
}

// Keeps the newest copy of an alert; false when `a` is an older one arriving late.
function put(a) {
  if (!supersedes(a, state.alerts.get(a.id))) return false;
  state.alerts.set(a.id, a);
  return true;
}

function live() {
  client.stream(["alert"], {
    // Changes were missed for good (no longer kept by the server): start again from the list.
    resync: () => { state.alerts = new Map(); load(); },
    alert: (a) => {
      if (!put(a)) return;
      if (a.event === "opened") {
        state.fresh.add(a.id);
        if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
      }
      render();
    },
  });
}

// Web Push: the service worker shows a notification when an alert opens in the region, even with
// the page closed.
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
    status.textContent = "Notifications on for this phone.";
    $("notify").hidden = true;
  } catch (e) {
    status.textContent = `Notifications unavailable: ${e.message}`;
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
  const region = await client.get(`/regions/${encodeURIComponent(session.region)}`);
  return region.properties.country || null;
}

async function start(session) {
  $("login").hidden = true;
  state.country = await ownCountry(session);
  state.me = { subject: session.subject, unit: session.unit ?? null };
  $("who").textContent = `${session.subject}${session.region ? ` · ${session.region}` : ""}`
    + `${state.country ? ` · ${state.country}` : ""}`;
  $("own-heading").textContent = `On ${state.country} ground`;
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js"); // installable, works offline
  if ("serviceWorker" in navigator && "PushManager" in window && "Notification" in window
      && client.may("act_on_alerts")) {
    $("notify").hidden = Notification.permission === "denied";
    $("notify").addEventListener("click", enablePush);
  }
  locate();
  await load();
  live();
  setInterval(render, 60000); // "… min ago" stays true
  window.officer = { state, client, render };
  document.body.dataset.ready = "true";
}

boot(client, start);
