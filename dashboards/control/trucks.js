// Trucks on the map: every in-transit truck stamped into one pixel buffer as a copy of a
// pre-drawn circle of its state's colour (no path to build or rasterise per truck, no canvas call
// per truck: even without a GPU, 10,000 take about 10 ms), positions projected once per update
// (Web Mercator, as Leaflet's default CRS), redrawn at most once per animation frame however many
// arrived; hover and click found by distance on screen. Leaflet's own circle markers rebuild and
// rasterise a path per truck: see bench/map.py. Each state has its own shape as well as its colour
// (never the colour alone): the same SVG path draws the sprite, the legend and the header's counts.
import { escapeHtml } from "/static/format.js";
import { t } from "/static/i18n.js";

// Shapes in a 16 x 16 box centred on (8, 8): circle, square, diamond, triangle, cross.
export const STATES = {
  on_route: { colour: "#2e7d32", shape: "M14 8A6 6 0 1 1 2 8A6 6 0 1 1 14 8Z" },
  stopped: { colour: "#f9a825", shape: "M3 3H13V13H3Z" },
  no_signal: { colour: "#78848f", shape: "M8 1.5L14.5 8L8 14.5L1.5 8Z" },
  off_route: { colour: "#ef6c00", shape: "M8 1.5L14.8 13.5H1.2Z" },
  seal_breached: { colour: "#c62828",
    shape: "M2 4.5L4.5 2L8 5.5L11.5 2L14 4.5L10.5 8L14 11.5L11.5 14L8 10.5L4.5 14L2 11.5L5.5 8Z" },
};
const BOX = 16; // the shapes' box (px at ratio 1): 2 * RADIUS_PX + 4

// A state's shape as a small inline SVG (the legend, the counts, the trucks list): decorative, the word is beside it.
export function stateBadge(state, size = 14) {
  const s = STATES[state];
  return `<svg class="state-shape" width="${size}" height="${size}" viewBox="0 0 ${BOX} ${BOX}" aria-hidden="true">`
    + `<path d="${s.shape}" fill="${s.colour}" stroke="#fff" stroke-width="1.2"/></svg>`;
}

// A state's name in the page's language.
export function stateLabel(state) {
  return t(`control.state.${state}`);
}
const DRAW_ORDER = Object.keys(STATES); // the worst drawn last, on top
const RANK = Object.fromEntries(DRAW_ORDER.map((state, i) => [state, i]));
const STOPPED_KMH = 3;
const RADIUS_PX = 6;
const HIT_PX = 9;
const MAX_LAT = 85.0511287798; // Web Mercator's edge

// Web Mercator in [0, 1] x [0, 1]: times 256 * 2^zoom, Leaflet's pixel coordinates at that zoom.
function mercator(lat, lon) {
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  return [0.5 + lon / 360, 0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI)];
}

// A truck's shape drawn once by the canvas (anti-aliased, white rim) and kept as pixels to copy.
function sprite({ colour, shape }, ratio) {
  const size = Math.ceil(BOX * ratio);
  const c = document.createElement("canvas");
  c.width = c.height = size;
  const ctx = c.getContext("2d");
  ctx.scale(ratio, ratio);
  const path = new Path2D(shape);
  ctx.fillStyle = colour;
  ctx.fill(path);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#ffffff";
  ctx.stroke(path);
  return { size, pixels: new Uint32Array(ctx.getImageData(0, 0, size, size).data.buffer.slice(0)) };
}

// Copies a sprite's visible pixels into the buffer (width w, height h) with its centre at (cx, cy).
function stamp(buffer, w, h, sprite, cx, cy) {
  const { size, pixels } = sprite;
  const x0 = cx - (size >> 1);
  const y0 = cy - (size >> 1);
  const xs = Math.max(0, -x0);
  const xe = Math.min(size, w - x0);
  const ys = Math.max(0, -y0);
  const ye = Math.min(size, h - y0);
  for (let y = ys; y < ye; y++) {
    const row = (y0 + y) * w + x0;
    const from = y * size;
    for (let x = xs; x < xe; x++) {
      const px = pixels[from + x];
      if (px) buffer[row + x] = px;
    }
  }
}

// The worst thing that is true of a truck wins. Open conditions of issue 13 colour it too: a
// U-turn is off its route, a jammed receiver gives no usable signal, a long border stay is a stop.
const OFF_ROUTE = ["route_deviation", "route_reversal"];
const NO_SIGNAL = ["signal_lost", "gps_jamming"];
const STOPPED = ["unscheduled_stop", "border_dwell"];

export function truckState(props, openAlerts) {
  const any = (types) => types.some((t) => openAlerts.has(t));
  if (openAlerts.has("seal_breach")) return "seal_breached";
  if (any(OFF_ROUTE)) return "off_route";
  if (any(NO_SIGNAL) || (props.state && props.state !== "online")) return "no_signal";
  if (any(STOPPED) || (props.spd != null && props.spd < STOPPED_KMH)) return "stopped";
  return "on_route";
}

export class TruckLayer {
  constructor(L, map, onSelect) {
    this.L = L;
    this.map = map;
    this.onSelect = onSelect;
    this.trucks = new Map(); // shipment id -> {lat, lon, props, alerts: Set, state}
    this.pending = new Map();
    this.frame = 0;
    this.onCounts = () => {};
    this.canvas = L.DomUtil.create("canvas", "trucks", map.createPane("trucks"));
    this.canvas.style.pointerEvents = "none"; // the map gets the events; we find the truck under them
    this.tooltip = L.tooltip({ direction: "top", offset: [0, -RADIUS_PX] });
    this.hovered = null;
    map.on("moveend zoomend resize viewreset", () => this.reset());
    map.on("zoomstart", () => { this.canvas.style.visibility = "hidden"; });
    map.on("click", (e) => {
      const id = this.at(e.containerPoint);
      if (id != null) this.onSelect(id);
    });
    map.on("mousemove", (e) => this.hover(e.containerPoint));
    this.reset();
  }

  // A GeoJSON Feature of /positions/latest or of a stream `position` event.
  update(feature) {
    this.pending.set(feature.id, feature);
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    for (const feature of this.pending.values()) this.apply(feature);
    this.pending.clear();
    this.draw();
    this.onCounts(this.counts());
  }

  apply(feature) {
    const [lon, lat] = feature.geometry.coordinates;
    const props = feature.properties;
    let truck = this.trucks.get(feature.id);
    const [mx, my] = mercator(lat, lon);
    if (!truck) {
      truck = { id: feature.id, lat, lon, mx, my, props, alerts: new Set(props.open_alerts || []), state: null };
      this.trucks.set(feature.id, truck);
    } else {
      Object.assign(truck, { lat, lon, mx, my, props, alerts: new Set(props.open_alerts || []) });
    }
    truck.state = truckState(truck.props, truck.alerts);
  }

  // An alert event changes a truck's colour before its next position arrives.
  alert(alert) {
    const truck = this.trucks.get(alert.shipment);
    if (!truck) return;
    if (alert.ended_at == null && !alert.withdrawn && alert.status !== "resolved") truck.alerts.add(alert.type);
    else truck.alerts.delete(alert.type);
    truck.state = truckState(truck.props, truck.alerts);
    this.schedule();
  }

  // The canvas covers the map's container; a pan moves it with the map until the move ends.
  reset() {
    const size = this.map.getSize();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = size.x * ratio;
    this.canvas.height = size.y * ratio;
    this.canvas.style.width = `${size.x}px`;
    this.canvas.style.height = `${size.y}px`;
    this.L.DomUtil.setPosition(this.canvas, this.map.containerPointToLayerPoint([0, 0]));
    this.canvas.style.visibility = "visible";
    this.sprites = Object.fromEntries(DRAW_ORDER.map((st) => [st, sprite(STATES[st], ratio)]));
    this.draw();
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.width;
    const h = this.canvas.height;
    if (!this.image || this.image.width !== w || this.image.height !== h) {
      this.image = ctx.createImageData(w, h);
      this.buffer = new Uint32Array(this.image.data.buffer);
    }
    this.buffer.fill(0);
    const scale = 256 * 2 ** this.map.getZoom();
    // Container point = projected point - pixel origin + map pane offset (Leaflet's own formula).
    const origin = this.map.getPixelOrigin();
    const pane = this.map.containerPointToLayerPoint([0, 0]);
    const ox = origin.x + pane.x;
    const oy = origin.y + pane.y;
    const byState = Object.fromEntries(DRAW_ORDER.map((st) => [st, []]));
    for (const t of this.trucks.values()) {
      t.x = t.mx * scale - ox;
      t.y = t.my * scale - oy;
      byState[t.state].push(t);
    }
    for (const state of DRAW_ORDER) {
      const s = this.sprites[state];
      for (const t of byState[state]) stamp(this.buffer, w, h, s, Math.round(t.x * ratio), Math.round(t.y * ratio));
    }
    ctx.putImageData(this.image, 0, 0);
  }

  // The truck drawn nearest to a container point, within reach of a finger or a mouse; the worst on top wins.
  at(point) {
    let best = null;
    let bestRank = -1;
    let bestD = HIT_PX * HIT_PX;
    for (const t of this.trucks.values()) {
      const d = (t.x - point.x) ** 2 + (t.y - point.y) ** 2;
      const rank = RANK[t.state];
      if (d <= HIT_PX * HIT_PX && (rank > bestRank || (rank === bestRank && d < bestD))) {
        best = t.id;
        bestRank = rank;
        bestD = d;
      }
    }
    return best;
  }

  hover(point) {
    const id = this.at(point);
    this.map.getContainer().style.cursor = id == null ? "" : "pointer";
    if (id === this.hovered) return;
    this.hovered = id;
    if (id == null) { this.tooltip.remove(); return; }
    const t = this.trucks.get(id);
    this.tooltip.setLatLng([t.lat, t.lon]).setContent(truckText(t).map(escapeHtml).join("<br>")).addTo(this.map);
  }

  counts() {
    const counts = Object.fromEntries(Object.keys(STATES).map((s) => [s, 0]));
    for (const t of this.trucks.values()) counts[t.state] += 1;
    return counts;
  }

  position(id) {
    const t = this.trucks.get(id);
    return t ? this.L.latLng(t.lat, t.lon) : null;
  }
}

// A truck in words: reference, device and speed, state (the tooltip and the trucks list).
export function truckText(truck) {
  const spd = truck.props.spd == null ? "" : ` · ${t("control.speed", { n: Math.round(truck.props.spd) })}`;
  return [truck.props.reference, `${truck.props.device}${spd}`, stateLabel(truck.state)];
}

// The states' shapes and words; `redraw()` refills it in the page's language.
export function legend(L) {
  const control = L.control({ position: "bottomleft" });
  control.onAdd = () => L.DomUtil.create("div", "legend trucks-legend");
  control.redraw = () => {
    control.getContainer().innerHTML = `<strong class="legend-title">${escapeHtml(t("control.trucks.legend"))}`
      + `</strong><br>${[...DRAW_ORDER].reverse().map((s) => `${stateBadge(s)} ${escapeHtml(stateLabel(s))}`)
        .join("<br>")}`;
  };
  return control;
}
