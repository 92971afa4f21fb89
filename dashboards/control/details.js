// One shipment: declaration, progress along the route, ETA, a replay of its track with a
// time slider that shows where each of its alerts happened, and its alerts: who they are
// assigned to, "Assign…" (an officer or a unit, or the whole incident), and the case they are in.
import { SEVERITY_COLOUR, alertLabel, countryTag, escapeHtml, km, label, when } from "/static/format.js";
import { formatNumber, t } from "/static/i18n.js";
import { CasePanel } from "./cases.js";
import { itineraryHtml, itinerarySteps, riskHtml } from "./itinerary.js";
import { photosBlock } from "./photos.js";

// The element that opened the details, or its successor when live updates redrew it (an alert's row, a
// truck in the list): the focus goes back there.
function again(el) {
  if (el.isConnected) return el;
  const id = el.closest("[data-id]")?.dataset.id;
  if (id == null) return null;
  return document.querySelector(el.matches("a.open") ? `#feed li[data-id="${id}"] a.open`
    : `#trucks-list button[data-id="${id}"]`);
}

export class DetailPanel {
  constructor(L, map, section, client) {
    this.L = L;
    this.map = map;
    this.section = section;
    this.client = client;
    this.layer = L.layerGroup().addTo(map);
    this.shipment = null;
    this.timer = 0;
    // Cases and assignment belong to the roles that act on alerts.
    this.acts = client.may("act_on_alerts");
    this.cases = this.acts ? new CasePanel(section.parentElement, client) : null;
    this.cases?.load();
  }

  // Opens a shipment's details; the focus moves to their heading and, on Escape or "close", back to
  // where it was (the alert, the truck in the list).
  async show(shipmentId, { focus = true } = {}) {
    const from = focus ? document.activeElement : null;
    this.close({ restore: false });
    this.returnTo = from && from !== document.body ? from : this.returnTo;
    const [shipment, alerts] = await Promise.all([
      this.client.get(`/shipments/${shipmentId}`),
      this.client.get(`/alerts?shipment=${shipmentId}&limit=200`),
    ]);
    // A shipment with an itinerary comes from an API that also serves its timeline.
    const timeline = "itinerary" in shipment
      ? await this.client.get(`/shipments/${shipmentId}/timeline`) : { items: [] };
    const [cases, units] = this.acts ? await Promise.all([
      this.client.get(`/cases?shipment=${shipmentId}`), this.client.get("/units")]) : [{ items: [] }, { items: [] }];
    this.shipment = shipment;
    this.alerts = alerts.items.filter((a) => !a.withdrawn);
    this.caseOf = new Map(cases.items.flatMap((c) => c.alert_ids.map((id) => [id, c])));
    this.units = units.items;
    this.steps = itinerarySteps(shipment, timeline.items);
    this.section.hidden = false;
    this.section.innerHTML = this.html(shipment);
    this.section.querySelector(".close").addEventListener("click", () => this.close());
    this.section.onkeydown = (e) => {
      if (e.key === "Escape" && !e.defaultPrevented) { e.preventDefault(); this.close(); }
    };
    if (focus) this.section.querySelector("h3").focus();
    this.section.querySelector(".replay").addEventListener("click", () => this.replay());
    for (const li of this.section.querySelectorAll(".shipment-alerts > li[data-id]")) this.wire(li);
    for (const [action, next] of [["depart", "in_transit"], ["arrive", "arrived"], ["close", "closed"]]) {
      const b = this.section.querySelector(`[data-action=${action}]`);
      if (b) b.addEventListener("click", () => this.transition(action, next));
    }
  }

  html(s) {
    const p = s.progress || {};
    const share = p.route_length_m ? Math.min(100, (100 * (p.chainage_m || 0)) / p.route_length_m) : 0;
    const late = p.eta && new Date(p.eta) > new Date(s.deadline);
    const next = { registered: "depart", in_transit: "arrive", arrived: "close" }[s.status];
    const step = next && this.client.may("move_shipments")
      ? `<button type="button" data-action="${next}">${escapeHtml(t(`control.details.step.${next}`))}</button>` : "";
    const e = escapeHtml;
    const row = (key, value) => `<dt>${e(t(`control.details.${key}`))}</dt><dd>${value}</dd>`;
    return `
      <h3 id="details-title" tabindex="-1">${e(s.reference)} <span class="status">${label("common.shipment_status",
        s.status)}</span>
        <button type="button" class="close" aria-label="${e(t("control.details.close"))}">✕</button></h3>
      <dl>
        ${row("tracker", e(s.tracker_id))}
        ${row("seals", s.seal_ids.map(e).join(", ") || "–")}
        ${row("containers", s.containers.map(e).join(", ") || "–")}
        ${row("vehicle", e(s.vehicle || "–"))}
        ${row("country", countryTag(s.country) || "–")}
        <dt>${e(t("control.details.risk"))}</dt><dd class="risk-cell">${riskHtml(s.risk)}</dd>
        ${row("departed", e(when(s.departed_at)))}
        ${row("deadline", e(when(s.deadline)))}
        ${row("progress", `${e(t("control.details.progress_of", { done: km(p.chainage_m), total: km(p.route_length_m) }))}
          <div class="bar" aria-hidden="true"><div style="width:${share.toFixed(1)}%"></div></div>`)}
        ${row("off_line", p.distance_m == null ? "–" : e(t("common.metres", { n: formatNumber(Math.round(p.distance_m)) })))}
        ${row("speed", p.average_speed_kmh == null ? "–"
          : e(t("control.speed", { n: formatNumber(Math.round(p.average_speed_kmh)) })))}
        <dt>${e(t("control.details.eta"))}</dt><dd class="${late ? "error" : ""}">${e(when(p.eta))}${late
          ? ` ${e(t("control.details.after_deadline"))}` : ""}</dd>
        ${row("last_fix", e(when(p.last_fix_at)))}
        ${row("alerts", formatNumber(this.alerts.length))}
      </dl>
      <h4>${e(t("control.details.alerts"))}</h4>
      <ol class="shipment-alerts">${this.alerts.map((a) => this.alertHtml(a)).join("")
        || `<li class='muted'>${e(t("control.details.none"))}</li>`}</ol>
      <h4>${e(t("control.details.itinerary"))}</h4>
      ${itineraryHtml(this.steps)}
      <button type="button" class="replay primary">${e(t("control.details.replay"))}</button> ${step}
      <div id="replay"></div>`;
  }

  alertHtml(a) {
    const e = escapeHtml;
    const who = [a.assignee && t("control.details.officer", { who: a.assignee }),
      a.unit && t("control.details.unit", { unit: a.unit })].filter(Boolean).join(", ");
    const c = this.caseOf.get(a.id);
    const assign = this.acts && a.status !== "resolved"
      ? `<button type='button' class='assign'>${e(t("control.details.assign_ask"))}</button>` : "";
    const escalated = a.escalation_level ? ` · ${e(t("control.details.escalated", { n: a.escalation_level }))}` : "";
    return `<li data-id="${a.id}"><span class="sev ${e(a.severity)}">${label("severity", a.severity)}</span>
      ${alertLabel(a.type)}
      <span class="status">${label("status", a.status)}${escalated}</span>
      <div class="assigned">${who ? e(t("control.details.assigned", { who })) : `<span class='muted'>${
        e(t("control.details.not_assigned"))}</span>`}</div>
      ${c ? `<a href="#case-${c.id}" class="case-link" data-case="${c.id}">${e(t("control.case.link",
        { id: c.id, status: t(`control.case.status.${c.status}`) }))}</a>` : ""}
      ${assign}</li>`;
  }

  wire(li) {
    const id = Number(li.dataset.id);
    li.querySelector(".case-link")?.addEventListener("click", (e) => {
      e.preventDefault();
      this.cases.open(Number(e.target.dataset.case));
    });
    li.querySelector(".assign")?.addEventListener("click", () => this.askAssignee(li, id));
    // Photos the officers took for this alert (nothing shown when there are none).
    li.append(photosBlock(this.client, `/alerts/${id}/photos`, { showEmpty: false }));
  }

  // The assignment form: an officer (token subject) and/or a unit, optionally the whole incident.
  // Escape closes it and gives the focus back to its "Assign…" button.
  askAssignee(li, id) {
    const e = escapeHtml;
    const form = document.createElement("form");
    form.className = "assign-form";
    form.setAttribute("aria-label", t("control.details.assign_form", { id }));
    form.innerHTML = `<input name="assignee" placeholder="${e(t("control.details.officer_field"))}"
        aria-label="${e(t("control.details.officer_field"))}" maxlength="200">
      <select name="unit" aria-label="${e(t("control.details.unit_field"))}"><option value="">${
        e(t("control.details.no_unit"))}</option>${this.units.map((u) =>
        `<option value="${e(u.code)}">${e(u.code)} · ${e(u.name)}</option>`).join("")}</select>
      <label><input type="checkbox" name="incident"> ${e(t("control.details.whole_incident"))}</label>
      <button type="submit">${e(t("control.details.assign"))}</button>
      <button type="button" class="cancel">${e(t("common.cancel"))}</button>`;
    const opener = li.querySelector(".assign");
    const cancel = () => { form.replaceWith(opener); opener.focus(); };
    form.querySelector(".cancel").addEventListener("click", cancel);
    form.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { ev.preventDefault(); cancel(); }
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      try {
        await this.client.post(`/alerts/${id}/assign`, {
          assignee: data.get("assignee").trim() || null, unit: data.get("unit") || null,
          incident: data.get("incident") === "on",
        });
        await this.show(this.shipment.id, { focus: false });
        this.section.querySelector(`li[data-id="${id}"] .assign`)?.focus();
      } catch (err) {
        alert(t("control.details.assign_failed", { id, message: err.message }));
      }
    });
    opener.replaceWith(form);
    form.querySelector("input").focus();
  }

  async transition(action, expected) {
    try {
      const s = await this.client.post(`/shipments/${this.shipment.id}/${action}`, {});
      if (s.status === expected) await this.show(s.id);
    } catch (e) {
      alert(t("control.details.step_failed", { step: t(`control.details.step.${action}`), message: e.message }));
    }
  }

  async replay() {
    const s = this.shipment;
    const from = s.departed_at || s.created_at;
    const to = s.arrived_at || new Date().toISOString();
    const track = await this.client.get(
      `/devices/${encodeURIComponent(s.tracker_id)}/track?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    const box = this.section.querySelector("#replay");
    if (!track.geometry) {
      box.innerHTML = `<p class='muted'>${escapeHtml(t("control.replay.none"))}</p>`;
      return;
    }
    const latlngs = track.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
    const times = track.properties.times.map((t) => new Date(t).getTime());
    this.layer.clearLayers();
    this.L.polyline(latlngs, { color: "#0b5cad", weight: 3, opacity: 0.8 }).addTo(this.layer);
    const cursor = this.L.circleMarker(latlngs[0], { radius: 8, color: "#000", fillColor: "#fff", fillOpacity: 1 })
      .addTo(this.layer);
    const pins = this.alerts.filter((a) => a.lat != null).map((a) => ({
      alert: a,
      marker: this.L.circleMarker([a.lat, a.lon], {
        radius: 9, color: SEVERITY_COLOUR[a.severity], weight: 3, fillOpacity: 0.25,
      }).bindTooltip(`${alertLabel(a.type)} · ${escapeHtml(when(a.started_at))}`),
    }));
    this.map.fitBounds(this.L.latLngBounds(latlngs).pad(0.1));
    const sampled = track.properties.downsampled
      ? ` ${t("control.replay.sampled", { n: formatNumber(track.properties.bucket_s) })}` : "";
    box.innerHTML = `
      <div class="controls"><button type="button" class="play" aria-label="${escapeHtml(t("control.replay.play"))}"
          >▶</button>
        <input type="range" min="0" max="${latlngs.length - 1}" value="0"
          aria-label="${escapeHtml(t("control.replay.time"))}">
      </div>
      <div class="muted"><span class="t"></span> · ${escapeHtml(t("control.replay.positions",
        { n: formatNumber(latlngs.length) }))}${escapeHtml(sampled)}</div>
      <ol class="alerts">${pins.map((p) => `<li data-id="${p.alert.id}">${alertLabel(p.alert.type)}
        · ${escapeHtml(when(p.alert.started_at))}</li>`).join("")}</ol>`;
    const slider = box.querySelector("input");
    const label = box.querySelector(".t");
    const show = (i) => {
      const t = times[i];
      cursor.setLatLng(latlngs[i]);
      label.textContent = when(new Date(t).toISOString());
      for (const p of pins) {
        const started = new Date(p.alert.started_at).getTime();
        const ended = p.alert.ended_at ? new Date(p.alert.ended_at).getTime() : Infinity;
        if (started <= t) p.marker.addTo(this.layer); else p.marker.remove();
        box.querySelector(`li[data-id="${p.alert.id}"]`).classList.toggle("active", started <= t && t <= ended);
      }
    };
    slider.addEventListener("input", () => show(Number(slider.value)));
    box.querySelector(".play").addEventListener("click", (e) => this.play(slider, show, e.target));
    show(0);
  }

  play(slider, show, button) {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = 0;
      button.textContent = "▶";
      button.setAttribute("aria-label", t("control.replay.play"));
      return;
    }
    button.textContent = "⏸";
    button.setAttribute("aria-label", t("control.replay.pause"));
    const step = Math.max(1, Math.round(Number(slider.max) / 300)); // about 15 s for any track
    this.timer = setInterval(() => {
      const i = Math.min(Number(slider.max), Number(slider.value) + step);
      slider.value = i;
      show(i);
      if (i >= Number(slider.max)) this.play(slider, show, button);
    }, 50);
  }

  close({ restore = true } = {}) {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    this.layer.clearLayers();
    const wasOpen = !this.section.hidden;
    this.section.hidden = true;
    this.shipment = null;
    if (restore && wasOpen && this.returnTo) again(this.returnTo)?.focus();
    if (restore) this.returnTo = null;
  }

  // The language changed: the open shipment drawn again in it (the focus stays where it is).
  redraw() {
    if (this.shipment) this.show(this.shipment.id, { focus: false });
    this.cases?.redraw();
  }
}
