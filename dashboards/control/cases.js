// The open cases (GET /cases?status=open): a list above the alert feed; a case opens below it with
// its alerts, the officers' entries, the evidence (kind, size, SHA-256, download) and, while
// open, a form for an entry and one to close it. Shown to the roles that act on alerts.
import { ALERT_LABEL, escapeHtml, when } from "/static/format.js";
import { outcomeSelect } from "/static/outcomes.js";
import { photosBlock } from "./photos.js";

const kb = (n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} kB`);

export class CasePanel {
  // side: the column the panel goes into (before the alert feed).
  constructor(side, client) {
    this.client = client;
    this.section = Object.assign(document.createElement("section"), { id: "cases-section" });
    this.section.innerHTML = `<h2>Open cases <span class="count muted"></span></h2>
      <ol id="cases" class="cases"></ol><div id="case" hidden></div>`;
    side.insertBefore(this.section, side.querySelector("#feed-section"));
    this.list = this.section.querySelector("#cases");
    this.detail = this.section.querySelector("#case");
    this.cases = [];
    setInterval(() => this.load(), 30000);
  }

  async load() {
    this.cases = (await this.client.get("/cases?status=open&limit=50")).items;
    this.section.querySelector(".count").textContent = `(${this.cases.length})`;
    this.list.replaceChildren(...this.cases.map((c) => {
      const li = document.createElement("li");
      li.dataset.case = c.id;
      li.innerHTML = `<strong>Case ${c.id}</strong> · ${escapeHtml(c.reference)} · ${c.alert_ids.length} alert`
        + `${c.alert_ids.length === 1 ? "" : "s"} <span class="muted">opened ${when(c.opened_at)} by `
        + `${escapeHtml(c.opened_by)}</span>`;
      li.addEventListener("click", () => this.open(c.id));
      return li;
    }));
    if (!this.cases.length) this.list.innerHTML = "<li class='muted empty'>No open case.</li>";
  }

  async open(caseId) {
    const c = await this.client.get(`/cases/${caseId}`);
    this.detail.hidden = false;
    this.detail.dataset.case = c.id;
    this.detail.innerHTML = `
      <h3>Case ${c.id} · ${escapeHtml(c.reference)} <span class="status">${c.status}</span>
        <button type="button" class="close" aria-label="Close case view">✕</button></h3>
      ${c.status === "closed" ? `<p>Closed ${when(c.closed_at)} by ${escapeHtml(c.closed_by)}:
        <strong>${escapeHtml(c.outcome.replace(/_/g, " "))}</strong> — ${escapeHtml(c.summary)}</p>` : ""}
      <h4>Alerts</h4><ul>${c.alerts.map((a) => `<li>${ALERT_LABEL[a.type] || a.type} · ${a.severity}
        · ${escapeHtml((a.outcome || "").replace(/_/g, " "))} · ${escapeHtml(a.resolved_by || "")}</li>`).join("")}</ul>
      <h4>Entries</h4>${c.entries.length ? `<ol class="entries">${c.entries.map((e) => `<li><span class="muted">
        ${when(e.at)} ${escapeHtml(e.author)}:</span> ${escapeHtml(e.text)}</li>`).join("")}</ol>`
        : "<p class='muted'>None yet.</p>"}
      <h4>Evidence</h4><table class="evidence"><tbody>${c.evidence.map((e) => `<tr data-evidence="${e.id}">
        <td>${e.kind.replace("_", " ")}</td><td>${kb(e.bytes)}</td>
        <td><code title="SHA-256 ${e.sha256}">${e.sha256.slice(0, 12)}…</code></td>
        <td><button type="button" class="download">Download</button></td></tr>`).join("")}</tbody></table>
      <div class="case-actions"></div>`;
    this.detail.querySelector(".close").addEventListener("click", () => { this.detail.hidden = true; });
    for (const row of this.detail.querySelectorAll("tr[data-evidence]")) {
      row.querySelector(".download").addEventListener("click", () => this.download(c.id, row.dataset.evidence));
    }
    // The case's photos and its alerts' (from the roadside), before the actions.
    this.detail.querySelector(".case-actions").before(photosBlock(this.client, `/cases/${c.id}/photos`));
    if (c.status === "open") this.actions(c);
  }

  actions(c) {
    const box = this.detail.querySelector(".case-actions");
    const text = Object.assign(document.createElement("textarea"), { rows: 2, placeholder: "Entry (what was done)" });
    const add = button("Add entry", () => text.value.trim() && this.act(c.id, "entries", { text: text.value.trim() }));
    const outcome = outcomeSelect();
    const summary = Object.assign(document.createElement("input"), { placeholder: "Summary (required to close)" });
    const close = button("Close case", () => outcome.value && summary.value.trim()
      && this.act(c.id, "close", { outcome: outcome.value, summary: summary.value.trim() }));
    box.replaceChildren(text, add, outcome, summary, close);
  }

  async act(caseId, step, body) {
    try {
      await this.client.post(`/cases/${caseId}/${step}`, body);
      await Promise.all([this.open(caseId), this.load()]);
    } catch (e) {
      alert(`Could not ${step === "close" ? "close the case" : "add the entry"}: ${e.message}`);
    }
  }

  async download(caseId, evidenceId) {
    const { blob, filename } = await this.client.download(`/cases/${caseId}/evidence/${evidenceId}`);
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
}

function button(label, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: label });
  b.addEventListener("click", onClick);
  return b;
}
