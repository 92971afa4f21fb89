// The alert feed: newest first, severity colours, a sound and a highlight on a new seal breach,
// acknowledge and resolve where the caller's role allows it. The alerts of one incident (one
// condition of a consolidated truck, raised on each of its shipments) are one row listing the shipments.
import {
  SEVERITY_COLOUR, ago, alertDetail, alertLabel, contestedLabel, countryTag, escapeHtml, label, supersedes, when,
} from "/static/format.js";
import { t } from "/static/i18n.js";
import { outcomeSelect } from "/static/outcomes.js";

const SEVERITY_RANK = { low: 0, medium: 1, high: 2, critical: 3 };
const STATUS_RANK = { resolved: 0, acknowledged: 1, open: 2 };

// An incident's row: its first alert leads; the row shows the worst severity and the least advanced status.
export function incidents(alerts) {
  const groups = new Map();
  for (const a of alerts) {
    const key = a.incident ?? a.id;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  return [...groups.values()].map((members) => {
    members.sort((x, y) => x.id - y.id);
    const worst = (rank, field) => members.reduce((w, m) => (rank[m[field]] > rank[w] ? m[field] : w), members[0][field]);
    return { lead: members[0], members, severity: worst(SEVERITY_RANK, "severity"), status: worst(STATUS_RANK, "status") };
  });
}

export class AlertFeed {
  constructor(list, client, onSelect) {
    this.list = list;
    this.client = client;
    this.onSelect = onSelect;
    this.alerts = new Map();
    this.editing = new Map(); // alert id -> its item while a note is being written
    this.openOnly = true;
    this.sound = true;
    this.audio = null;
  }

  async load() {
    const page = await this.client.get("/alerts?limit=200");
    for (const a of page.items) this.put(a);
    this.render();
  }

  // A stream `resync` event: changes were missed for good (no longer kept by the server), so the
  // list starts again from the API rather than from what this page remembers.
  async reload() {
    this.alerts = new Map();
    await this.load();
  }

  // Keeps the newest copy of an alert; false when `a` is an older one arriving late.
  put(a) {
    if (!supersedes(a, this.alerts.get(a.id))) return false;
    this.alerts.set(a.id, a);
    return true;
  }

  // A stream `alert` event: the alert object plus `event` (opened, ended, withdrawn, contested...).
  // A withdrawn alert leaves the feed here and now (visible() skips it).
  receive(event) {
    if (!this.put(event)) return;
    this.render();
    if (event.event === "opened" && event.type === "seal_breach") this.alarm(event.id);
  }

  alarm(id) {
    const item = this.list.querySelector(`[data-ids~="${id}"]`);
    if (item) {
      item.classList.add("flash");
      item.scrollIntoView({ block: "nearest" });
    }
    if (this.sound) this.beep();
  }

  // Two short tones from WebAudio: no sound file to ship. Browsers allow audio only after the
  // user's first interaction with the page (the login, or any click).
  beep() {
    try {
      this.audio = this.audio || new AudioContext();
      const start = this.audio.currentTime;
      for (const [offset, freq] of [[0, 880], [0.25, 660]]) {
        const osc = this.audio.createOscillator();
        const gain = this.audio.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.2, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.2);
        osc.connect(gain).connect(this.audio.destination);
        osc.start(start + offset);
        osc.stop(start + offset + 0.2);
      }
    } catch (e) {
      console.warn("no sound", e);
    }
  }

  // Incident rows, newest first.
  visible() {
    const shown = [...this.alerts.values()].filter((a) => !a.withdrawn && (!this.openOnly || a.status !== "resolved"));
    return incidents(shown).sort((x, y) => {
      const [a, b] = [x.lead, y.lead];
      return b.started_at < a.started_at ? -1 : b.started_at > a.started_at ? 1 : b.id - a.id;
    });
  }

  render() {
    const flashing = new Set([...this.list.querySelectorAll(".flash")].map((li) => li.dataset.id));
    const focus = this.focusPlace();
    this.list.replaceChildren(...this.visible().map((g) => this.editing.get(g.lead.id)
      || this.item(g, flashing.has(String(g.lead.id)))));
    if (focus && !this.list.contains(document.activeElement)) this.list.querySelector(focus)?.focus();
  }

  // Where the keyboard's focus is in the feed, as a selector that finds it again after a redraw (live
  // updates redraw the rows: a keyboard user must not be thrown back to the page's start).
  focusPlace() {
    const el = document.activeElement;
    const li = this.list.contains(el) ? el.closest("li[data-id]") : null;
    if (!li || el === li) return null;
    const row = `li[data-id="${li.dataset.id}"]`;
    if (el.matches("a.open")) return `${row} a.open`;
    if (el.matches(".actions button")) return `${row} .actions button:nth-of-type(${[...el.parentNode.children]
      .filter((c) => c.tagName === "BUTTON").indexOf(el) + 1})`;
    return null;
  }

  item(group, flashing) {
    const { lead: a, members, severity, status } = group;
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.dataset.ids = members.map((m) => m.id).join(" ");
    li.className = `${status}${flashing ? " flash" : ""}`;
    li.style.setProperty("--c", SEVERITY_COLOUR[severity]);
    const flags = [label("status", status), a.ended_at && t("control.feed.ended"), a.late && t("control.feed.late")]
      .filter(Boolean).map(escapeHtml).join(" · ");
    const detail = alertDetail(a);
    const who = members.length > 1
      ? `<div class="row incident"><span>${escapeHtml(t("control.feed.truck", { truck: a.vehicle || a.device,
        n: members.length }))}: ${members.map((m) => escapeHtml(m.reference)).join(", ")}</span></div>`
      : "";
    const risk = a.risk_level && a.risk_level !== "medium"
      ? `<span class="risk ${escapeHtml(a.risk_level)}">${escapeHtml(t("control.feed.risk", {
        level: label("common.risk", a.risk_level) }))}</span>` : "";
    // The label is a link to the details: the keyboard opens them as a click on the row does (a link, not a
    // button: the row's buttons are the actions, offered only to the roles that act).
    li.innerHTML = `
      <div class="row"><span class="sev ${severity}">${label("severity", severity)}</span>
        <a class="open" href="#details">${alertLabel(a.type)}</a>
        <span class="when" title="${escapeHtml(when(a.started_at))}">${escapeHtml(ago(a.started_at))}</span></div>
      <div class="row"><span>${members.length > 1 ? escapeHtml(t("control.feed.incident")) : escapeHtml(a.reference)}</span>
        <span class="muted">${escapeHtml(a.device)}</span>${countryTag(a.country)}
        ${risk}<span class="status">${flags}</span></div>
      ${who}
      ${detail ? `<div class="row detail">${detail}</div>` : ""}
      ${a.contested ? `<div class="row">${contestedLabel(a)}</div>` : ""}`;
    li.addEventListener("click", (e) => {
      if (e.target.closest("a.open")) e.preventDefault();
      if (!e.target.closest(".actions")) this.onSelect(a, members);
    });
    if (this.client.may("act_on_alerts") && status !== "resolved") li.append(this.actions(group));
    return li;
  }

  actions(group) {
    const div = document.createElement("div");
    div.className = "actions";
    if (group.status === "open") div.append(button(t("control.feed.ack"), () => this.act(group, "ack", {})));
    div.append(button(t("control.feed.resolve_ask"), () => this.askNote(group, div)));
    return div;
  }

  // The resolve form in the alert's row: Enter in the note resolves, Escape (or Cancel) closes it and
  // gives the focus back to the row's "Resolve…" button.
  askNote(group, div) {
    const input = Object.assign(document.createElement("input"), {
      placeholder: t("control.feed.note"), required: true, maxLength: 2000,
    });
    input.setAttribute("aria-label", t("control.feed.note"));
    const outcome = outcomeSelect();
    const ok = button(t("control.feed.resolve"), () => input.value.trim() && outcome.value
      && this.act(group, "resolve", { note: input.value.trim(), outcome: outcome.value }));
    const cancel = () => {
      this.editing.delete(group.lead.id);
      this.render();
      this.list.querySelector(`li[data-id="${group.lead.id}"] .actions button:last-child`)?.focus();
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") ok.click(); });
    div.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); cancel(); } });
    div.setAttribute("role", "group");
    div.setAttribute("aria-label", t("control.feed.resolve_form", { label: t(`alert.type.${group.lead.type}`) }));
    div.replaceChildren(outcome, input, ok, button(t("common.cancel"), cancel));
    this.editing.set(group.lead.id, div.closest("li"));
    outcome.focus();
  }

  // One action on every alert of the incident that it applies to (each one audited by the API).
  async act(group, action, body) {
    const from = action === "ack" ? ["open"] : ["open", "acknowledged"];
    const targets = group.members.filter((m) => from.includes(m.status));
    try {
      for (const m of targets) this.put(await this.client.post(`/alerts/${m.id}/${action}`, body));
      this.editing.delete(group.lead.id);
      this.render();
    } catch (e) {
      alert(t(action === "ack" ? "control.feed.ack_failed" : "control.feed.resolve_failed",
        { id: group.lead.id, message: e.message }));
    }
  }
}

function button(label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); });
  return b;
}
