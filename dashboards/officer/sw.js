// The officers' service worker (a module): the app's shell and the officer's area offline, the
// outbox sent by Background Sync, and Web Push notifications.
//
// Cache Storage holds files without secrets only: the shell (pages, scripts, catalogues, basemap)
// and the officer's area (zones, routes, places of their region: public geography). Every other
// API answer lives in IndexedDB (store.js), which logout clears; the SW never caches it.
import * as outbox from "./outbox.js";
import * as store from "./store.js";

const SHELL = "ctt-officer-v5";
const AREA = "ctt-officer-area";
const FILES = ["/officer/", "/officer/officer.js", "/officer/officer.css", "/officer/store.js", "/officer/outbox.js",
  "/officer/navigate.js", "/officer/photos.js", "/officer/manifest.webmanifest", "/officer/icon-192.png",
  "/static/api.js", "/static/format.js", "/static/login.js", "/static/outcomes.js", "/static/i18n.js", "/static/prefs.js",
  "/static/common.css", "/static/icon.svg", "/config.json", "/vendor/world-atlas/countries-50m.json"];
// API paths answered from the area cache when the network fails.
const AREA_PATHS = /^\/api\/v1\/(zones|routes|places|regions\/[^/]+)$/;

// The shell and one catalogue per language /config.json lists.
async function precache() {
  const cache = await caches.open(SHELL);
  await cache.addAll(FILES);
  const config = await (await cache.match("/config.json")).json();
  await cache.addAll((config.languages || []).map((l) => `/static/locales/${encodeURIComponent(l.code)}.json`));
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== AREA).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The shell: from the cache at once (a slow network must not hold the page), refreshed behind
// (the next start has the newest files). The officer's area: network first, the cache offline.
// Every other API request and the stream pass through untouched.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/")) {
    if (AREA_PATHS.test(url.pathname)) {
      event.respondWith(fetch(event.request).catch(() => caches.open(AREA).then((c) => c.match(url.href))
        .then((hit) => hit || Response.error())));
    }
    return;
  }
  event.respondWith(caches.open(SHELL).then(async (cache) => {
    const refresh = fetch(event.request).then((response) => {
      if (response.ok) cache.put(event.request, response.clone());
      return response;
    });
    const hit = await cache.match(event.request, { ignoreSearch: url.pathname === "/officer/" });
    if (hit) {
      event.waitUntil(refresh.catch(() => null));
      return hit;
    }
    return refresh;
  }));
});

// The officer's area, fetched with the token the page stored: their region, the zones (offices,
// border posts) and routes (corridors), the places in the region's box (when the API has them).
async function cacheArea(region) {
  const token = await store.value("meta", "token");
  const api = await store.value("meta", "api_base");
  if (!token || !api) return;
  const cache = await caches.open(AREA);
  const get = async (path) => {
    const response = await fetch(api + path, { headers: { Authorization: `Bearer ${token}` } });
    if (response.ok) await cache.put(new URL(api + path, location.origin).href, response.clone());
    return response.ok ? response : null;
  };
  await Promise.all([get("/zones"), get("/routes")]);
  if (!region) return;
  const feature = await get(`/regions/${encodeURIComponent(region)}`);
  if (!feature) return;
  const ring = (await feature.json()).geometry.coordinates.flat(2);
  const xs = [], ys = [];
  for (let i = 0; i < ring.length; i += 2) { xs.push(ring[i]); ys.push(ring[i + 1]); }
  const bbox = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)].map((v) => v.toFixed(3)).join(",");
  await get(`/places?bbox=${bbox}&limit=2000`); // P4's places: skipped where the API has none (404)
}

self.addEventListener("message", (event) => {
  if (event.data?.type === "area") event.waitUntil(cacheArea(event.data.region).catch(() => null));
});

// Background Sync: send the outbox (the page may be closed); a failure makes the browser retry later.
self.addEventListener("sync", (event) => {
  if (event.tag !== outbox.SYNC_TAG) return;
  event.waitUntil(outbox.drain().then(tellPages));
});

async function tellPages() {
  for (const client of await self.clients.matchAll({ type: "window" })) client.postMessage({ type: "outbox" });
}

self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : { title: "Transit alert", body: "" };
  event.waitUntil(self.registration.showNotification(data.title || "Transit alert", {
    body: data.body,
    tag: data.tag,
    icon: "/officer/icon-192.png",
    badge: "/officer/icon-192.png",
    requireInteraction: data.severity === "critical",
    data: { url: data.url || "/officer/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data.url, location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    const open = windows.find((w) => w.url.startsWith(`${location.origin}/officer/`));
    if (open) return open.navigate(target).then((w) => (w || open).focus());
    return self.clients.openWindow(target);
  }));
});
