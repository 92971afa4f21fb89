"""Evaluate tracks against routes and zones: alert transitions, no IO.

``evaluate`` takes each tracker's new fixes with its saved state and returns
what opened or ended plus the new states; the caller stores both in one
transaction and only then adopts the new states, so a failed commit changes
nothing. Seal events and wall-clock rules are plain functions below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from geofence import kernels
from geofence.columns import StateColumns
from geofence.geometry import Network
from geofence.kernels import events as ev
from geofence.kernels.devices import Fixes, Limits
from geofence.kernels.itinerary import Itinerary
from geofence.prism import prism_polygon
from geofence.rules import Rules
from geofence.state import CONTEXT, DeviceState
from geofence.types import BoolArray, FloatArray, IntArray
from protocol.alerts import AlertType

BREACH_EVENTS = frozenset({"opened", "tampered", "cut"})
REARM_EVENTS = frozenset({"armed", "closed"})
_RECORD = np.dtype(f"V{CONTEXT.itemsize}")  # a CONTEXT record as bytes
MilestoneKind = Literal["arrived", "departed", "border_crossed"]
EventKind = Literal["opened", "ended", "milestone"]
_KIND: dict[int, tuple[EventKind, AlertType | MilestoneKind]] = {
    ev.DEVIATION_OPENED: ("opened", "route_deviation"),
    ev.DEVIATION_ENDED: ("ended", "route_deviation"),
    ev.STOP_OPENED: ("opened", "unscheduled_stop"),
    ev.STOP_ENDED: ("ended", "unscheduled_stop"),
    ev.ARRIVED: ("milestone", "arrived"),
    ev.DEPARTED: ("milestone", "departed"),
    ev.OFFICE_SKIPPED: ("opened", "office_skipped"),
    ev.DWELL_OPENED: ("opened", "border_dwell"),
    ev.DWELL_ENDED: ("ended", "border_dwell"),
    ev.REVERSAL_OPENED: ("opened", "route_reversal"),
    ev.REVERSAL_ENDED: ("ended", "route_reversal"),
    ev.GAP: ("opened", "suspicious_gap"),
    ev.BORDER_CROSSED: ("milestone", "border_crossed"),
    ev.BORDER_BYPASS: ("opened", "border_bypass"),
}
# The alert types the engine raises and replays reconcile (the rest are milestones).
ENGINE_ALERT_TYPES: tuple[AlertType, ...] = tuple(dict.fromkeys(
    cast(AlertType, kind) for event, kind in _KIND.values() if event != "milestone"))
_AT_OFFICE = frozenset({ev.ARRIVED, ev.DEPARTED, ev.OFFICE_SKIPPED, ev.DWELL_OPENED, ev.DWELL_ENDED})
MAX_OFFICES = 62  # itinerary positions are bits of an int64


class TrackError(ValueError):
    """Fixes the engine cannot take as they are; the message names the device."""


@dataclass(frozen=True)
class Binding:
    """A tracker's in-transit shipment: route and destination as network indices."""

    shipment_id: int
    route: int
    destination_zone: int  # -1 when the destination office has no zone
    departed_ms: int
    offices: tuple[int, ...] = ()  # itinerary zone indices (network.zone_index), departure first; -1: no zone
    dwell_ms: tuple[int, ...] = ()  # parallel to offices: border_dwell limit (ms) there, 0 = not watched
    transit: tuple[bool, ...] = ()  # parallel: is an office of transit (office_skipped watches these)
    corridor_factor: float = 1.0  # <= 1, scales the route's half-width
    stop_min_ms: int = 0  # 0: Rules.stop_min_duration_s
    office_codes: tuple[str, ...] = ()  # parallel to offices, for alert details (empty: none)

    def code(self, position: int) -> str | None:
        """The office code at an itinerary position, None when not given."""
        return self.office_codes[position] if 0 <= position < len(self.office_codes) else None


@dataclass(frozen=True)
class Track:
    """Fixes of one tracker: fix time (epoch ms), degrees, and whether each came
    in a store-and-forward array (backlog)."""

    t: IntArray
    lon: FloatArray
    lat: FloatArray
    backlog: BoolArray

    @classmethod
    def of(cls, t: list[int], lon: list[float], lat: list[float], backlog: list[bool] | None = None) -> Track:
        n = len(t)
        flags = np.zeros(n, dtype=np.bool_) if backlog is None else np.asarray(backlog, dtype=np.bool_)
        track = cls(np.asarray(t, dtype=np.int64), np.asarray(lon, dtype=np.float64),
                    np.asarray(lat, dtype=np.float64), flags)
        if not (len(track.lon) == len(track.lat) == len(track.backlog) == n):
            raise TrackError(f"track arrays differ in length: t={n}, lon={len(lon)}, lat={len(lat)}")
        return track


@dataclass(frozen=True)
class Transition:
    """An alert condition that opened or ended, or a milestone, in fix time (epoch ms).

    ``started_ms`` is the first fix of the condition, ``ended_ms`` the last one;
    ``crossed_ms`` the fix at which the threshold was crossed (open) or the
    ending was confirmed (end). ``late``: raised from backlog. Instantaneous
    alerts open with ``ended_ms`` set. A milestone's time (its ``at``) is
    ``started_ms``, the fix that confirmed it ``crossed_ms``, ``ended_ms`` None.
    ``office``: itinerary position (arrived, departed, office_skipped,
    border_dwell), else -1; ``country``: alpha-3 at the fix that decided it.
    """

    event: EventKind
    type: AlertType | MilestoneKind
    device_id: str
    shipment_id: int
    started_ms: int | None
    ended_ms: int | None
    crossed_ms: int
    lon: float
    lat: float
    late: bool
    office: int = -1
    country: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alert_type(self) -> AlertType | None:
        """The alert's type; None for a milestone."""
        return None if self.event == "milestone" else cast(AlertType, self.type)

    @property
    def instantaneous(self) -> bool:
        """An alert that opened already ended (ended_ms set)."""
        return self.event == "opened" and self.ended_ms is not None


@dataclass(frozen=True)
class Tracks:
    """Fixes of many trackers in columns: tracker ``ids[k]``'s are rows
    ``[start[k], start[k + 1])``, in any time order (as ``Track``)."""

    ids: list[str]
    start: IntArray  # len(ids) + 1 offsets
    t: IntArray
    lon: FloatArray
    lat: FloatArray
    backlog: BoolArray

    @classmethod
    def of(cls, ids: list[str], tracks: Sequence[Track]) -> Tracks:
        """``tracks[k]`` is tracker ``ids[k]``'s."""
        sizes = np.array([len(tr.t) for tr in tracks], dtype=np.int64)
        start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        if not tracks:
            return cls(ids, start, np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0, dtype=np.bool_))
        return cls(ids, start, np.concatenate([tr.t for tr in tracks]).astype(np.int64, copy=False),
                   np.concatenate([tr.lon for tr in tracks]), np.concatenate([tr.lat for tr in tracks]),
                   np.concatenate([tr.backlog for tr in tracks]))

    @property
    def counts(self) -> IntArray:
        return np.diff(self.start)

    def track(self, k: int) -> Track:
        a, b = int(self.start[k]), int(self.start[k + 1])
        return Track(self.t[a:b], self.lon[a:b], self.lat[a:b], self.backlog[a:b])

    def take(self, keep: Sequence[int]) -> Tracks:
        """The trackers at positions ``keep``, in that order."""
        idx = np.asarray(keep, dtype=np.int64)
        counts = self.counts[idx]
        rows = np.repeat(self.start[idx], counts) + _ranges(counts)
        return Tracks([self.ids[k] for k in keep], np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                      self.t[rows], self.lon[rows], self.lat[rows], self.backlog[rows])


def evaluate(network: Network, rules: Rules, items: Mapping[str, tuple[Binding, DeviceState, Track]],
             ) -> tuple[list[Transition], dict[str, DeviceState]]:
    """Run the corridor and stop detectors over new fixes of many trackers in one kernel call.

    Every fix must be newer than its state's ``last_ts`` (older fixes need a
    replay from a fresh state); fixes before departure are ignored. Returns
    the transitions, in fix-time order per tracker, and the new state of every
    tracker that had fixes to evaluate.
    """
    ids = list(items)
    parts = [items[d] for d in ids]
    return evaluate_many(network, rules, Tracks.of(ids, [tr for _, _, tr in parts]), [b for b, _, _ in parts],
                         [s for _, s, _ in parts])


def evaluate_many(network: Network, rules: Rules, tracks: Tracks, bindings: Sequence[Binding],
                  states: Sequence[DeviceState]) -> tuple[list[Transition], dict[str, DeviceState]]:
    """``evaluate`` on columns: ``bindings`` and ``states`` parallel to ``tracks.ids``."""
    if not tracks.ids:
        return [], {}
    fresh = _Fresh.of(tracks, np.array([b.departed_ms for b in bindings], dtype=np.int64))
    if len(fresh.t) == 0:
        return [], {}
    present = np.flatnonzero(fresh.counts)
    if len(present) < len(tracks.ids):
        keep = present.tolist()
        return evaluate_many(network, rules, tracks.take(keep), [bindings[k] for k in keep], [states[k] for k in keep])
    last = np.array([s.last_ts for s in states], dtype=np.int64)
    firsts = fresh.t[np.cumsum(fresh.counts) - fresh.counts]
    stale = np.flatnonzero(firsts <= last)
    if len(stale):
        d = int(stale[0])
        raise TrackError(f"device {tracks.ids[d]}: fix at {firsts[d]} ms is not newer than {last[d]} ms; "
                         "replay it from a fresh state")
    return _run(network, rules, tracks.ids, bindings, states, fresh)


@dataclass(frozen=True)
class _Fresh:
    """New fixes of many trackers, sorted by tracker then fix time, none before departure."""

    t: IntArray
    lon: FloatArray
    lat: FloatArray
    backlog: BoolArray
    counts: IntArray  # per tracker, in the order of ``ids``

    @classmethod
    def of(cls, tracks: Tracks, departed: IntArray) -> _Fresh:
        dev = np.repeat(np.arange(len(tracks.ids)), tracks.counts)
        order = np.lexsort((tracks.t, dev))
        order = order[tracks.t[order] >= departed[dev[order]]]
        return cls(tracks.t[order], tracks.lon[order], tracks.lat[order], tracks.backlog[order],
                   np.bincount(dev[order], minlength=len(tracks.ids)).astype(np.int64))


def _limits(rules: Rules) -> Limits:
    return Limits(rules.deviation_enter_s * 1000, rules.deviation_exit_s * 1000, rules.stop_max_diameter_m,
                  rules.spike_m, rules.office_enter_s * 1000, rules.office_exit_s * 1000,
                  rules.border_confirm_s * 1000, rules.post_grace_s * 1000, rules.reversal_m,
                  rules.reversal_end_m, rules.gap_min_s * 1000, rules.normal_speed_kmh / 3.6, rules.suspicious_gap_s,
                  rules.border_rules, rules.reversal_rule, rules.gap_rule)


def _itinerary(ids: list[str], bindings: Sequence[Binding], n_zones: int) -> Itinerary:
    """The bindings' itineraries, flattened; raises TrackError naming a device whose binding is inconsistent."""
    sizes = [len(b.offices) for b in bindings]
    if not any(sizes):  # no itineraries (v1 callers): nothing to check or copy
        zeros = np.zeros(0, dtype=np.int64)
        return Itinerary(np.zeros(len(bindings) + 1, dtype=np.int64), zeros, zeros, np.zeros(0, dtype=np.bool_))
    for device_id, b in zip(ids, bindings, strict=True):
        n = len(b.offices)
        if not n:
            continue
        if n > MAX_OFFICES or len(b.dwell_ms) not in (0, n) or len(b.transit) not in (0, n):
            raise TrackError(f"device {device_id}: itinerary of {n} offices with {len(b.dwell_ms)} dwell limits "
                             f"and {len(b.transit)} transit flags (at most {MAX_OFFICES}, parallel)")
        if any(not -1 <= z < n_zones for z in b.offices):
            raise TrackError(f"device {device_id}: itinerary zones {b.offices} not all in -1..{n_zones - 1}")
    off = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    zone = [z for b in bindings for z in b.offices]
    dwell = [w for b in bindings for w in (b.dwell_ms or (0,) * len(b.offices))]
    transit = [f for b in bindings for f in (b.transit or (False,) * len(b.offices))]
    return Itinerary(off, np.array(zone, dtype=np.int64), np.array(dwell, dtype=np.int64),
                     np.array(transit, dtype=np.bool_))


def _run(network: Network, rules: Rules, ids: list[str], bindings: Sequence[Binding], states_in: Sequence[DeviceState],
         fresh: _Fresh) -> tuple[list[Transition], dict[str, DeviceState]]:
    n_ctx = np.array([s.n_context for s in states_in], dtype=np.int64)
    sizes = n_ctx + fresh.counts
    dev_end = np.cumsum(sizes)
    dev_start = dev_end - sizes
    route = np.array([b.route for b in bindings], dtype=np.int64)
    total = int(dev_end[-1])
    new = np.empty(len(fresh.t), dtype=CONTEXT)
    new["t"], new["lon"], new["lat"], new["backlog"] = fresh.t, fresh.lon, fresh.lat, fresh.backlog
    # Only new fixes are projected: the context keeps its projected coordinates.
    new["x"], new["y"] = network.project(np.repeat(route, fresh.counts), fresh.lon, fresh.lat)
    # The combined records, each tracker's context then its new fixes, in one join of
    # their bytes (tens of megabytes for a large fleet: every copy counts).
    size = CONTEXT.itemsize
    new_bytes = new.tobytes()
    new_end = (np.cumsum(fresh.counts) * size).tolist()
    new_start = ((np.cumsum(fresh.counts) - fresh.counts) * size).tolist()
    pieces = []
    for state, a, b in zip(states_in, new_start, new_end, strict=True):
        pieces.append(state.context)
        pieces.append(new_bytes[a:b])
    pts = np.frombuffer(b"".join(pieces), dtype=CONTEXT)
    assert len(pts) == total
    # Copies, always: a one-record field view is already contiguous but read-only (from the
    # bytes), and numba compiles the kernel again (seconds) for read-only arrays.
    t, lon, lat, x, y = (np.array(pts[f]) for f in ("t", "lon", "lat", "x", "y"))
    backlog = np.ascontiguousarray(pts["backlog"])
    default_stop = int(rules.stop_min_duration_s * 1000)
    per_device = (np.array([s.n_window for s in states_in], dtype=np.int64), n_ctx, route,
                  np.array([b.corridor_factor for b in bindings], dtype=np.float64),
                  np.array([b.stop_min_ms or default_stop for b in bindings], dtype=np.int64),
                  *_itinerary(ids, bindings, len(network.zone_keys)))
    cap = events_room(total)
    while True:  # once, unless the events need more room: then again from the same states
        cols = StateColumns(states_in, network.countries.codes)
        win = np.zeros(total, dtype=np.int64)
        win_n = np.zeros(len(ids), dtype=np.int64)
        events, pt_country, needed = _kernel(network, rules, Fixes(t, x, y, lon, lat), dev_start, dev_end,
                                             per_device, cols, win, win_n, cap)
        if needed <= cap:
            break
        cap = needed
    boundary = _Boundary(network, rules, ids, bindings, route, Fixes(t, x, y, lon, lat), backlog, pt_country)
    transitions = boundary.of(events)
    # Each new state keeps its stop window, then the held-back newest fix.
    keep_n = win_n + 1
    keep_off = np.cumsum(keep_n) - keep_n
    keep = np.empty(int(keep_n.sum()), dtype=np.int64)
    keep[np.repeat(keep_off, win_n) + _ranges(win_n)] = win[np.repeat(dev_start, win_n) + _ranges(win_n)]
    keep[keep_off + win_n] = dev_end - 1
    # Records taken as opaque bytes: numpy copies a structured record field by field, ten times slower.
    kept = pts.view(_RECORD)[keep].view(np.uint8).data
    ends = (keep_off + keep_n).tolist()
    contexts = [bytes(kept[a * size:b * size]) for a, b in zip(keep_off.tolist(), ends, strict=True)]
    new_states = cols.states([b.shipment_id for b in bindings], t[dev_end - 1].tolist(), contexts, win_n.tolist())
    return transitions, dict(zip(ids, new_states, strict=True))


def events_room(fixes: int) -> int:
    """Room for events in a first kernel call: there are rarely more than a few per hundred fixes."""
    return fixes // 4 + 64


def _kernel(network: Network, rules: Rules, fx: Fixes, dev_start: IntArray, dev_end: IntArray,
            per_device: tuple[np.ndarray, ...], cols: StateColumns, win: IntArray, win_n: IntArray,
            cap: int) -> tuple[tuple[np.ndarray, ...], IntArray, int]:
    """One call of the kernel on flat arguments (its docstring says why); updates ``cols``."""
    events, pt_country, needed = kernels.evaluate_devices(  # type: ignore[call-arg]
        *fx, dev_start, dev_end, *per_device,
        *(cols[f] for f in ("deviation_open", "out_since", "out_lon", "out_lat", "last_out", "in_since",
                            "chainage_m", "distance_m", "in_corridor", "stopped", "stop_alert")), win, win_n,
        *(cols[f] for f in ("office_pos", "office_in", "office_last", "office_lon", "office_lat", "office_still",
                            "office_out", "cand_pos", "cand_in", "cand_lon", "cand_lat", "cand_still", "reached",
                            "skipped", "dwell_open")),
        *(cols[f] for f in ("furthest_m", "furthest_t", "furthest_lon", "furthest_lat", "reversal_open")),
        *(cols[f] for f in ("fix_country", "country", "country_cand", "country_cand_t", "country_cand_lon",
                            "country_cand_lat", "post_seen")),
        network.seg_ax, network.seg_ay, network.seg_bx, network.seg_by, network.seg_s0, network.grid_x0,
        network.grid_y0, network.grid_cell, network.grid_nx, network.grid_ny, network.col_base, network.col_off,
        network.cell_keys, network.cell_seg_off, network.cell_segs, network.half_width, network.route_zone_allowed,
        *network.zone_args(), *network.countries.args(), len(network.countries.codes), *_limits(rules), cap,
    )
    return events, pt_country, int(needed)


def _ranges(counts: IntArray) -> IntArray:
    """0..c-1 for each count c, concatenated."""
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


class _Boundary:
    """Kernel event columns to Transitions: what each kind's ``ref`` and ``value`` mean, and details."""

    def __init__(self, network: Network, rules: Rules, ids: list[str], bindings: Sequence[Binding], route: IntArray,
                 fx: Fixes, backlog: BoolArray, pt_country: IntArray) -> None:
        self.network, self.rules, self.ids, self.bindings = network, rules, ids, bindings
        self.route, self.fx, self.backlog, self.pt_country = route, fx, backlog, pt_country
        self.codes = network.countries.codes

    def of(self, events: tuple[np.ndarray, ...]) -> list[Transition]:
        dev, cross = events[0], events[4]
        order = np.lexsort((cross, dev))  # per tracker in fix-time order, rule order within a fix
        cols = [a[order].tolist() for a in events]
        return [self._one(*row) for row in zip(*cols, strict=True)]

    def _one(self, d: int, k: int, start: int, end: int, cross: int, lon: float, lat: float, point: int, ref: int,
             value: float) -> Transition:
        event, type_ = _KIND[k]
        b = self.bindings[d]
        detail: dict[str, Any] = {}
        if k == ev.DEPARTED:
            detail = {"position": ref, "inside_s": (end - start) / 1000, "stationary_s": value}
            start, end = end, -1
        elif k == ev.OFFICE_SKIPPED:
            detail = {"office": b.code(ref), "position": ref, "reached": b.code(int(value))}
        elif k in (ev.DWELL_OPENED, ev.DWELL_ENDED):
            detail = {"office": b.code(ref), "position": ref, "limit_s": b.dwell_ms[ref] / 1000}
        elif k == ev.GAP:
            detail = self._gap(d, ref, point, value)
        elif k in (ev.BORDER_CROSSED, ev.BORDER_BYPASS):
            detail = {"from": self._code(int(value)), "to": self._code(ref)}
        return Transition(event, type_, self.ids[d], b.shipment_id, start if start >= 0 else None,
                          end if end >= 0 else None, cross, lon, lat, bool(self.backlog[point]),
                          ref if k in _AT_OFFICE else -1, self._code(int(self.pt_country[point])), detail)

    def _code(self, index: int) -> str | None:
        return self.codes[index] if index >= 0 else None

    def _gap(self, d: int, before: int, after: int, unexplained_s: float) -> dict[str, Any]:
        """suspicious_gap's detail: minutes, and where the truck could have been (GeoJSON Polygon)."""
        t, x, y = self.fx.t, self.fx.x, self.fx.y
        gap_s = float(t[after] - t[before]) / 1000
        reach_m = self.rules.max_speed_kmh / 3.6 * gap_s
        area = prism_polygon(self.network.transformers[int(self.route[d])], float(x[before]), float(y[before]),
                             float(x[after]), float(y[after]), reach_m)
        return {"unexplained_min": round(unexplained_s / 60, 2), "gap_min": round(gap_s / 60, 2), "area": area}


def is_breach(network: Network, binding: Binding, event: str, lon: float | None, lat: float | None) -> bool:
    """Is this seal event a breach? Opening inside the destination office zone is
    not; an opening whose position is unknown is (it cannot be shown to be there)."""
    if event not in BREACH_EVENTS:
        return False
    if lon is None or lat is None or binding.destination_zone < 0:
        return True
    return not kernels.in_polygon(binding.destination_zone, lon, lat, network.zone_ring_off, network.ring_off,
                                  network.vx, network.vy)

