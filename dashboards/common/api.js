// The API as the pages use it: the token, JSON requests, the session, the live stream.
// Plain ES module, no build step; every request carries the bearer token. Importing it also loads
// the page's language (i18n.js) from /config.json's list, so that every page speaks it before drawing.
import { startLanguage, t } from "./i18n.js";

export const config = await (await fetch("/config.json")).json();
await startLanguage(config);
export const API = config.api_base;
export const TILE_URL = config.tile_url;
export const TILE_ATTRIBUTION = config.tile_attribution;

// The API's refusal: its status, and a message for people (the API's detail, which names the value at
// fault, or a sentence from the catalogue when it gave none that reads).
export class ApiError extends Error {
  constructor(status, detail) {
    super(message(status, detail));
    this.status = status;
  }
}

function message(status, detail) {
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length && detail[0].msg) {
    return t("common.api.invalid", { detail: detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`)
      .join("; ") });
  }
  return t("common.api.failed", { status });
}

// storage: sessionStorage for a shared control-room screen, localStorage for an officer's own phone.
export function tokenStore(storage) {
  return {
    get: () => storage.getItem("ctt.token"),
    set: (t) => storage.setItem("ctt.token", t),
    clear: () => storage.removeItem("ctt.token"),
  };
}

export class Client {
  constructor(store) {
    this.store = store;
    this.session = null;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.store.get()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) throw new ApiError(response.status, payload.detail);
    return payload;
  }

  get(path) { return this.request("GET", path); }

  // A file the API serves (a CSV export): its bytes and the name its Content-Disposition gives.
  async download(path) {
    const response = await fetch(API + path, { headers: { Authorization: `Bearer ${this.store.get()}` } });
    if (!response.ok) {
      const payload = await response.json().catch(() => ({ detail: response.statusText }));
      throw new ApiError(response.status, payload.detail);
    }
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    return { blob: await response.blob(), filename: match ? match[1] : "export.csv" };
  }
  post(path, body) { return this.request("POST", path, body); }

  // Log in with a pasted token (recorded in the audit log), or resume a stored one (not recorded).
  async login(token) {
    this.store.set(token);
    try {
      this.session = await this.post("/session");
    } catch (e) {
      this.store.clear();
      throw e;
    }
    return this.session;
  }

  async resume() {
    if (!this.store.get()) return null;
    try {
      this.session = await this.get("/session");
    } catch (e) {
      if (e.status === 401) { this.store.clear(); return null; }
      throw e;
    }
    return this.session;
  }

  logout() { this.store.clear(); this.session = null; }

  may(capability) { return !!this.session && this.session.capabilities.includes(capability); }

  // Server-sent events: EventSource cannot send headers and a token in a URL lands in access
  // logs, so each connection opens with a single-use ticket (POST /stream/tickets). A ticket
  // cannot reopen a dropped connection: the returned LiveStream does, with a new ticket and the
  // last alert event id, so that no alert change is missed. Handlers listen on the LiveStream.
  stream(kinds, handlers) {
    const live = new LiveStream(this, kinds);
    for (const [kind, fn] of Object.entries(handlers)) {
      live.addEventListener(kind, (e) => fn(JSON.parse(e.data)));
    }
    live.open();
    return live;
  }
}

const STREAM_RETRY_MS = 2000;

// One logical stream over successive EventSources: events are re-dispatched on this object.
export class LiveStream extends EventTarget {
  constructor(client, kinds) {
    super();
    this.client = client;
    this.kinds = kinds;
    this.lastEventId = null;
    this.source = null;
    this.closed = false;
  }

  async open() {
    if (this.closed) return;
    let ticket;
    try {
      ({ ticket } = await this.client.post("/stream/tickets"));
    } catch (e) {
      if (e.status === 401) { this.dispatchEvent(new Event("unauthorized")); return; }
      setTimeout(() => this.open(), STREAM_RETRY_MS);
      return;
    }
    const params = new URLSearchParams({ ticket });
    for (const k of this.kinds) params.append("kind", k);
    if (this.lastEventId !== null) params.set("last_event_id", this.lastEventId);
    const source = new EventSource(`${API}/stream?${params}`);
    this.source = source;
    for (const kind of [...this.kinds, "resync"]) {
      source.addEventListener(kind, (e) => {
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        this.dispatchEvent(new MessageEvent(kind, { data: e.data, lastEventId: e.lastEventId }));
      });
    }
    // The browser would retry with the used ticket: close and reopen with a new one instead.
    source.addEventListener("error", () => {
      source.close();
      if (this.source === source) setTimeout(() => this.open(), STREAM_RETRY_MS);
    });
  }

  close() {
    this.closed = true;
    if (this.source) this.source.close();
  }
}

// A token can come in the URL's fragment (the demo prints such links): taken once, then removed
// from the address bar so that it is not bookmarked or shared with a screenshot.
export function tokenFromFragment() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}
