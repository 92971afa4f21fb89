// The API as the pages use it: the token, JSON requests, the session, the live stream.
// Plain ES module, no build step; every request carries the bearer token.

const config = await (await fetch("/config.json")).json();
export const API = config.api_base;
export const TILE_URL = config.tile_url;
export const TILE_ATTRIBUTION = config.tile_attribution;

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
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

  // Server-sent events: EventSource cannot send headers, hence the token in the query. On a
  // dropped connection the browser reconnects by itself, sending Last-Event-ID, so no alert change
  // is missed.
  stream(kinds, handlers) {
    const params = new URLSearchParams({ access_token: this.store.get() });
    for (const k of kinds) params.append("kind", k);
    const source = new EventSource(`${API}/stream?${params}`);
    for (const [kind, fn] of Object.entries(handlers)) {
      source.addEventListener(kind, (e) => fn(JSON.parse(e.data)));
    }
    return source;
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
