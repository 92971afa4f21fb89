"""Country outlines packed for ``geofence.kernels.countries``: which country a fix is in.

Coordinates are WGS84 (lon, lat) degrees, like zones: GeoJSON edges are straight
in that space (RFC 7946). Input is checked once here; the kernels then trust it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geofence.errors import GeometryError
from geofence.kernels.countries import (
    countries_of_points,
    min_ref_distance,
    parity_by_ray,
    set_reference,
    sweep_columns,
)
from geofence.types import BoolArray, FloatArray, IntArray

CELL_DEG = 0.05  # about 5.5 km: a 10 m outline puts a few dozen edges in a boundary cell
REF_CLEARANCE_DEG = 1e-9  # a reference point this close to an edge is moved (its side would be a rounding)
_CODE = re.compile(r"^[A-Z]{3}$")
_GOLDEN = 0.6180339887498949

Ring = tuple[Sequence[float], Sequence[float]]


@dataclass(frozen=True)
class CountryInput:
    """A country: ISO 3166-1 alpha-3 code and polygons, each a list of rings (lon[], lat[])
    in degrees, the first ring the shell, the rest holes."""

    code: str
    polygons: Sequence[Sequence[Ring]]


def country_from_geojson(code: str, geometry: Mapping[str, Any]) -> CountryInput:
    """A CountryInput from a GeoJSON Polygon or MultiPolygon geometry."""
    kind = geometry.get("type")
    coords: Any = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords
    else:
        raise GeometryError(f"country {code}: geometry type {kind!r} is not Polygon or MultiPolygon")
    try:
        return CountryInput(code, [[_ring(ring) for ring in polygon] for polygon in polygons])
    except (TypeError, ValueError, IndexError) as exc:
        raise GeometryError(f"country {code}: malformed coordinates ({exc})") from exc


def _ring(positions: Sequence[Sequence[float]]) -> Ring:
    xy = np.asarray(positions, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"a ring must be a list of [lon, lat] positions, got shape {xy.shape}")
    return xy[:, 0].tolist(), xy[:, 1].tolist()


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class CountryIndex:
    """All countries on one grid (see geofence.kernels.countries). Build with ``CountryIndex.build``."""

    codes: list[str]
    grid: FloatArray  # x0, y0, cell, nx, ny
    col_off: IntArray
    run_iy: IntArray
    run_country: IntArray
    run_ref_x: FloatArray
    run_ref_y: FloatArray
    run_edge_off: IntArray
    entry_edge: IntArray
    entry_country: IntArray
    entry_ref_inside: BoolArray
    vx: FloatArray
    vy: FloatArray

    @classmethod
    def build(cls, countries: Sequence[CountryInput], cell_deg: float = CELL_DEG) -> CountryIndex:
        """Validate and pack; raises GeometryError naming the first bad country."""
        vx, vy, edge_start, edge_country = _pack(countries)
        grid = _grid(vx, vy, cell_deg)
        cells = _file_edges(vx, vy, edge_start, edge_country, grid)
        col_edge_off, col_edges = _column_edges(vx, edge_start, grid)
        sweep = (grid, len(countries), vx, vy, edge_start, edge_country, col_edge_off, col_edges,
                 cells.keys, cells.entry_off, cells.entry_country)
        empty_i, empty_f, empty_b = np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.bool_)
        n_runs = sweep_columns(False, *sweep, empty_i, empty_i, empty_i, empty_f, empty_f, empty_i, empty_i,
                               empty_b)
        nx = int(grid[3])
        col_off = np.zeros(nx + 1, dtype=np.int64)
        run_iy, run_country = np.zeros(n_runs, dtype=np.int64), np.zeros(n_runs, dtype=np.int64)
        run_ref_x, run_ref_y = np.zeros(n_runs), np.zeros(n_runs)
        run_edge_off = np.zeros(n_runs + 1, dtype=np.int64)
        cell_run = np.zeros(len(cells.keys), dtype=np.int64)
        ref_inside = np.zeros(len(cells.entry_edge), dtype=np.bool_)
        sweep_columns(True, *sweep, col_off, run_iy, run_country, run_ref_x, run_ref_y, run_edge_off, cell_run,
                      ref_inside)
        index = cls([c.code for c in countries], grid, col_off, run_iy, run_country, run_ref_x, run_ref_y,
                    run_edge_off, cells.entry_edge, cells.entry_country, ref_inside, vx, vy)
        index._clear_references(cells, cell_run, edge_start, edge_country)
        return index

    def args(self) -> tuple[object, ...]:
        """The arrays in the order ``country_at`` and ``countries_of_points`` take them (after the point)."""
        return (self.grid, self.col_off, self.run_iy, self.run_country, self.run_ref_x, self.run_ref_y,
                self.run_edge_off, self.entry_edge, self.entry_country, self.entry_ref_inside, self.vx, self.vy)

    def indices_of_points(self, lon: FloatArray, lat: FloatArray) -> IntArray:
        """Index into ``codes`` of each (lon, lat) point's country, -1 for none (sea, no data, NaN)."""
        x = np.ascontiguousarray(lon, dtype=np.float64)
        y = np.ascontiguousarray(lat, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"lon and lat must be 1-d arrays of one length, got shapes {x.shape} and {y.shape}")
        return np.asarray(countries_of_points(x, y, *self.args()), dtype=np.int64)

    def of_points(self, lon: FloatArray, lat: FloatArray) -> list[str | None]:
        """Alpha-3 code of each (lon, lat) point's country, None for none."""
        return [self.codes[i] if i >= 0 else None for i in self.indices_of_points(lon, lat).tolist()]

    def _clear_references(self, cells: _Cells, cell_run: IntArray, edge_start: IntArray,
                          edge_country: IntArray) -> None:
        """Move each boundary cell's reference point that lies (almost) on an edge to a
        point of the cell clear of every edge, and decide its sides by a full ray test."""
        scratch = np.zeros(len(self.codes), dtype=np.bool_)
        clearance = min_ref_distance(cell_run, cells.entry_off, cells.entry_edge, self.vx, self.vy,
                                     self.run_ref_x, self.run_ref_y)
        x0, y0, cell, ny = self.grid[0], self.grid[1], self.grid[2], int(self.grid[4])
        for b in np.flatnonzero(clearance < REF_CLEARANCE_DEG).tolist():
            ix, iy = divmod(int(cells.keys[b]), ny)
            edges = cells.entry_edge[cells.entry_off[b]:cells.entry_off[b + 1]]
            for attempt in range(1, 256):
                fx = 0.05 + 0.9 * ((attempt * _GOLDEN) % 1.0)
                fy = 0.05 + 0.9 * ((attempt * _GOLDEN * _GOLDEN) % 1.0)
                px, py = x0 + (ix + fx) * cell, y0 + (iy + fy) * cell
                if _distance_to_edges(px, py, self.vx, self.vy, edges) >= REF_CLEARANCE_DEG:
                    break
            else:  # pragma: no cover - would need 255 edges through chosen points
                raise GeometryError(f"country cell ({ix}, {iy}): no reference point clear of its edges")
            r = cell_run[b]
            self.run_ref_x[r], self.run_ref_y[r] = px, py
            odd = parity_by_ray(px, py, self.vx, self.vy, edge_start, edge_country, len(self.codes))
            self.run_country[r] = set_reference(odd, cells.entry_off[b], cells.entry_off[b + 1],
                                                self.entry_country, self.entry_ref_inside, scratch)


def _distance_to_edges(px: float, py: float, vx: FloatArray, vy: FloatArray, edges: IntArray) -> float:
    ax, ay, bx, by = vx[edges], vy[edges], vx[edges + 1], vy[edges + 1]
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = np.clip(np.divide((px - ax) * dx + (py - ay) * dy, ll, out=np.zeros_like(ll), where=ll > 0), 0.0, 1.0)
    return float(np.hypot(ax + t * dx - px, ay + t * dy - py).min(initial=np.inf))


def _check_ring(code: str, ring: Ring) -> tuple[FloatArray, FloatArray]:
    lon = np.asarray(ring[0], dtype=np.float64)
    lat = np.asarray(ring[1], dtype=np.float64)
    if lon.ndim != 1 or len(lon) < 4 or lon.shape != lat.shape or lon[0] != lon[-1] or lat[0] != lat[-1]:
        raise GeometryError(f"country {code}: a ring needs at least 4 positions, the last equal to the first")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()) or (np.abs(lon) > 180).any() \
            or (np.abs(lat) > 90).any():
        raise GeometryError(f"country {code}: coordinates out of range (lon -180..180, lat -90..90)")
    return lon, lat


def check_country(country: CountryInput) -> list[tuple[FloatArray, FloatArray]]:
    """The country's rings as arrays; raises GeometryError naming the country and what is wrong."""
    if not isinstance(country.code, str) or not _CODE.match(country.code):
        raise GeometryError(f"country {country.code!r}: the code must be 3 capital letters (ISO 3166-1 alpha-3)")
    if not country.polygons or any(not polygon for polygon in country.polygons):
        raise GeometryError(f"country {country.code}: every polygon needs at least one ring")
    return [_check_ring(country.code, ring) for polygon in country.polygons for ring in polygon]


def _pack(countries: Sequence[CountryInput]) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """All rings' vertices end to end, and each edge's first vertex and country."""
    seen: set[str] = set()
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    owner: list[int] = []
    for c, country in enumerate(countries):
        rings = check_country(country)
        if country.code in seen:
            raise GeometryError(f"country {country.code}: given twice")
        seen.add(country.code)
        for lon, lat in rings:
            xs.append(lon)
            ys.append(lat)
            owner.append(c)
    lengths = np.array([len(v) for v in xs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    edge_ring = np.repeat(np.arange(len(xs)), lengths - 1)
    edge_start = (np.arange(len(edge_ring)) - np.repeat(np.cumsum(lengths - 1) - (lengths - 1), lengths - 1)
                  + starts[edge_ring]).astype(np.int64)
    return _cat(xs), _cat(ys), edge_start, np.asarray(owner, dtype=np.int64)[edge_ring].astype(np.int64)


def _cat(parts: list[FloatArray]) -> FloatArray:
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float64) if parts else np.zeros(0)


def _grid(vx: FloatArray, vy: FloatArray, cell: float) -> FloatArray:
    if not cell > 0:
        raise GeometryError(f"country grid cell {cell} degrees must be > 0")
    if len(vx) == 0:
        return np.array([0.0, 0.0, cell, 0.0, 0.0])
    x0, y0 = float(vx.min()) - cell, float(vy.min()) - cell
    nx = int(np.floor((vx.max() - x0) / cell)) + 2
    ny = int(np.floor((vy.max() - y0) / cell)) + 2
    return np.array([x0, y0, cell, nx, ny], dtype=np.float64)


@dataclass(frozen=True)
class _Cells:
    keys: IntArray  # boundary cells ix * ny + iy, sorted
    entry_off: IntArray  # cell b's entries are entry_off[b]:entry_off[b + 1]
    entry_edge: IntArray  # first vertex of the edge
    entry_country: IntArray


def _span(lo: FloatArray, hi: FloatArray, origin: float, cell: float) -> tuple[IntArray, IntArray]:
    """First and last cell index each [lo, hi] touches (the kernel's floor, so the two agree)."""
    return (np.floor((lo - origin) / cell).astype(np.int64), np.floor((hi - origin) / cell).astype(np.int64))


def _file_edges(vx: FloatArray, vy: FloatArray, edge_start: IntArray, edge_country: IntArray,
                grid: FloatArray) -> _Cells:
    """Every edge filed in each cell its bounding box touches; within a cell sorted by country."""
    x0, y0, cell, ny = grid[0], grid[1], grid[2], int(grid[4])
    ax, ay, bx, by = vx[edge_start], vy[edge_start], vx[edge_start + 1], vy[edge_start + 1]
    ix0, ix1 = _span(np.minimum(ax, bx), np.maximum(ax, bx), x0, cell)
    iy0, iy1 = _span(np.minimum(ay, by), np.maximum(ay, by), y0, cell)
    nxs, nys = ix1 - ix0 + 1, iy1 - iy0 + 1
    counts = nxs * nys
    edge = np.repeat(np.arange(len(edge_start)), counts)
    local = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    keys = (ix0[edge] + local // nys[edge]) * ny + iy0[edge] + local % nys[edge]
    order = np.lexsort((edge, edge_country[edge], keys))
    keys, edge = keys[order], edge[order]
    unique, starts = np.unique(keys, return_index=True)
    return _Cells(unique.astype(np.int64), np.append(starts, len(keys)).astype(np.int64),
                  np.ascontiguousarray(edge_start[edge]), np.ascontiguousarray(edge_country[edge]))


def _column_edges(vx: FloatArray, edge_start: IntArray, grid: FloatArray) -> tuple[IntArray, IntArray]:
    """Edges by grid column their x-range touches: (offsets per column, edge indices)."""
    x0, cell, nx = grid[0], grid[2], int(grid[3])
    ax, bx = vx[edge_start], vx[edge_start + 1]
    ix0, ix1 = _span(np.minimum(ax, bx), np.maximum(ax, bx), x0, cell)
    counts = ix1 - ix0 + 1
    edge = np.repeat(np.arange(len(edge_start)), counts)
    column = ix0[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.argsort(column, kind="stable")
    offsets = np.searchsorted(column[order], np.arange(nx + 1)).astype(np.int64)
    return offsets, np.ascontiguousarray(edge[order], dtype=np.int64)
