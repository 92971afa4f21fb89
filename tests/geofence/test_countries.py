"""Country lookup against shapely (GEOS): real outlines of East Africa and synthetic
polygons with holes, multipolygons, shared borders and points on the edges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from ctt.countries import DEFAULT_FILE, default_cache_dir, read_outlines
from geofence.countries import CountryIndex, CountryInput, country_from_geojson
from geofence.errors import GeometryError
from geofence.kernels.countries import country_at
from geofence.types import FloatArray, IntArray

EAST_AFRICA = ("KEN", "UGA", "RWA", "TZA", "BDI", "SSD", "ETH", "SOM", "COD")
ON_EDGE_DEG = 1e-9  # closer than this to an outline either side is a right answer


@pytest.fixture(scope="module")
def east_africa() -> tuple[list[str], list[shapely.Geometry], CountryIndex]:
    """The outlines from the npm package's file (cached extract: see ctt.countries)."""
    _, outlines, _ = read_outlines(DEFAULT_FILE, only=EAST_AFRICA, cache_dir=default_cache_dir())
    codes = [o.code for o in outlines]
    assert sorted(codes) == sorted(EAST_AFRICA)
    shapes = [shapely.geometry.shape(o.geometry) for o in outlines]
    for s in shapes:
        shapely.prepare(s)
    return codes, shapes, CountryIndex.build([country_from_geojson(o.code, o.geometry) for o in outlines])


def expected(shapes: Sequence[shapely.Geometry], lon: FloatArray, lat: FloatArray) -> IntArray:
    """The lowest index of a shape containing each point, or -1."""
    points = shapely.points(lon, lat)
    out = np.full(len(lon), -1, dtype=np.int64)
    for i, s in enumerate(shapes):
        out[(out < 0) & shapely.contains(s, points)] = i
    return out


def assert_agrees(index: CountryIndex, shapes: Sequence[shapely.Geometry], lon: FloatArray,
                  lat: FloatArray) -> None:
    """Equal to shapely, except that a point on (or next to) an outline may be given any
    country touching it, or none."""
    ours = index.indices_of_points(lon, lat)
    theirs = expected(shapes, lon, lat)
    for i in np.flatnonzero(ours != theirs).tolist():
        p = shapely.Point(lon[i], lat[i])
        near = {j for j, s in enumerate(shapes) if shapely.dwithin(s, p, ON_EDGE_DEG)}
        on_edge = any(shapely.dwithin(shapes[j].boundary, p, ON_EDGE_DEG) for j in near)
        assert on_edge and int(ours[i]) in near | {-1}, f"({lon[i]}, {lat[i]}): {ours[i]}, shapely {theirs[i]}"


def test_east_africa_random_points_agree_with_shapely(east_africa: tuple[list[str], list[shapely.Geometry],
                                                                          CountryIndex]) -> None:
    _, shapes, index = east_africa
    rng = np.random.default_rng(13)
    lon, lat = rng.uniform(28, 42, 100_000), rng.uniform(-12, 6, 100_000)
    assert_agrees(index, shapes, lon, lat)


@pytest.mark.parametrize("spread_deg", [1e-2, 1e-4, 1e-6, 1e-8])
def test_east_africa_points_near_the_borders_agree_with_shapely(
        east_africa: tuple[list[str], list[shapely.Geometry], CountryIndex], spread_deg: float) -> None:
    _, shapes, index = east_africa
    rng = np.random.default_rng(int(-np.log10(spread_deg)))
    k = rng.integers(0, len(index.vx) - 1, 60_000)
    t = rng.uniform(0, 1, len(k))  # along the edge from vertex k (or across a ring end: still near a border)
    lon = index.vx[k] + t * (index.vx[k + 1] - index.vx[k]) + rng.normal(0, spread_deg, len(k))
    lat = index.vy[k] + t * (index.vy[k + 1] - index.vy[k]) + rng.normal(0, spread_deg, len(k))
    assert_agrees(index, shapes, lon, lat)


def test_east_africa_places(east_africa: tuple[list[str], list[shapely.Geometry], CountryIndex]) -> None:
    _, _, index = east_africa
    places = {  # (lon, lat): country
        (36.8219, -1.2921): "KEN",  # Nairobi
        (32.5825, 0.3476): "UGA",  # Kampala
        (30.0619, -1.9441): "RWA",  # Kigali
        (39.2083, -6.7924): "TZA",  # Dar es Salaam
        (34.1115, 0.4640): "KEN",  # Busia, Kenyan side
        (34.0900, 0.4680): "UGA",  # Busia, Ugandan side
        (45.0, -5.0): None,  # Indian Ocean
        (10.0, 50.0): None,  # outside every loaded outline (Germany is not loaded)
    }
    lon = np.array([p[0] for p in places])
    lat = np.array([p[1] for p in places])
    assert index.of_points(lon, lat) == list(places.values())


def test_a_lookup_reads_a_few_edges_not_whole_outlines(
        east_africa: tuple[list[str], list[shapely.Geometry], CountryIndex]) -> None:
    _, _, index = east_africa
    per_run = np.diff(index.run_edge_off)
    assert per_run.max() < 2_000 and per_run[per_run > 0].mean() < 50, (per_run.max(), per_run.mean())


def star(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> tuple[list[float], list[float]]:
    """A simple closed ring of n >= 5 vertices with radii in [r/2, r] around (cx, cy): angle
    gaps below 144 degrees keep every edge more than 0.15 r from the centre."""
    angles = (np.arange(n) + rng.uniform(0, 0.9, n)) * 2 * np.pi / n
    radii = rng.uniform(r / 2, r, n)
    lon = np.append(cx + radii * np.cos(angles), cx + radii[0] * np.cos(angles[0]))
    lat = np.append(cy + radii * np.sin(angles), cy + radii[0] * np.sin(angles[0]))
    return lon.tolist(), lat.tolist()


def synthetic(rng: np.random.Generator, n_countries: int) -> list[CountryInput]:
    """Countries of 1-3 disjoint star polygons, some with a hole (countries may overlap one another);
    the first two share a zigzag border."""
    countries = []
    for c in range(n_countries):
        polygons = []
        for p in range(int(rng.integers(1, 4))):
            cx, cy, r = 10.0 * p + rng.uniform(0, 3), rng.uniform(-3, 3), rng.uniform(0.2, 2.0)
            rings = [star(rng, cx, cy, r, int(rng.integers(5, 40)))]
            if rng.uniform() < 0.5:
                rings.append(star(rng, cx, cy, r / 8, int(rng.integers(5, 12))))
            polygons.append(rings)
        countries.append(CountryInput(f"C{chr(65 + c // 26)}{chr(65 + c % 26)}", polygons))
    # a shared border: a zigzag from (x, -16) to (x, -14) splitting a box between countries 0 and 1
    ys = np.linspace(-16.0, -14.0, int(rng.integers(2, 30)))
    xs = 1.0 + rng.uniform(-0.3, 0.3, len(ys))
    left = ([-1.0, *xs.tolist(), -1.0, -1.0], [-16.0, *ys.tolist(), -14.0, -16.0])
    right = ([3.0, *xs[::-1].tolist(), 3.0, 3.0], [-14.0, *ys[::-1].tolist(), -16.0, -14.0])
    countries[0] = CountryInput(countries[0].code, [*countries[0].polygons, [left]])
    if n_countries > 1:
        countries[1] = CountryInput(countries[1].code, [*countries[1].polygons, [right]])
    return countries


def shapes_of(countries: Sequence[CountryInput]) -> list[shapely.Geometry]:
    return [shapely.MultiPolygon([shapely.Polygon(np.column_stack(rings[0]), [np.column_stack(h) for h in rings[1:]])
                                  for rings in c.polygons]) for c in countries]


def probe_points(rng: np.random.Generator, countries: Sequence[CountryInput], m: int) -> tuple[FloatArray, FloatArray]:
    """Random points, vertices, points exactly on edges and points a hair off them."""
    xs = np.concatenate([np.asarray(ring[0]) for c in countries for poly in c.polygons for ring in poly])
    ys = np.concatenate([np.asarray(ring[1]) for c in countries for poly in c.polygons for ring in poly])
    k = rng.integers(0, len(xs) - 1, m)
    t = rng.uniform(0, 1, m)
    on_x, on_y = xs[k] + t * (xs[k + 1] - xs[k]), ys[k] + t * (ys[k + 1] - ys[k])
    hair = rng.choice([0.0, 1e-12, 1e-9, 1e-7, 1e-4], m) * rng.choice([-1.0, 1.0], m)
    lon = np.concatenate([rng.uniform(xs.min() - 1, xs.max() + 1, m), xs[k], on_x + hair, on_x])
    lat = np.concatenate([rng.uniform(ys.min() - 1, ys.max() + 1, m), ys[k], on_y - hair, on_y + hair])
    return lon, lat


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), cell=st.sampled_from([0.01, 0.05, 0.3, 1.0, 7.0]))
def test_synthetic_countries_agree_with_shapely(seed: int, n: int, cell: float) -> None:
    rng = np.random.default_rng(seed)
    countries = synthetic(rng, n)
    index = CountryIndex.build(countries, cell_deg=cell)
    shapes = shapes_of(countries)
    assert all(s.is_valid for s in shapes)
    assert_agrees(index, shapes, *probe_points(rng, countries, 400))


@pytest.mark.parametrize("upper", [False, True])
def test_reference_point_on_an_edge_is_moved(upper: bool) -> None:
    """A grid of 1 degree from x0 = y0 = -1 puts cell centres at k + 0.5: the diagonal
    y = x of these triangles runs through every centre."""
    ring = ([0.0, 4.0, 4.0, 0.0], [0.0, 0.0, 4.0, 0.0]) if not upper else ([0.0, 4.0, 0.0, 0.0], [0.0, 4.0, 4.0, 0.0])
    countries = [CountryInput("TRI", [[ring]])]
    index = CountryIndex.build(countries, cell_deg=1.0)
    d = np.linspace(0.05, 3.95, 40)
    off = np.array([1e-6, -1e-6, 0.3, -0.3])
    lon = np.concatenate([d + o for o in off])
    lat = np.concatenate([d - o for o in off])
    assert_agrees(index, shapes_of(countries), lon, lat)


def test_no_country_is_none() -> None:
    index = CountryIndex.build(synthetic(np.random.default_rng(1), 2))
    assert index.of_points(np.array([100.0, np.nan, 0.0]), np.array([50.0, 0.0, np.nan])) == [None, None, None]
    empty = CountryIndex.build([])
    assert empty.codes == [] and empty.of_points(np.array([0.0]), np.array([0.0])) == [None]


def test_country_at_is_the_scalar_kernel() -> None:
    countries = synthetic(np.random.default_rng(2), 3)
    index = CountryIndex.build(countries)
    lon, lat = probe_points(np.random.default_rng(3), countries, 50)
    assert [country_at(x, y, *index.args()) for x, y in zip(lon, lat, strict=True)] \
        == index.indices_of_points(lon, lat).tolist()


SQUARE = ([0.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize(("countries", "message"), [
    ([CountryInput("ke", [[SQUARE]])], "country 'ke': the code must be 3 capital letters"),
    ([CountryInput("KEN", [[SQUARE]]), CountryInput("KEN", [[SQUARE]])], "country KEN: given twice"),
    ([CountryInput("KEN", [])], "country KEN: every polygon needs at least one ring"),
    ([CountryInput("KEN", [[]])], "country KEN: every polygon needs at least one ring"),
    ([CountryInput("UGA", [[([0.0, 1.0, 0.0], [0.0, 1.0, 0.0])]])], "country UGA: a ring needs at least 4"),
    ([CountryInput("UGA", [[([0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0])]])], "country UGA: a ring needs at least 4"),
    ([CountryInput("TZA", [[([0.0, 1.0, 1.0, 0.0], [0.0, 0.0, np.nan, 0.0])]])], "country TZA: coordinates out of"),
    ([CountryInput("TZA", [[([0.0, 181.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0])]])], "country TZA: coordinates out of"),
])
def test_bad_input_names_the_country(countries: list[CountryInput], message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        CountryIndex.build(countries)


def test_geojson_conversion() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    assert CountryIndex.build([country_from_geojson("AAA", polygon)]).of_points(
        np.array([0.7]), np.array([0.2])) == ["AAA"]
    with pytest.raises(GeometryError, match="country BBB: geometry type 'Point'"):
        country_from_geojson("BBB", {"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(GeometryError, match="country CCC: malformed coordinates"):
        country_from_geojson("CCC", {"type": "Polygon", "coordinates": [[1, 2, 3]]})
    with pytest.raises(ValueError, match="lon and lat must be 1-d arrays of one length"):
        CountryIndex.build([]).of_points(np.zeros(2), np.zeros(3))
