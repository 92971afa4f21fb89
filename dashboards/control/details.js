// One shipment: declaration, progress along the route, ETA, a replay of its track with a
// time slider that shows where each of its alerts happened, and its alerts: who they are
// assigned to, "Assign…" (an officer or a unit, or the whole incident), and the case they are in.
import { ALERT_LABEL, SEVERITY_COLOUR, countryTag, escapeHtml, km, when } from "/static/format.js";
import { CasePanel } from "./cases.js";
import { itineraryHtml, itinerarySteps, riskHtml } from "./itinerary.js";
import { photosBlock } from "./photos.js";

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

  async show(shipmentId) {
    this.close();
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
    this.section.querySelector(".replay").addEventListener("click", () => this.replay());
    for (const li of this.section.querySelectorAll(".shipment-alerts li")) this.wire(li);
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
      ? `<button type="button" data-action="${next}">${next[0].toUpperCase() + next.slice(1)}</button>` : "";
    return `
      <h3>${escapeHtml(s.reference)} <span class="status">${s.status.replace("_", " ")}</span>
        <button type="button" class="close" aria-label="Close">✕</button></h3>
      <dl>
        <dt>Tracker</dt><dd>${escapeHtml(s.tracker_id)}</dd>
        <dt>E-seals</dt><dd>${s.seal_ids.map(escapeHtml).join(", ") || "–"}</dd>
        <dt>Containers</dt><dd>${s.containers.map(escapeHtml).join(", ") || "–"}</dd>
        <dt>Vehicle</dt><dd>${escapeHtml(s.vehicle || "–")}</dd>
        <dt>Now in</dt><dd>${countryTag(s.country) || "–"}</dd>
        <dt>Risk</dt><dd class="risk-cell">${riskHtml(s.risk)}</dd>
        <dt>Departed</dt><dd>${when(s.departed_at)}</dd>
        <dt>Deadline</dt><dd>${when(s.deadline)}</dd>
        <dt>Progress</dt><dd>${km(p.chainage_m)} of ${km(p.route_length_m)}
          <div class="bar"><div style="width:${share.toFixed(1)}%"></div></div></dd>
        <dt>Off the route line</dt><dd>${p.distance_m == null ? "–" : `${Math.round(p.distance_m)} m`}</dd>
        <dt>Average speed</dt><dd>${p.average_speed_kmh == null ? "–" : `${p.average_speed_kmh.toFixed(0)} km/h`}</dd>
        <dt>ETA</dt><dd class="${late ? "error" : ""}">${when(p.eta)}${late ? " (after the deadline)" : ""}</dd>
        <dt>Last fix</dt><dd>${when(p.last_fix_at)}</dd>
        <dt>Alerts</dt><dd>${this.alerts.length}</dd>
      </dl>
      <h4>Alerts</h4>
      <ol class="shipment-alerts">${this.alerts.map((a) => this.alertHtml(a)).join("")
        || "<li class='muted'>None.</li>"}</ol>
      <h4>Itinerary</h4>
      ${itineraryHtml(this.steps)}
      <button type="button" class="replay primary">Replay track</button> ${step}
      <div id="replay"></div>`;
  }

  alertHtml(a) {
    const who = [a.assignee && `officer ${escapeHtml(a.assignee)}`, a.unit && `unit ${escapeHtml(a.unit)}`]
      .filter(Boolean).join(", ");
    const c = this.caseOf.get(a.id);
    const assign = this.acts && a.status !== "resolved" ? "<button type='button' class='assign'>Assign…</button>" : "";
    return `<li data-id="${a.id}"><span class="sev ${a.severity}">${a.severity}</span> ${ALERT_LABEL[a.type] || a.type}
      <span class="status">${a.status}${a.escalation_level ? ` · escalated ×${a.escalation_level}` : ""}</span>
      <div class="assigned">${who ? `Assigned to ${who}` : "<span class='muted'>Not assigned</span>"}</div>
      ${c ? `<a href="#case-${c.id}" class="case-link" data-case="${c.id}">Case ${c.id} (${c.status})</a>` : ""}
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
  askAssignee(li, id) {
    const form = document.createElement("form");
    form.className = "assign-form";
    form.innerHTML = `<input name="assignee" placeholder="Officer (token subject)" maxlength="200">
      <select name="unit" aria-label="Unit"><option value="">No unit</option>${this.units.map((u) =>
        `<option value="${escapeHtml(u.code)}">${escapeHtml(u.code)} · ${escapeHtml(u.name)}</option>`).join("")}</select>
      <label><input type="checkbox" name="incident"> whole incident</label>
      <button type="submit">Assign</button>`;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      try {
        await this.client.post(`/alerts/${id}/assign`, {
          assignee: data.get("assignee").trim() || null, unit: data.get("unit") || null,
          incident: data.get("incident") === "on",
        });
        await this.show(this.shipment.id);
      } catch (err) {
        alert(`Could not assign alert ${id}: ${err.message}`);
      }
    });
    li.querySelector(".assign").replaceWith(form);
    form.querySelector("input").focus();
  }

  async transition(action, expected) {
    try {
      const s = await this.client.post(`/shipments/${this.shipment.id}/${action}`, {});
      if (s.status === expected) await this.show(s.id);
    } catch (e) {
      alert(`Could not ${action}: ${e.message}`);
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
      box.innerHTML = "<p class='muted'>No track yet: fewer than two fixes since departure.</p>";
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
      }).bindTooltip(`${ALERT_LABEL[a.type]} · ${when(a.started_at)}`),
    }));
    this.map.fitBounds(this.L.latLngBounds(latlngs).pad(0.1));
    const sampled = track.properties.downsampled ? ` (one fix per ${track.properties.bucket_s} s)` : "";
    box.innerHTML = `
      <div class="controls"><button type="button" class="play">▶</button>
        <input type="range" min="0" max="${latlngs.length - 1}" value="0" aria-label="Replay time">
      </div>
      <div class="muted"><span class="t"></span> · ${latlngs.length} positions${sampled}</div>
      <ol class="alerts">${pins.map((p) => `<li data-id="${p.alert.id}">${ALERT_LABEL[p.alert.type]}
        · ${when(p.alert.started_at)}</li>`).join("")}</ol>`;
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
    if (this.timer) { clearInterval(this.timer); this.timer = 0; button.textContent = "▶"; return; }
    button.textContent = "⏸";
    const step = Math.max(1, Math.round(Number(slider.max) / 300)); // about 15 s for any track
    this.timer = setInterval(() => {
      const i = Math.min(Number(slider.max), Number(slider.value) + step);
      slider.value = i;
      show(i);
      if (i >= Number(slider.max)) this.play(slider, show, button);
    }, 50);
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    this.layer.clearLayers();
    this.section.hidden = true;
    this.shipment = null;
  }
}
