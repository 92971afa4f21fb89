// A shipment's progress as a timeline: departed -> arrived at post A -> left A -> ... -> arrived at
// destination, with border crossings, release and inspections between, on fix time. Each step's
// state is told by a mark and a word (done, next, pending, skipped), not by colour alone.
import { countryTag, duration, escapeHtml, label, when } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";

// Milestones that are not itinerary steps, placed among the steps by time (labels "control.milestone.<kind>").
const EXTRA = {
  border_crossed: (e) => ({ from: e.detail?.from || "?", to: e.detail?.to || "?" }),
  released: () => ({}),
  inspection_authorised: (e) => ({ office: e.office_code || "?" }),
  inspection_opening: (e) => ({ office: e.office_code || "?" }),
  seal_armed: () => ({}),
};
const escaped = (params) => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, escapeHtml(v)]));
const MARK = { done: "●", next: "▶", pending: "○", skipped: "✕" };
const ms = (iso) => (iso ? new Date(iso).getTime() : null);

// The itinerary (Shipment.itinerary, or departure and destination of a shipment without one).
function offices(s) {
  if (s.itinerary && s.itinerary.length) return s.itinerary;
  return [
    { position: 0, role: "departure", office_code: s.office_of_departure, departed_at: null },
    { position: 1, role: "destination", office_code: s.office_of_destination, arrived_at: null },
  ];
}

// The itinerary's steps in order, each {label, at, country, state, detail}.
export function itinerarySteps(s, events = []) {
  const steps = [];
  const left = new Map(events.filter((e) => e.kind === "departed").map((e) => [e.position, e]));
  for (const o of offices(s)) {
    const code = escapeHtml(o.office_code);
    if (o.role !== "departure") {
      const at = o.arrived_at ?? (o.role === "destination" ? s.arrived_at : null);
      steps.push({ label: t(o.role === "destination" ? "control.step.arrived_destination" : "control.step.arrived",
        { office: code }), at, country: o.country });
    }
    if (o.role !== "destination") {
      const at = o.departed_at ?? (o.role === "departure" ? s.departed_at : null);
      const d = left.get(o.position)?.detail;
      const stay = d && d.inside_s != null
        ? escapeHtml(t(d.stationary_s != null ? "control.step.stay_stationary" : "control.step.stay",
          { inside: duration(d.inside_s), stationary: duration(d.stationary_s) })) : "";
      steps.push({ label: t(o.role === "departure" ? "control.step.departed" : "control.step.left", { office: code }),
        at, country: o.country, detail: stay });
    }
  }
  const lastDone = steps.map((x) => x.at != null).lastIndexOf(true);
  let nextGiven = false;
  for (const [i, step] of steps.entries()) {
    if (step.at != null) step.state = "done";
    else if (i < lastDone) step.state = "skipped"; // a later step happened without this one
    else if (!nextGiven) { step.state = "next"; nextGiven = true; } else step.state = "pending";
  }
  return withExtras(steps, lastDone, events.filter((e) => EXTRA[e.kind]).sort((a, b) => ms(a.at) - ms(b.at)));
}

function withExtras(steps, lastDone, extras) {
  const rows = extras.map((e) => ({ label: t(`control.milestone.${e.kind}`, escaped(EXTRA[e.kind](e))), at: e.at,
    country: e.country, state: "done",
    late: e.late, extra: true }));
  const out = lastDone < 0 ? rows.splice(0) : [];
  steps.forEach((step, i) => {
    if (step.at != null) while (rows.length && ms(rows[0].at) < ms(step.at)) out.push(rows.shift());
    out.push(step);
    if (i === lastDone) out.push(...rows.splice(0));
  });
  return out;
}

export function itineraryHtml(steps) {
  return `<ol class="itinerary">${steps.map((x) => `
    <li class="${x.state}${x.extra ? " extra" : ""}"><span class="mark" aria-hidden="true">${MARK[x.state]}</span>
      <span class="what">${x.label}</span> ${countryTag(x.country)}
      <span class="state">${label("control.step.state", x.state)}</span>
      <span class="at">${x.at ? escapeHtml(when(x.at)) : ""}${x.late ? ` · ${escapeHtml(t("control.step.late"))}` : ""}</span>
      ${x.detail ? `<span class="stay muted">${x.detail}</span>` : ""}</li>`).join("")}</ol>`;
}

// The risk level with the scoring's reasons (Shipment.risk); "–" for a shipment without one.
export function riskHtml(risk) {
  if (!risk || !risk.level) return "–";
  const override = risk.override
    ? `<div class="muted">${escapeHtml(t("control.risk.override", { level: t(`common.risk.${risk.override.level}`),
      who: risk.override.by, reason: risk.override.reason, computed: t(`common.risk.${risk.computed}`) }))}</div>` : "";
  const reasons = (risk.reasons || []).map((r) => `<li>+${Number(r.points)} ${escapeHtml(r.factor)}:
    ${escapeHtml(r.detail)}</li>`).join("");
  return `<span class="risk ${escapeHtml(risk.level)}">${label("common.risk", risk.level)}</span>
    ${risk.score != null ? escapeHtml(t("control.risk.score", { n: formatNumber(Number(risk.score)) })) : ""}${override}
    ${reasons ? `<ul class="reasons">${reasons}</ul>` : ""}`;
}
