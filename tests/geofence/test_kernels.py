"""Kernels against slow references: shapely (GEOS) and movingpandas."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import pandas as pd
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import kernels
from geofence.geometry import Network, RouteInput, ZoneInput
from geofence.types import FloatArray, IntArray

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # movingpandas warns about optional smoothing dependencies
    import geopandas as gpd
    import movingpandas as mpd
    from movingpandas.geometry_utils import mrr_diagonal as mpd_mrr_diagonal


def random_route(rng: np.random.Generator, n: int, key: int = 1, half_width: float = 500.0) -> RouteInput:
    """A wandering line of ``n`` vertices about 150-500 m apart near Nairobi."""
    lon = 36.8 + np.cumsum(rng.normal(0.002, 0.002, n))
    lat = -1.3 + np.cumsum(rng.normal(0.001, 0.003, n))
    return RouteInput(key, lon.tolist(), lat.tolist(), half_width)


def points_near(rng: np.random.Generator, route: RouteInput, m: int,
                spread_deg: float) -> tuple[FloatArray, FloatArray]:
    i = rng.integers(0, len(route.lon), m)
    return (np.asarray(route.lon)[i] + rng.normal(0, spread_deg, m),
            np.asarray(route.lat)[i] + rng.normal(0, spread_deg, m))


def test_within_routes_agrees_exactly_with_shapely_dwithin() -> None:
    rng = np.random.default_rng(1)
    routes = [random_route(rng, 400, key=k, half_width=w) for k, w in enumerate((500.0, 250.0, 1200.0))]
    net = Network.build(routes, [])
    for r, route in enumerate(routes):
        lon, lat = points_near(rng, route, 20_000, 0.008)
        which = np.full(len(lon), r, dtype=np.int64)
        x, y = net.project(which, lon, lat)
        ours = kernels.within_routes(which, x, y, *net.route_args())
        line = shapely.LineString(np.column_stack(net.route_xy(r)))
        shapely.prepare(line)
        theirs = shapely.dwithin(line, shapely.points(x, y), route.half_width_m)
        assert 0.2 < theirs.mean() < 0.9  # both sides of the corridor edge are exercised
        assert np.array_equal(ours, theirs)


def test_many_routes_in_one_call() -> None:
    rng = np.random.default_rng(2)
    routes = [random_route(rng, 200, key=k) for k in range(5)]
    net = Network.build(routes, [])
    which = rng.integers(0, 5, 30_000).astype(np.int64)
    lon, lat = np.empty(len(which)), np.empty(len(which))
    for r, route in enumerate(routes):
        sel = which == r
        lon[sel], lat[sel] = points_near(rng, route, int(sel.sum()), 0.006)
    x, y = net.project(which, lon, lat)
    ours = kernels.within_routes(which, x, y, *net.route_args())
    for r in range(5):
        sel = which == r
        line = shapely.LineString(np.column_stack(net.route_xy(r)))
        assert np.array_equal(ours[sel], shapely.dwithin(line, shapely.points(x[sel], y[sel]), 500.0))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), half_width=st.floats(5.0, 3000.0))
def test_within_routes_property(seed: int, n: int, half_width: float) -> None:
    rng = np.random.default_rng(seed)
    route = random_route(rng, n, half_width=half_width)
    net = Network.build([route], [])
    lon, lat = points_near(rng, route, 500, half_width / 111_320 * 2)
    which = np.zeros(len(lon), dtype=np.int64)
    x, y = net.project(which, lon, lat)
    line = shapely.LineString(np.column_stack(net.route_xy(0)))
    assert np.array_equal(kernels.within_routes(which, x, y, *net.route_args()),
                          shapely.dwithin(line, shapely.points(x, y), half_width))


def test_locate_gives_shapely_distance_and_chainage() -> None:
    rng = np.random.default_rng(3)
    route = random_route(rng, 300)
    net = Network.build([route], [])
    lon, lat = points_near(rng, route, 2_000, 0.003)
    x, y = net.project(np.zeros(len(lon), dtype=np.int64), lon, lat)
    line = shapely.LineString(np.column_stack(net.route_xy(0)))
    located = 0
    for px, py in zip(x, y, strict=True):
        dist, chain = kernels.locate_on_route(0, px, py, net.seg_ax, net.seg_ay, net.seg_bx, net.seg_by, net.seg_s0,
                                              net.grid_x0, net.grid_y0, net.grid_cell, net.grid_nx, net.grid_ny,
                                              net.col_base, net.col_off, net.cell_keys, net.cell_seg_off,
                                              net.cell_segs)
        p = shapely.Point(px, py)
        if line.distance(p) <= 500.0:
            located += 1
            assert abs(dist - line.distance(p)) < 1e-6
            # Where two segments are equally near, either projection is right.
            assert abs(chain - line.project(p)) < 1e-6 or abs(line.interpolate(chain).distance(p) - dist) < 1e-6
    assert located > 1_000


def square_with_hole() -> ZoneInput:
    shell = ([30.0, 30.1, 30.1, 30.0, 30.0], [0.0, 0.0, 0.1, 0.1, 0.0])
    hole = ([30.04, 30.06, 30.06, 30.04, 30.04], [0.04, 0.04, 0.06, 0.06, 0.04])
    return ZoneInput(1, [shell, hole])


def test_zones_agree_with_shapely_contains_xy() -> None:
    rng = np.random.default_rng(4)
    star_lon = 30.3 + 0.05 * np.cos(np.linspace(0, 2 * np.pi, 11)) * np.tile([1.0, 0.4], 6)[:11]
    star_lat = 0.05 + 0.05 * np.sin(np.linspace(0, 2 * np.pi, 11)) * np.tile([1.0, 0.4], 6)[:11]
    star_lon[-1], star_lat[-1] = star_lon[0], star_lat[0]
    zones = [square_with_hole(), ZoneInput(2, [(star_lon.tolist(), star_lat.tolist())])]
    net = Network.build([], zones)
    lon = rng.uniform(29.95, 30.4, 50_000)
    lat = rng.uniform(-0.05, 0.15, 50_000)
    found = kernels.zones_of_points(lon, lat, *net.zone_args())
    square = shapely.Polygon(np.column_stack(zones[0].rings[0]), [np.column_stack(zones[0].rings[1])])
    star = shapely.Polygon(np.column_stack([star_lon, star_lat]))
    assert np.array_equal(found == 0, shapely.contains_xy(square, lon, lat))
    assert np.array_equal(found == 1, shapely.contains_xy(star, lon, lat))
    assert (found == 0).sum() > 1_000 and (found == 1).sum() > 1_000


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), scale=st.floats(1.0, 500.0))
def test_mrr_diagonal_matches_movingpandas(seed: int, n: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.normal(0, scale, (n, 2)) * rng.uniform(0.05, 1.0, 2)
    if n > 3 and seed % 3 == 0:
        xy[: n // 2] = xy[0]  # repeated points, as a parked truck reports
    area, ours, ties = kernels.mrr(xy[:, 0].copy(), xy[:, 1].copy(), np.arange(n, dtype=np.int64), n)
    points = shapely.MultiPoint(xy)
    theirs = float(mpd_mrr_diagonal(points, False))
    tolerance = 1e-9 * max(1.0, theirs)
    assert abs(area - points.minimum_rotated_rectangle.area) <= tolerance * max(1.0, theirs)
    if ties == 1:
        assert abs(ours - theirs) <= tolerance
    else:  # equal-area rectangles: GEOS takes one by its hull order, we take the smallest diagonal
        assert ours <= theirs + tolerance


def movingpandas_stops(t: IntArray, x: FloatArray, y: FloatArray, diameter: float,
                       minutes: float) -> list[tuple[int, int]]:
    frame = gpd.GeoDataFrame({"t": pd.to_datetime(t, unit="ms")}, geometry=gpd.points_from_xy(x, y),
                             crs="EPSG:32736").set_index("t")
    ranges = mpd.TrajectoryStopDetector(mpd.Trajectory(frame, 1)).get_stop_time_ranges(
        max_diameter=diameter, min_duration=timedelta(minutes=minutes))
    return [(int(r.t_0.value // 1_000_000), int(r.t_n.value // 1_000_000)) for r in ranges]


def stop_and_go(rng: np.random.Generator, n: int, noise_m: float) -> tuple[IntArray, FloatArray, FloatArray]:
    """Alternating drives and parks with irregular fix intervals and GPS noise."""
    t = np.cumsum(rng.integers(5, 60, n)).astype(np.int64) * 1000
    moving = (np.arange(n) // rng.integers(20, 80)) % 2 == 0
    heading = np.cumsum(rng.normal(0, 0.1, n))
    step = np.where(moving, rng.uniform(5, 25), 0.0)[:, None] * np.column_stack([np.cos(heading), np.sin(heading)])
    xy = np.cumsum(step * 15, axis=0) + rng.normal(0, noise_m, (n, 2))
    return t, xy[:, 0].copy(), xy[:, 1].copy()


def test_stops_match_movingpandas() -> None:
    rng = np.random.default_rng(5)
    total = 0
    for _ in range(15):
        t, x, y = stop_and_go(rng, 800, 12.0)
        begins, ends = kernels.detect_stops(t, x, y, 150.0, 15 * 60_000)
        ours = [(int(t[b]), int(t[e])) for b, e in zip(begins, ends, strict=True)]
        assert ours == movingpandas_stops(t, x, y, 150.0, 15)
        total += len(ours)
    assert total > 30


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), diameter=st.floats(20.0, 400.0),
       seconds=st.integers(60, 1800), noise=st.floats(0.0, 60.0))
def test_stops_match_movingpandas_property(seed: int, n: int, diameter: float, seconds: int, noise: float) -> None:
    # Whole seconds, as the engine passes (Rules): pandas rounds a fractional duration to
    # its own resolution, the kernel would not, and the two would disagree at the boundary.
    minutes = seconds / 60
    t, x, y = stop_and_go(np.random.default_rng(seed), n, noise)
    begins, ends = kernels.detect_stops(t, x, y, diameter, seconds * 1000)
    ours = [(int(t[b]), int(t[e])) for b, e in zip(begins, ends, strict=True)]
    if ours != movingpandas_stops(t, x, y, diameter, minutes):
        # Allowed only where GEOS picked one of several equal-area rectangles (see kernels.mrr).
        assert tied_rectangle_decides(t, x, y, diameter, seconds * 1000)


def tied_rectangle_decides(t: IntArray, x: FloatArray, y: FloatArray, diameter: float, min_ms: float) -> bool:
    """Replay movingpandas' loop with GEOS's rectangles; at the first fix where our
    stop decision differs, were several rectangles tied for the least area?"""
    win: list[int] = []
    stopped = previously = False
    for i in range(len(t)):
        win.append(i)
        if not stopped:
            while len(win) > 2 and t[win[-1]] - t[win[0]] >= min_ms:
                win.pop(0)
        stopped = False
        if len(win) > 1:
            xs, ys = x[win], y[win]
            if np.hypot(np.ptp(xs), np.ptp(ys)) < diameter * 1.5:
                theirs = float(mpd_mrr_diagonal(shapely.MultiPoint(np.column_stack([xs, ys])), False)) < diameter
                _, diagonal, ties = kernels.mrr(x, y, np.array(win, dtype=np.int64), len(win))
                if theirs != (diagonal < diameter):
                    return bool(ties > 1)
                stopped = theirs
        if not stopped and previously and len(win) > 1 and t[win[-2]] - t[win[0]] >= min_ms:
            win = [win[-1]]
        previously = stopped
    return False


def test_spike_is_far_from_both_neighbours_that_agree() -> None:
    x = np.array([0.0, 300.0, 10.0, 600.0])
    y = np.zeros(4)
    assert kernels.is_spike(x, y, 0, 1, 2, 100.0)
    assert not kernels.is_spike(x, y, 0, 2, 3, 100.0)  # moving on: the next fix is far too
    assert not kernels.is_spike(x, y, -1, 1, 2, 100.0)  # nothing accepted before it
