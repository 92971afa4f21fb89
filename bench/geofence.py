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

The last line printed is
``ratio_contains_xy=<x> ratio_dwithin=<y> mismatches=<n> ratio_stops=<z>``
where a ratio is the peer's time over ours.

    .venv/bin/python -m bench.geofence [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import shapely
from rich.console import Console

from geofence import kernels
from geofence.engine import Binding, Track, evaluate
from geofence.geometry import Network, RouteInput, haversine_m
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


# --------------------------------------------------------------------- main


def row(label: str, seconds: float, n: int, first: float | None = None) -> None:
    cold = "" if first is None else f"   first run {first:7.3f} s"
    print(f"  {label:<50} {seconds:8.3f} s {seconds / n * 1e9:7.0f} ns/fix{cold}")


def figure(label: str, seconds: float) -> None:
    print(f"  {label:<50} {seconds:8.3f} s")


@dataclass(frozen=True)
class World:
    network: Network
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
    return World(network, fixes, x, y, build_s, project_s)


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
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    rng = np.random.default_rng(args.seed)
    world = make_world(scale, rng)
    ratio_contains, ratio_dwithin, mismatches = corridor(world, scale, args.repeat)
    ratio_stops = stops(scale, rng, args.repeat)
    engine(world, scale.devices)
    print(f"ratio_contains_xy={ratio_contains:.1f} ratio_dwithin={ratio_dwithin:.1f} mismatches={mismatches} "
          f"ratio_stops={ratio_stops:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
