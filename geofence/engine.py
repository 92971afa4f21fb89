"""Evaluate tracks against routes and zones: alert transitions, no IO.

``evaluate`` takes each tracker's new fixes with its saved state and returns
what opened or ended plus the new states; the caller stores both in one
transaction and only then adopts the new states, so a failed commit changes
nothing. Seal events and wall-clock rules are plain functions below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from geofence import kernels
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import CONTEXT, DeviceState
from geofence.types import BoolArray, FloatArray, IntArray
from protocol.alerts import AlertType

BREACH_EVENTS = frozenset({"opened", "tampered", "cut"})
REARM_EVENTS = frozenset({"armed", "closed"})
_RECORD = np.dtype(f"V{CONTEXT.itemsize}")  # a CONTEXT record as bytes
_KIND: dict[int, tuple[Literal["opened", "ended"], AlertType]] = {
    kernels.DEVIATION_OPENED: ("opened", "route_deviation"),
    kernels.DEVIATION_ENDED: ("ended", "route_deviation"),
    kernels.STOP_OPENED: ("opened", "unscheduled_stop"),
    kernels.STOP_ENDED: ("ended", "unscheduled_stop"),
}


MilestoneKind = Literal["arrived", "departed", "border_crossed"]


class TrackError(ValueError):
    """Fixes the engine cannot take as they are; the message names the device."""


@dataclass(frozen=True)
class Binding:
    """A tracker's in-transit shipment: route and destination as network indices."""

    shipment_id: int
    route: int
    destination_zone: int  # -1 when the destination office has no zone
    departed_ms: int
    offices: tuple[int, ...] = ()
    dwell_ms: tuple[int, ...] = ()
    transit: tuple[bool, ...] = ()
    corridor_factor: float = 1.0
    stop_min_ms: int = 0


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
    """An alert condition that opened or ended, in fix time (epoch ms).

    ``started_ms`` is the first fix of the condition, ``ended_ms`` the last one;
    ``crossed_ms`` the fix at which the threshold was crossed (open) or the
    ending was confirmed (end). ``late``: raised from backlog.
    """

    event: Literal["opened", "ended", "milestone"]
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
    t, lon, lat, x, y = (np.ascontiguousarray(pts[f]) for f in ("t", "lon", "lat", "x", "y"))
    backlog = np.ascontiguousarray(pts["backlog"])
    st = _StateArrays(states_in)
    win = np.zeros(total, dtype=np.int64)
    win_n = np.zeros(len(ids), dtype=np.int64)
    events = kernels.evaluate_devices(  # type: ignore[call-arg]
        t, x, y, lon, lat, dev_start, dev_end, np.array([s.n_window for s in states_in], dtype=np.int64),
        n_ctx, route,
        st.dev_open, st.out_since, st.out_lon, st.out_lat, st.last_out, st.in_since,
        st.stopped, st.stop_alert, st.chainage, st.dist, win, win_n,
        network.seg_ax, network.seg_ay, network.seg_bx, network.seg_by, network.seg_s0, network.half_width,
        network.grid_x0, network.grid_y0, network.grid_cell, network.grid_nx, network.grid_ny, network.col_base,
        network.col_off, network.cell_keys, network.cell_seg_off, network.cell_segs,
        network.route_zone_allowed, *network.zone_args(),
        int(rules.deviation_enter_s * 1000), int(rules.deviation_exit_s * 1000), rules.stop_max_diameter_m,
        int(rules.stop_min_duration_s * 1000), rules.spike_m,
    )
    transitions = [
        Transition(event, kind, ids[d], bindings[d].shipment_id,
                   start if start >= 0 else None, end if end >= 0 else None, cross, elon, elat, bool(backlog[point]))
        for d, k, start, end, cross, elon, elat, point in zip(*(a.tolist() for a in events), strict=True)
        for event, kind in [_KIND[k]]
    ]
    # Each new state keeps its stop window, then the held-back newest fix.
    keep_n = win_n + 1
    keep_off = np.cumsum(keep_n) - keep_n
    keep = np.empty(int(keep_n.sum()), dtype=np.int64)
    keep[np.repeat(keep_off, win_n) + _ranges(win_n)] = win[np.repeat(dev_start, win_n) + _ranges(win_n)]
    keep[keep_off + win_n] = dev_end - 1
    # Records taken as opaque bytes: numpy copies a structured record field by field, ten times slower.
    kept = pts.view(_RECORD)[keep].view(np.uint8).data
    return transitions, st.states(ids, bindings, (dev_end - 1).tolist(), t, kept, keep_off.tolist(),
                                  keep_n.tolist(), win_n.tolist())


def _ranges(counts: IntArray) -> IntArray:
    """0..c-1 for each count c, concatenated."""
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


class _StateArrays:
    """Scalar states of many devices as the arrays the kernel updates in place."""

    def __init__(self, states: Sequence[DeviceState]) -> None:
        self.dev_open = np.array([s.deviation_open for s in states], dtype=np.int8)
        self.out_since = np.array([s.out_since for s in states], dtype=np.int64)
        self.out_lon = np.array([s.out_lon for s in states], dtype=np.float64)
        self.out_lat = np.array([s.out_lat for s in states], dtype=np.float64)
        self.last_out = np.array([s.last_out for s in states], dtype=np.int64)
        self.in_since = np.array([s.in_since for s in states], dtype=np.int64)
        self.stopped = np.array([s.stopped for s in states], dtype=np.int8)
        self.stop_alert = np.array([s.stop_alert for s in states], dtype=np.int8)
        self.chainage = np.array([np.nan if s.chainage_m is None else s.chainage_m for s in states])
        self.dist = np.array([np.inf if s.distance_m is None else s.distance_m for s in states])

    def states(self, ids: list[str], bindings: Sequence[Binding], newest: list[int],
               t: IntArray, blob: memoryview, offsets: list[int], counts: list[int],
               win_n: list[int]) -> dict[str, DeviceState]:
        """The new states; ``blob`` holds their contexts one after the other (records from ``offsets``)."""
        size = CONTEXT.itemsize
        ends = (np.asarray(offsets, dtype=np.int64) + np.asarray(counts, dtype=np.int64)).tolist()
        columns = zip(ids, bindings, t[newest].tolist(), self.dev_open.astype(bool).tolist(), self.out_since.tolist(),
                      self.out_lon.tolist(), self.out_lat.tolist(), self.last_out.tolist(), self.in_since.tolist(),
                      self.dist.tolist(), self.chainage.tolist(), self.stopped.astype(bool).tolist(),
                      self.stop_alert.tolist(), offsets, ends, win_n, strict=True)
        out = {}
        for (device_id, binding, last_ts, dev_open, out_since, out_lon, out_lat, last_out, in_since, distance,
             chainage, stopped, stop_alert, start, end, n_window) in columns:
            out[device_id] = DeviceState(  # NaN chainage, infinite distance: none
                shipment_id=binding.shipment_id, last_ts=last_ts, deviation_open=dev_open, out_since=out_since,
                out_lon=out_lon, out_lat=out_lat, last_out=last_out, in_since=in_since,
                distance_m=distance if math.isfinite(distance) else None,
                chainage_m=chainage if math.isfinite(chainage) else None,
                stopped=stopped, stop_alert=stop_alert, context=bytes(blob[start * size:end * size]),
                n_window=n_window,
            )
        return out


def is_breach(network: Network, binding: Binding, event: str, lon: float | None, lat: float | None) -> bool:
    """Is this seal event a breach? Opening inside the destination office zone is
    not; an opening whose position is unknown is (it cannot be shown to be there)."""
    if event not in BREACH_EVENTS:
        return False
    if lon is None or lat is None or binding.destination_zone < 0:
        return True
    return not kernels.in_polygon(binding.destination_zone, lon, lat, network.zone_ring_off, network.ring_off,
                                  network.vx, network.vy)

