// The open cases (GET /cases?status=open): a list above the alert feed; a case opens below it with
// its alerts, the officers' entries, the evidence (kind, size, SHA-256, download) and, while
// open, a form for an entry and one to close it. Shown to the roles that act on alerts.
import { alertLabel, escapeHtml, label, when } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { outcomeSelect } from "/static/outcomes.js";

const kb = (n) => (n < 1024 ? t("common.bytes", { n: formatNumber(n) })
  : t("common.kilobytes", { n: formatNumber(n / 1024, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) }));
const e = escapeHtml;

export class CasePanel {
  // side: the column the panel goes into (before the alert feed).
  constructor(side, client) {
    this.client = client;
    this.section = Object.assign(document.createElement("section"), { id: "cases-section" });
    this.section.setAttribute("aria-labelledby", "cases-title");
    this.section.innerHTML = `<h2 id="cases-title"><span class="title"></span> <span class="count muted"></span></h2>
      <ol id="cases" class="cases"></ol><div id="case" hidden role="region" aria-labelledby="case-title"></div>`;
    side.insertBefore(this.section, side.querySelector("#feed-section"));
    this.list = this.section.querySelector("#cases");
    this.detail = this.section.querySelector("#case");
    this.cases = [];
    setInterval(() => this.load(), 30000);
  }

  async load() {
    this.cases = (await this.client.get("/cases?status=open&limit=50")).items;
    this.section.querySelector(".title").textContent = t("control.cases.open");
    this.section.querySelector(".count").textContent = `(${formatNumber(this.cases.length)})`;
    // Each case is a button: the keyboard opens it as a click does.
    this.list.replaceChildren(...this.cases.map((c) => {
      const li = document.createElement("li");
      li.dataset.case = c.id;
      li.innerHTML = `<button type="button" class="case-open"><strong>${e(t("control.case.title", { id: c.id }))}`
        + `</strong> · ${e(c.reference)} · ${e(t("control.cases.alerts", { n: c.alert_ids.length }))} `
        + `<span class="muted">${e(t("control.cases.opened", { at: when(c.opened_at), who: c.opened_by }))}</span></button>`;
      li.addEventListener("click", () => this.open(c.id));
      return li;
    }));
    if (!this.cases.length) this.list.innerHTML = `<li class='muted empty'>${e(t("control.cases.none"))}</li>`;
  }

  // The language changed: the list and the open case drawn again in it.
  redraw() {
    this.load();
    if (!this.detail.hidden) this.open(Number(this.detail.dataset.case), { focus: false });
  }

  // Opens a case below the list; the focus moves to its heading and, on Escape or "close", back to its opener.
  async open(caseId, { focus = true } = {}) {
    const c = await this.client.get(`/cases/${caseId}`);
    if (focus) this.returnTo = document.activeElement;
    this.detail.hidden = false;
    this.detail.dataset.case = c.id;
    const outcome = (v) => (v ? label("outcome", v) : "");
    this.detail.innerHTML = `
      <h3 id="case-title" tabindex="-1">${e(t("control.case.title", { id: c.id }))} · ${e(c.reference)}
        <span class="status">${e(t(`control.case.status.${c.status}`))}</span>
        <button type="button" class="close" aria-label="${e(t("control.case.close_view"))}">✕</button></h3>
      ${c.status === "closed" ? `<p>${e(t("control.case.closed", { at: when(c.closed_at), who: c.closed_by }))}
        <strong>${outcome(c.outcome)}</strong> — ${e(c.summary)}</p>` : ""}
      <h4>${e(t("control.details.alerts"))}</h4><ul>${c.alerts.map((a) => `<li>${alertLabel(a.type)}
        · ${label("severity", a.severity)} · ${outcome(a.outcome)} · ${e(a.resolved_by || "")}</li>`).join("")}</ul>
      <h4>${e(t("control.case.entries"))}</h4>${c.entries.length ? `<ol class="entries">${c.entries.map((x) =>
        `<li><span class="muted">${e(when(x.at))} ${e(x.author)}:</span> ${e(x.text)}</li>`).join("")}</ol>`
        : `<p class='muted'>${e(t("control.case.no_entries"))}</p>`}
      <h4>${e(t("control.case.evidence"))}</h4><table class="evidence"><tbody>${c.evidence.map((x) =>
        `<tr data-evidence="${x.id}"><td>${label("control.evidence", x.kind)}</td><td>${e(kb(x.bytes))}</td>
        <td><code title="SHA-256 ${x.sha256}">${x.sha256.slice(0, 12)}…</code></td>
        <td><button type="button" class="download">${e(t("control.case.download"))}</button></td></tr>`)
        .join("")}</tbody></table>
      <div class="case-actions"></div>`;
    const close = () => {
      this.detail.hidden = true;
      if (this.returnTo?.isConnected) this.returnTo.focus();
      else this.list.querySelector(`li[data-case="${c.id}"] button`)?.focus();
    };
    this.detail.querySelector(".close").addEventListener("click", close);
    this.detail.onkeydown = (ev) => { if (ev.key === "Escape") { ev.preventDefault(); close(); } };
    if (focus) this.detail.querySelector("h3").focus();
    for (const row of this.detail.querySelectorAll("tr[data-evidence]")) {
      row.querySelector(".download").addEventListener("click", () => this.download(c.id, row.dataset.evidence));
    }
    if (c.status === "open") this.actions(c);
  }

  actions(c) {
    const box = this.detail.querySelector(".case-actions");
    const text = Object.assign(document.createElement("textarea"), { rows: 2, placeholder: t("control.case.entry") });
    text.setAttribute("aria-label", t("control.case.entry"));
    const add = button(t("control.case.add"), () => text.value.trim()
      && this.act(c.id, "entries", { text: text.value.trim() }));
    const outcome = outcomeSelect();
    const summary = Object.assign(document.createElement("input"), { placeholder: t("control.case.summary") });
    summary.setAttribute("aria-label", t("control.case.summary"));
    const close = button(t("control.case.close"), () => outcome.value && summary.value.trim()
      && this.act(c.id, "close", { outcome: outcome.value, summary: summary.value.trim() }));
    box.replaceChildren(text, add, outcome, summary, close);
  }

  async act(caseId, step, body) {
    try {
      await this.client.post(`/cases/${caseId}/${step}`, body);
      await Promise.all([this.open(caseId, { focus: false }), this.load()]);
      this.detail.querySelector(step === "close" ? "h3" : "textarea")?.focus();
    } catch (err) {
      alert(t(step === "close" ? "control.case.close_failed" : "control.case.add_failed", { message: err.message }));
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
