// The officer's data on the phone (IndexedDB "ctt-officer"): what the API last said, shown first
// (instantly, and when the network is gone, with its age), then refreshed. Used by the page and
// the service worker (the outbox). Cleared at logout: it holds the officer's token too, so that
// the service worker can replay the outbox with the page closed (Background Sync).
//
// Stores: alerts (key: alert id), positions (key: device id: the truck's last known fix),
// itineraries (key: shipment id: {shipment, timeline}), outbox (queued actions, in order),
// meta (session, token, country, cases). Every record is {key, value, saved_at (ms since epoch)}.

const NAME = "ctt-officer";
const VERSION = 1;
export const STORES = ["alerts", "positions", "itineraries", "outbox", "meta"];
let opening = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export function open() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, VERSION);
    req.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!req.result.objectStoreNames.contains(name)) {
          req.result.createObjectStore(name, name === "outbox" ? { keyPath: "seq", autoIncrement: true }
            : { keyPath: "key" });
        }
      }
    };
    req.onsuccess = () => {
      // Another tab deleting the database (logout) must not wait for this one.
      req.result.onversionchange = () => { req.result.close(); opening = null; };
      resolve(req.result);
    };
    req.onerror = () => reject(req.error);
  });
  return opening;
}

async function tx(store, mode, fn) {
  const db = await open();
  const t = db.transaction(store, mode);
  const result = fn(t.objectStore(store));
  await new Promise((resolve, reject) => {
    t.oncomplete = resolve;
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
  return result instanceof IDBRequest ? result.result : result;
}

// Stores `value` under `key`, stamped with now.
export function put(store, key, value, savedAt = Date.now()) {
  return tx(store, "readwrite", (s) => s.put({ key, value, saved_at: savedAt }));
}

// Several records in one transaction: [[key, value], ...].
export function putMany(store, entries, savedAt = Date.now()) {
  return tx(store, "readwrite", (s) => { for (const [key, value] of entries) s.put({ key, value, saved_at: savedAt }); });
}

// The record {key, value, saved_at}, or undefined.
export function get(store, key) {
  return tx(store, "readonly", (s) => s.get(key));
}

export async function value(store, key) {
  return (await get(store, key))?.value;
}

export function all(store) {
  return tx(store, "readonly", (s) => s.getAll());
}

export function remove(store, key) {
  return tx(store, "readwrite", (s) => s.delete(key));
}

// Replaces a store's whole content (the alert list as the API now gives it).
export function replace(store, entries, savedAt = Date.now()) {
  return tx(store, "readwrite", (s) => {
    s.clear();
    for (const [key, value] of entries) s.put({ key, value, saved_at: savedAt });
  });
}

// The outbox: append (returns its seq), update in place, list in order.
export function append(record) {
  return tx("outbox", "readwrite", (s) => s.add(record));
}

export function update(record) {
  return tx("outbox", "readwrite", (s) => s.put(record));
}

// Everything of the officer, at logout (and when another officer logs in on this phone).
export function wipe() {
  return Promise.all(STORES.map((name) => tx(name, "readwrite", (s) => s.clear())));
}
