// The alert feed: newest first, severity colours, a sound and a highlight on a new seal breach,
// acknowledge and resolve where the caller's role allows it.
import { ALERT_LABEL, SEVERITY_COLOUR, ago, contestedLabel, escapeHtml, supersedes } from "/static/format.js";

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
    const item = this.list.querySelector(`[data-id="${id}"]`);
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

  visible() {
    return [...this.alerts.values()]
      .filter((a) => !a.withdrawn && (!this.openOnly || a.status !== "resolved"))
      .sort((a, b) => (b.started_at < a.started_at ? -1 : b.started_at > a.started_at ? 1 : b.id - a.id));
  }

  render() {
    const flashing = new Set([...this.list.querySelectorAll(".flash")].map((li) => li.dataset.id));
    this.list.replaceChildren(...this.visible().map((a) => this.editing.get(a.id)
      || this.item(a, flashing.has(String(a.id)))));
  }

  item(a, flashing) {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.className = `${a.status}${flashing ? " flash" : ""}`;
    li.style.setProperty("--c", SEVERITY_COLOUR[a.severity]);
    const ended = a.ended_at ? " · ended" : "";
    li.innerHTML = `
      <div class="row"><span class="sev ${a.severity}">${a.severity}</span>
        <strong>${ALERT_LABEL[a.type] || escapeHtml(a.type)}</strong>
        <span class="when" title="${escapeHtml(a.started_at)}">${ago(a.started_at)}</span></div>
      <div class="row"><span>${escapeHtml(a.reference)}</span><span class="muted">${escapeHtml(a.device)}</span>
        <span class="status">${a.status}${ended}${a.late ? " · late" : ""}</span></div>
      ${a.contested ? `<div class="row">${contestedLabel(a)}</div>` : ""}`;
    li.addEventListener("click", (e) => { if (!e.target.closest(".actions")) this.onSelect(a); });
    if (this.client.may("act_on_alerts") && a.status !== "resolved") li.append(this.actions(a));
    return li;
  }

  actions(a) {
    const div = document.createElement("div");
    div.className = "actions";
    if (a.status === "open") div.append(button("Acknowledge", () => this.act(a, "ack", {})));
    div.append(button("Resolve…", () => this.askNote(a, div)));
    return div;
  }

  askNote(a, div) {
    const input = Object.assign(document.createElement("input"), {
      placeholder: "What was found (required)", required: true, maxLength: 2000,
    });
    const ok = button("Resolve", () => input.value.trim() && this.act(a, "resolve", { note: input.value.trim() }));
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") ok.click(); });
    div.replaceChildren(input, ok, button("Cancel", () => { this.editing.delete(a.id); this.render(); }));
    this.editing.set(a.id, div.closest("li"));
    input.focus();
  }

  async act(a, action, body) {
    try {
      this.put(await this.client.post(`/alerts/${a.id}/${action}`, body));
      this.editing.delete(a.id);
      this.render();
    } catch (e) {
      alert(`Could not ${action} alert ${a.id}: ${e.message}`);
    }
  }
}

function button(label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); });
  return b;
}
