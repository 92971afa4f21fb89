"""Evaluate tracks against routes and zones: alert transitions, no IO.

``evaluate`` takes each tracker's new fixes with its saved state and returns
what opened or ended plus the new states; the caller stores both in one
transaction and only then adopts the new states, so a failed commit changes
nothing. Seal events and wall-clock rules are plain functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geofence import kernels
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import DeviceState
from geofence.types import BoolArray, FloatArray, IntArray

AlertType = Literal["route_deviation", "unscheduled_stop", "seal_breach", "transit_overdue", "signal_lost"]
BREACH_EVENTS = frozenset({"opened", "tampered", "cut"})
REARM_EVENTS = frozenset({"armed", "closed"})
SEVERITY: dict[str, str] = {
    "seal_breach": "critical",
    "route_deviation": "high",
    "unscheduled_stop": "high",
    "signal_lost": "medium",
    "transit_overdue": "medium",
}
_KIND: dict[int, tuple[Literal["opened", "ended"], AlertType]] = {
    kernels.DEVIATION_OPENED: ("opened", "route_deviation"),
    kernels.DEVIATION_ENDED: ("ended", "route_deviation"),
    kernels.STOP_OPENED: ("opened", "unscheduled_stop"),
    kernels.STOP_ENDED: ("ended", "unscheduled_stop"),
}


class TrackError(ValueError):
    """Fixes the engine cannot take as they are; the message names the device."""


@dataclass(frozen=True)
class Binding:
    """A tracker's in-transit shipment: route and destination as network indices."""

    shipment_id: int
    route: int
    destination_zone: int  # -1 when the destination office has no zone
    departed_ms: int


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

    def sorted(self) -> Track:
        order = np.argsort(self.t, kind="stable")
        return Track(self.t[order], self.lon[order], self.lat[order], self.backlog[order])


@dataclass(frozen=True)
class Transition:
    """An alert condition that opened or ended, in fix time (epoch ms).

    ``started_ms`` is the first fix of the condition, ``ended_ms`` the last one;
    ``crossed_ms`` the fix at which the threshold was crossed (open) or the
    ending was confirmed (end). ``late``: raised from backlog.
    """

    event: Literal["opened", "ended"]
    type: AlertType
    device_id: str
    shipment_id: int
    started_ms: int | None
    ended_ms: int | None
    crossed_ms: int
    lon: float
    lat: float
    late: bool


def evaluate(network: Network, rules: Rules, items: Mapping[str, tuple[Binding, DeviceState, Track]],
             ) -> tuple[list[Transition], dict[str, DeviceState]]:
    """Run the corridor and stop detectors over new fixes of many trackers in one kernel call.

    Every fix must be newer than its state's ``last_ts`` (older fixes need a
    replay from a fresh state); fixes before departure are ignored.
    """
    ids: list[str] = []
    parts: list[tuple[Binding, DeviceState, Track]] = []
    for device_id, (binding, state, track) in items.items():
        fresh = track.sorted()
        keep = fresh.t >= binding.departed_ms
        fresh = Track(fresh.t[keep], fresh.lon[keep], fresh.lat[keep], fresh.backlog[keep])
        if len(fresh.t) == 0:
            continue
        if fresh.t[0] <= state.last_ts:
            raise TrackError(f"device {device_id}: fix at {fresh.t[0]} ms is not newer than {state.last_ts} ms; "
                             "replay it from a fresh state")
        ids.append(device_id)
        parts.append((binding, state, fresh))
    if not ids:
        return [], {}
    return _run(network, rules, ids, parts)


def _run(network: Network, rules: Rules, ids: list[str], parts: list[tuple[Binding, DeviceState, Track]],
         ) -> tuple[list[Transition], dict[str, DeviceState]]:
    n_dev = len(ids)
    t = np.concatenate([np.concatenate([np.asarray(s.ctx_t, dtype=np.int64), tr.t]) for _, s, tr in parts])
    lon = np.concatenate([np.concatenate([np.asarray(s.ctx_lon), tr.lon]) for _, s, tr in parts])
    lat = np.concatenate([np.concatenate([np.asarray(s.ctx_lat), tr.lat]) for _, s, tr in parts])
    backlog = np.concatenate([np.concatenate([np.asarray(s.ctx_backlog, dtype=np.bool_), tr.backlog])
                              for _, s, tr in parts])
    sizes = np.array([len(s.ctx_t) + len(tr.t) for _, s, tr in parts], dtype=np.int64)
    dev_end = np.cumsum(sizes)
    dev_start = dev_end - sizes
    route = np.array([b.route for b, _, _ in parts], dtype=np.int64)
    x, y = network.project(np.repeat(route, sizes), lon, lat)
    st = _StateArrays([s for _, s, _ in parts])
    win = np.zeros(len(t), dtype=np.int64)
    win_n = np.zeros(n_dev, dtype=np.int64)
    events = kernels.evaluate_devices(  # type: ignore[call-arg]
        t, x, y, lon, lat, dev_start, dev_end,
        np.array([s.n_window for _, s, _ in parts], dtype=np.int64),
        np.array([len(s.ctx_t) for _, s, _ in parts], dtype=np.int64), route,
        st.dev_open, st.out_since, st.out_lon, st.out_lat, st.last_out, st.in_since,
        st.stopped, st.stop_alert, st.chainage, st.dist, win, win_n,
        network.seg_ax, network.seg_ay, network.seg_bx, network.seg_by, network.seg_s0, network.half_width,
        network.grid_x0, network.grid_y0, network.grid_cell, network.grid_nx, network.grid_ny, network.cell_off,
        network.cell_keys, network.cell_seg_off, network.cell_segs,
        network.route_zone_allowed, *network.zone_args(),
        int(rules.deviation_enter_s * 1000), int(rules.deviation_exit_s * 1000), rules.stop_max_diameter_m,
        int(rules.stop_min_duration_s * 1000), rules.spike_m,
    )
    transitions = [
        Transition(event, kind, ids[d], parts[d][0].shipment_id,
                   int(start) if start >= 0 else None, int(end) if end >= 0 else None, int(cross),
                   float(elon), float(elat), bool(backlog[point]))
        for d, k, start, end, cross, elon, elat, point in zip(*(a.tolist() for a in events), strict=True)
        for event, kind in [_KIND[k]]
    ]
    states = {}
    for d, device_id in enumerate(ids):
        a, b = int(dev_start[d]), int(dev_end[d])
        keep = np.append(win[a:a + win_n[d]], b - 1)  # the window, then the held-back newest fix
        states[device_id] = st.state(d, parts[d][0].shipment_id, int(t[b - 1]), int(win_n[d]),
                                     t[keep], lon[keep], lat[keep], backlog[keep])
    return transitions, states


class _StateArrays:
    """Scalar states of many devices as the arrays the kernel updates in place."""

    def __init__(self, states: list[DeviceState]) -> None:
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

    def state(self, d: int, shipment_id: int, last_ts: int, n_window: int, t: IntArray, lon: FloatArray,
              lat: FloatArray, backlog: BoolArray) -> DeviceState:
        chain, dist = float(self.chainage[d]), float(self.dist[d])
        return DeviceState(
            shipment_id=shipment_id, last_ts=last_ts, deviation_open=bool(self.dev_open[d]),
            out_since=int(self.out_since[d]), out_lon=float(self.out_lon[d]), out_lat=float(self.out_lat[d]),
            last_out=int(self.last_out[d]), in_since=int(self.in_since[d]),
            distance_m=dist if np.isfinite(dist) else None, chainage_m=chain if np.isfinite(chain) else None,
            stopped=bool(self.stopped[d]), stop_alert=int(self.stop_alert[d]),
            ctx_t=t.tolist(), ctx_lon=lon.tolist(), ctx_lat=lat.tolist(), ctx_backlog=backlog.tolist(),
            n_window=n_window,
        )


def is_breach(network: Network, binding: Binding, event: str, lon: float | None, lat: float | None) -> bool:
    """Is this seal event a breach? Opening inside the destination office zone is
    not; an opening whose position is unknown is (it cannot be shown to be there)."""
    if event not in BREACH_EVENTS:
        return False
    if lon is None or lat is None or binding.destination_zone < 0:
        return True
    return not kernels.in_polygon(binding.destination_zone, lon, lat, network.zone_ring_off, network.ring_off,
                                  network.vx, network.vy)


def signal_lost(last_seen_ms: int, now_ms: int, rules: Rules) -> bool:
    """No record for ``rules.signal_lost_s`` of wall time (both in epoch ms)."""
    return now_ms - last_seen_ms >= rules.signal_lost_s * 1000
