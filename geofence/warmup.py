"""Compile the engine's kernels before the first batch needs them.

Numba compiles a kernel on its first call, or loads it from its on-disk cache
(``cache=True``). Cold, the whole engine takes tens of seconds: done inside a
batch, that delays the batch's commit (and the devices' acks) by as much. A
service calls ``warm_up`` once at start, on a tiny made-up world that goes
through every rule, before it takes traffic.
"""

from __future__ import annotations

import time

import numpy as np

from geofence import kernels
from geofence.countries import CountryInput
from geofence.engine import Binding, Track, evaluate
from geofence.geometry import Network, RouteInput, ZoneInput
from geofence.rules import Rules
from geofence.state import DeviceState, dumps, loads

_STEP_MS = 15_000


def _box(west: float, south: float, east: float, north: float) -> tuple[list[float], list[float]]:
    return [west, east, east, west, west], [south, south, north, north, south]


def tiny_world() -> tuple[Network, Binding, Track]:
    """Two countries, a route across their border through an office zone, and a truck that
    passes the office, leaves the corridor, stops, turns back and goes silent a while."""
    countries = [CountryInput("AAA", [[_box(0.0, 0.0, 1.0, 1.0)]]), CountryInput("BBB", [[_box(1.0, 0.0, 2.0, 1.0)]])]
    zones = [ZoneInput(0, [_box(0.98, 0.49, 1.02, 0.51)], office=True), ZoneInput(1, [_box(1.4, 0.49, 1.42, 0.51)])]
    network = Network.build([RouteInput(0, [0.5, 1.5], [0.5, 0.5], stop_zones=(1,))], zones, countries)
    binding = Binding(1, 0, 0, 0, offices=(0, 0), dwell_ms=(60_000, 0), transit=(False, False), office_codes=("A", "B"))
    lon = np.concatenate([np.linspace(0.9, 1.1, 60), np.full(80, 1.1), np.linspace(1.1, 1.05, 20),
                          np.linspace(1.2, 1.3, 10)])
    lat = np.full(len(lon), 0.5)
    lat[60:140] += 0.02  # off the corridor, then parked there
    t = np.arange(len(lon), dtype=np.int64) * _STEP_MS
    t[-10:] += 3_600_000  # an hour without a fix
    return network, binding, Track.of(t.tolist(), lon.tolist(), lat.tolist())


def _part(track: Track, a: int, b: int) -> Track:
    return Track(track.t[a:b], track.lon[a:b], track.lat[a:b], track.backlog[a:b])


def warm_up() -> float:
    """Run every kernel the engine and ingest call once; seconds it took (compiling or loading).

    Numba compiles a kernel once per argument types, and the arrays' layout depends on the
    call: one tracker's state columns are contiguous, several trackers' are strided views of
    one record array. Each shape of call ingest makes is made here: one tracker and several,
    fresh and saved states, one fix and many."""
    started = time.perf_counter()
    network, binding, track = tiny_world()
    rules = Rules()
    n = len(track.t)
    fresh = DeviceState(shipment_id=1)
    _, one = evaluate(network, rules, {"a": (binding, fresh, _part(track, 0, 1))})
    _, two = evaluate(network, rules, {"a": (binding, fresh, _part(track, 0, n // 2)),
                                       "b": (binding, fresh, _part(track, 0, 1))})
    saved = {k: loads(dumps(v)) for k, v in two.items()}  # as read back from the database
    evaluate(network, rules, {"a": (binding, saved["a"], _part(track, n // 2, n))})
    evaluate(network, rules, {"a": (binding, saved["a"], _part(track, n // 2, n // 2 + 1)),
                              "b": (binding, saved["b"], _part(track, 1, n // 2))})
    evaluate(network, rules, {"a": (binding, loads(dumps(one["a"])), _part(track, 1, 2))})
    network.countries.of_points(np.array([0.5, 1.5]), np.array([0.5, 0.5]))
    kernels.in_polygon(0, 1.0, 0.5, network.zone_ring_off, network.ring_off, network.vx, network.vy)
    return time.perf_counter() - started
