// Actions taken on the phone (acknowledge, resolve, case entries, photos) are queued here first
// and sent in order, each with its own Idempotency-Key, so that a request repeated after a lost
// answer (or sent by both the page and the service worker) is done once by the API. Sent by the
// page at once when online, on the "online" event and on a timer with backoff; by the service
// worker on Background Sync (tag "ctt-outbox") where the browser has it, with the page closed.
//
// A record: {seq, key (Idempotency-Key), kind (ack|resolve|entry|photo), alert, case, path (under
// the API base), body (JSON) or blob + content_type, state (queued|conflict|refused|sent), detail,
// created_at, sent_at}. A 409 is a conflict and a 4xx a refusal: both stay in the outbox, shown on
// the alert until the officer dismisses them; never dropped silently.
import * as store from "./store.js";

export const SYNC_TAG = "ctt-outbox";
// Photos stay listed as sent (without their bytes) this long, so that the officer sees them go.
const SENT_KEPT_MS = 24 * 3600 * 1000;

export class Offline extends Error {}

export async function enqueue(action) {
  const record = { ...action, key: crypto.randomUUID(), state: "queued", created_at: Date.now(), detail: null };
  record.seq = await store.append(record);
  return record;
}

export async function records() {
  return (await store.all("outbox")).sort((a, b) => a.seq - b.seq);
}

export function dismiss(seq) {
  return store.remove("outbox", seq);
}

async function send(record, token, apiBase) {
  const headers = { Authorization: `Bearer ${token}`, "Idempotency-Key": record.key };
  let body;
  if (record.blob) {
    headers["Content-Type"] = record.content_type;
    body = record.blob;
  } else if (record.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(record.body);
  }
  try {
    return await fetch(apiBase + record.path, { method: "POST", headers, body });
  } catch (e) {
    throw new Offline(`${record.path}: ${e.message}`);
  }
}

function detailOf(payload, response) {
  const d = payload?.detail ?? response.statusText;
  return typeof d === "string" ? d : JSON.stringify(d);
}

// Sends every queued record in order; `onResult(record, payload)` after each answer. Stops at the
// first network failure or server error (throws Offline: retry later, the order kept) and at a 401
// (the token expired: the officer logs in again, the queue waits).
async function drainNow(onResult) {
  const token = await store.value("meta", "token");
  const apiBase = await store.value("meta", "api_base");
  if (!token || !apiBase) return;
  for (const record of await records()) {
    if (record.state === "sent" && Date.now() - record.sent_at > SENT_KEPT_MS) await dismiss(record.seq);
    if (record.state !== "queued") continue;
    const response = await send(record, token, apiBase);
    if (response.status >= 500 || response.status === 401 || response.status === 429) {
      throw new Offline(`${record.path}: HTTP ${response.status}`);
    }
    const payload = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.ok && record.kind === "photo") {
      await store.update({ ...record, blob: null, state: "sent", sent_at: Date.now(), result: payload });
    } else if (response.ok) {
      await dismiss(record.seq);
    } else {
      await store.update({ ...record, state: response.status === 409 ? "conflict" : "refused",
        status: response.status, detail: detailOf(payload, response) });
    }
    await onResult?.(record, response.status, payload);
  }
}

// One drain at a time across the page and the service worker (Web Locks where present).
export function drain(onResult) {
  if (globalThis.navigator?.locks) return navigator.locks.request(SYNC_TAG, () => drainNow(onResult));
  return drainNow(onResult);
}
