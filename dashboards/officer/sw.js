// The officers' service worker: the page's shell offline, and Web Push notifications.
const SHELL = "ctt-officer-v3";
const FILES = ["/officer/", "/officer/officer.js", "/officer/officer.css", "/static/api.js", "/static/format.js", "/static/login.js",
  "/static/outcomes.js",
  "/static/common.css", "/static/icon.svg", "/officer/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Network first, so that an officer always gets the newest page when there is signal; the cached
// shell when there is none. The API and the stream are never cached.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith(fetch(event.request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(SHELL).then((c) => c.put(event.request, copy));
    }
    return response;
  }).catch(() => caches.match(event.request)));
});

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
