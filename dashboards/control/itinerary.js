// A shipment's progress as a timeline: departed -> arrived at post A -> left A -> ... -> arrived at
// destination, with border crossings, release and inspections between, on fix time. Each step's
// state is told by a mark and a word (done, next, pending, skipped), not by colour alone.
import { countryTag, duration, escapeHtml, when } from "/static/format.js";

// Milestones that are not itinerary steps, placed among the steps by time.
const EXTRA = {
  border_crossed: (e) => `Crossed the border ${escapeHtml(e.detail?.from || "?")} → ${escapeHtml(e.detail?.to || "?")}`,
  released: () => "Goods released",
  inspection_authorised: (e) => `Inspection authorised at ${escapeHtml(e.office_code || "?")}`,
  inspection_opening: (e) => `Seal opened for inspection at ${escapeHtml(e.office_code || "?")}`,
  seal_armed: () => "Seal armed",
};
const MARK = { done: "●", next: "▶", pending: "○", skipped: "✕" };
const t = (iso) => (iso ? new Date(iso).getTime() : null);

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
      steps.push({ label: o.role === "destination" ? `Arrived at destination ${code}` : `Arrived at ${code}`, at,
        country: o.country });
    }
    if (o.role !== "destination") {
      const at = o.departed_at ?? (o.role === "departure" ? s.departed_at : null);
      const d = left.get(o.position)?.detail;
      const stay = d && d.inside_s != null
        ? `inside ${duration(d.inside_s)}${d.stationary_s != null ? `, stationary ${duration(d.stationary_s)}` : ""}` : "";
      steps.push({ label: o.role === "departure" ? `Departed ${code}` : `Left ${code}`, at, country: o.country,
        detail: stay });
    }
  }
  const lastDone = steps.map((x) => x.at != null).lastIndexOf(true);
  let nextGiven = false;
  for (const [i, step] of steps.entries()) {
    if (step.at != null) step.state = "done";
    else if (i < lastDone) step.state = "skipped"; // a later step happened without this one
    else if (!nextGiven) { step.state = "next"; nextGiven = true; } else step.state = "pending";
  }
  return withExtras(steps, lastDone, events.filter((e) => EXTRA[e.kind]).sort((a, b) => t(a.at) - t(b.at)));
}

function withExtras(steps, lastDone, extras) {
  const rows = extras.map((e) => ({ label: EXTRA[e.kind](e), at: e.at, country: e.country, state: "done",
    late: e.late, extra: true }));
  const out = lastDone < 0 ? rows.splice(0) : [];
  steps.forEach((step, i) => {
    if (step.at != null) while (rows.length && t(rows[0].at) < t(step.at)) out.push(rows.shift());
    out.push(step);
    if (i === lastDone) out.push(...rows.splice(0));
  });
  return out;
}

export function itineraryHtml(steps) {
  return `<ol class="itinerary">${steps.map((x) => `
    <li class="${x.state}${x.extra ? " extra" : ""}"><span class="mark" aria-hidden="true">${MARK[x.state]}</span>
      <span class="what">${x.label}</span> ${countryTag(x.country)}
      <span class="state">${x.state}</span>
      <span class="at">${x.at ? when(x.at) : ""}${x.late ? " · late data" : ""}</span>
      ${x.detail ? `<span class="stay muted">${x.detail}</span>` : ""}</li>`).join("")}</ol>`;
}

// The risk level with the scoring's reasons (Shipment.risk); "–" for a shipment without one.
export function riskHtml(risk) {
  if (!risk || !risk.level) return "–";
  const override = risk.override
    ? `<div class="muted">set to ${escapeHtml(risk.override.level)} by ${escapeHtml(risk.override.by)}:
        ${escapeHtml(risk.override.reason)} (computed ${escapeHtml(risk.computed)})</div>` : "";
  const reasons = (risk.reasons || []).map((r) => `<li>+${Number(r.points)} ${escapeHtml(r.factor)}:
    ${escapeHtml(r.detail)}</li>`).join("");
  return `<span class="risk ${escapeHtml(risk.level)}">${escapeHtml(risk.level)}</span>
    ${risk.score != null ? `score ${Number(risk.score)}` : ""}${override}
    ${reasons ? `<ul class="reasons">${reasons}</ul>` : ""}`;
}
