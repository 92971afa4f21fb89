"""Routes and zones as the flat arrays the kernels read.

Each route gets its own azimuthal equidistant projection centred on its
bounding box (pyproj), so distances along a 2,000 km corridor stay within a
fraction of a per mille of geodesic ones. Route lines are first densified in
(lon, lat), because a GeoJSON edge is straight in that space, not in the
projection. Zones stay in (lon, lat) for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pyproj import CRS, Transformer

from geofence import kernels
from geofence.errors import GeometryError as GeometryError  # re-exported: callers import it from here
from geofence.types import BoolArray, FloatArray, IntArray

EARTH_RADIUS_M = 6_371_008.8
DENSIFY_M = 1_000.0  # longest projected edge; the chord error over 1 km is below a millimetre
ZONE_CELL_DEG = 0.05


@dataclass(frozen=True)
class RouteInput:
    """A route: (lon, lat) vertices in degrees, corridor half-width in metres."""

    key: int
    lon: Sequence[float]
    lat: Sequence[float]
    half_width_m: float = 500.0
    stop_zones: tuple[int, ...] = ()  # zone keys authorised for stops on this route


@dataclass(frozen=True)
class ZoneInput:
    """A polygon: rings of (lon, lat) degrees, the first ring the shell, the rest holes."""

    key: int
    rings: Sequence[tuple[Sequence[float], Sequence[float]]]
    office: bool = False  # office zones authorise stops on every route


def haversine_m(lon1: FloatArray, lat1: FloatArray, lon2: FloatArray, lat2: FloatArray) -> FloatArray:
    """Great-circle distance in metres between arrays of points in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a)), dtype=np.float64)


def densify(lon: FloatArray, lat: FloatArray, max_m: float = DENSIFY_M) -> tuple[FloatArray, FloatArray]:
    """Insert vertices, linear in (lon, lat), so that no edge is longer than ``max_m`` metres."""
    lengths = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    parts = np.maximum(1, np.ceil(lengths / max_m)).astype(np.int64)
    if (parts == 1).all():
        return lon, lat
    edge = np.repeat(np.arange(len(parts)), parts)
    frac = (np.arange(len(edge)) - np.repeat(np.cumsum(parts) - parts, parts)) / np.repeat(parts, parts)
    out_lon = np.append(lon[edge] + frac * (lon[edge + 1] - lon[edge]), lon[-1])
    out_lat = np.append(lat[edge] + frac * (lat[edge + 1] - lat[edge]), lat[-1])
    return out_lon, out_lat


def check_route(route: RouteInput) -> tuple[FloatArray, FloatArray]:
    lon = np.ascontiguousarray(route.lon, dtype=np.float64)
    lat = np.ascontiguousarray(route.lat, dtype=np.float64)
    if lon.ndim != 1 or lon.shape != lat.shape or len(lon) < 2:
        raise GeometryError(f"route {route.key}: need at least 2 vertices, got {len(lon)}")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise GeometryError(f"route {route.key}: coordinates must be finite")
    if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
        raise GeometryError(f"route {route.key}: coordinates out of range (lon -180..180, lat -90..90)")
    if not route.half_width_m > 0:
        raise GeometryError(f"route {route.key}: corridor half-width {route.half_width_m} m must be > 0")
    if haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum() == 0:
        raise GeometryError(f"route {route.key}: all vertices are the same point")
    return lon, lat


def projection(lon: FloatArray, lat: FloatArray) -> Transformer:
    """WGS84 -> azimuthal equidistant (metres) centred on the bounding box of the points."""
    lon0 = float(lon.min() + lon.max()) / 2
    lat0 = float(lat.min() + lat.max()) / 2
    crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0:.9f} +lon_0={lon0:.9f} +datum=WGS84 +units=m +no_defs")
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _cells(minx: FloatArray, miny: FloatArray, maxx: FloatArray, maxy: FloatArray, x0: float, y0: float,
           cell: float, ny: int) -> tuple[IntArray, IntArray]:
    """(cell key, item) pairs: every grid cell each box touches, sorted by key."""
    ix0 = np.floor((minx - x0) / cell).astype(np.int64)
    iy0 = np.floor((miny - y0) / cell).astype(np.int64)
    nxs = np.floor((maxx - x0) / cell).astype(np.int64) - ix0 + 1
    nys = np.floor((maxy - y0) / cell).astype(np.int64) - iy0 + 1
    counts = nxs * nys
    item = np.repeat(np.arange(len(minx)), counts)
    local = np.arange(len(item)) - np.repeat(np.cumsum(counts) - counts, counts)
    keys = (ix0[item] + local // nys[item]) * ny + iy0[item] + local % nys[item]
    order = np.lexsort((item, keys))
    return keys[order], item[order]


@dataclass
class _Grid:
    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    keys: IntArray  # unique cell keys, sorted
    offsets: IntArray  # items of keys[k] are items[offsets[k]:offsets[k + 1]]
    items: IntArray


def _grid(minx: FloatArray, miny: FloatArray, maxx: FloatArray, maxy: FloatArray, cell: float) -> _Grid:
    if len(minx) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Grid(0.0, 0.0, cell, 0, 0, empty, np.zeros(1, dtype=np.int64), empty)
    x0, y0 = float(minx.min()) - cell, float(miny.min()) - cell
    nx = int(np.floor((maxx.max() - x0) / cell)) + 2
    ny = int(np.floor((maxy.max() - y0) / cell)) + 2
    keys, items = _cells(minx, miny, maxx, maxy, x0, y0, cell, ny)
    unique, starts = np.unique(keys, return_index=True)
    offsets = np.append(starts, len(keys)).astype(np.int64)
    return _Grid(x0, y0, cell, nx, ny, unique.astype(np.int64), offsets, items.astype(np.int64))


def _route_grid(x: FloatArray, y: FloatArray, half_width: float) -> _Grid:
    """Each segment filed in every cell its bounding box, padded by the half-width,
    touches; within a cell the segments nearest its centre come first.

    Cells of twice the half-width were fastest measured (bench/RESULTS.md):
    smaller ones file a segment in more cells, larger ones hold more segments.
    """
    ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
    pad = half_width
    g = _grid(np.minimum(ax, bx) - pad, np.minimum(ay, by) - pad, np.maximum(ax, bx) + pad,
              np.maximum(ay, by) + pad, max(2 * pad, 50.0))
    dist = kernels.centre_distances(g.keys, g.offsets, g.items, g.x0, g.y0, g.cell, g.ny, ax, ay, bx, by)
    cell_of = np.repeat(np.arange(len(g.keys)), np.diff(g.offsets))
    g.items = g.items[np.lexsort((dist, cell_of))]
    return g


def _columns(g: _Grid) -> IntArray:
    """Where each grid column's cells start among the sorted cell keys (nx + 1 entries)."""
    return np.searchsorted(g.keys, np.arange(g.nx + 1, dtype=np.int64) * g.ny).astype(np.int64)


@dataclass
class Network:
    """All routes and zones, packed for the kernels. Build with ``Network.build``."""

    route_keys: list[int]
    zone_keys: list[int]
    transformers: list[Transformer]
    # segments (metres in their route's projection) and chainage at their start
    seg_ax: FloatArray
    seg_ay: FloatArray
    seg_bx: FloatArray
    seg_by: FloatArray
    seg_s0: FloatArray
    route_seg_off: IntArray
    half_width: FloatArray
    grid_x0: FloatArray
    grid_y0: FloatArray
    grid_cell: FloatArray
    grid_nx: IntArray
    grid_ny: IntArray
    # Route r's cells in grid column ix are cell_keys[col_off[col_base[r] + ix]:col_off[col_base[r] + ix + 1]].
    col_base: IntArray
    col_off: IntArray
    cell_keys: IntArray
    cell_seg_off: IntArray
    cell_segs: IntArray
    # zones
    zone_ring_off: IntArray
    ring_off: IntArray
    vx: FloatArray
    vy: FloatArray
    zmin_x: FloatArray
    zmin_y: FloatArray
    zmax_x: FloatArray
    zmax_y: FloatArray
    zgrid: FloatArray  # x0, y0, cell, nx, ny
    zcell_keys: IntArray
    zcell_off: IntArray
    zcell_zones: IntArray
    route_zone_allowed: BoolArray  # [route, zone]: a stop there is authorised
    route_index: dict[int, int] = field(default_factory=dict)
    zone_index: dict[int, int] = field(default_factory=dict)

    @classmethod
    def build(cls, routes: Sequence[RouteInput], zones: Sequence[ZoneInput]) -> Network:
        """Validate and pack; raises GeometryError naming the first bad route or zone."""
        zone_index = {z.key: i for i, z in enumerate(zones)}
        zone_part = _pack_zones(zones)
        allowed = np.zeros((len(routes), len(zones)), dtype=np.bool_)
        offices = np.array([z.office for z in zones], dtype=np.bool_)
        segs: list[tuple[FloatArray, ...]] = []
        grids: list[_Grid] = []
        transformers = []
        for r, route in enumerate(routes):
            lon, lat = densify(*check_route(route))
            tr = projection(lon, lat)
            x, y = (np.asarray(v, dtype=np.float64) for v in tr.transform(lon, lat))
            seg_len = np.hypot(np.diff(x), np.diff(y))
            s0 = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
            segs.append((x[:-1], y[:-1], x[1:], y[1:], s0))
            grids.append(_route_grid(x, y, route.half_width_m))
            transformers.append(tr)
            allowed[r] = offices
            for key in route.stop_zones:
                if key not in zone_index:
                    raise GeometryError(f"route {route.key}: stop zone {key} does not exist")
                allowed[r, zone_index[key]] = True
        seg_counts = [len(s[0]) for s in segs]
        seg_base = np.concatenate([[0], np.cumsum(seg_counts)]).astype(np.int64)
        cell_base = np.concatenate([[0], np.cumsum([len(g.keys) for g in grids])]).astype(np.int64)
        col_base = np.concatenate([[0], np.cumsum([g.nx + 1 for g in grids])]).astype(np.int64)
        item_base = np.concatenate([[0], np.cumsum([len(g.items) for g in grids])]).astype(np.int64)
        cat = _concat
        return cls(
            route_keys=[r.key for r in routes], zone_keys=[z.key for z in zones], transformers=transformers,
            seg_ax=cat([s[0] for s in segs]), seg_ay=cat([s[1] for s in segs]),
            seg_bx=cat([s[2] for s in segs]), seg_by=cat([s[3] for s in segs]), seg_s0=cat([s[4] for s in segs]),
            route_seg_off=seg_base,
            half_width=np.array([r.half_width_m for r in routes], dtype=np.float64),
            grid_x0=np.array([g.x0 for g in grids], dtype=np.float64),
            grid_y0=np.array([g.y0 for g in grids], dtype=np.float64),
            grid_cell=np.array([g.cell for g in grids], dtype=np.float64),
            grid_nx=np.array([g.nx for g in grids], dtype=np.int64),
            grid_ny=np.array([g.ny for g in grids], dtype=np.int64),
            col_base=col_base[:-1].copy(),
            col_off=cat([_columns(g) + cell_base[i] for i, g in enumerate(grids)], np.int64),
            cell_keys=cat([g.keys for g in grids], np.int64),
            cell_seg_off=np.append(cat([g.offsets[:-1] + item_base[i] for i, g in enumerate(grids)], np.int64),
                                   item_base[-1]).astype(np.int64),
            cell_segs=cat([g.items + seg_base[i] for i, g in enumerate(grids)], np.int64),
            route_zone_allowed=allowed,
            route_index={r.key: i for i, r in enumerate(routes)},
            zone_index=zone_index,
            **zone_part,
        )

    def project(self, route: IntArray, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each point (degrees) in the projection of its route (index into this network), metres."""
        x = np.empty(len(lon))
        y = np.empty(len(lon))
        order = np.argsort(route, kind="stable")
        bounds = np.flatnonzero(np.diff(route[order])) + 1
        for part in np.split(order, bounds):
            if len(part):
                px, py = self.transformers[int(route[part[0]])].transform(lon[part], lat[part])
                x[part], y[part] = px, py
        return x, y

    def route_xy(self, r: int) -> tuple[FloatArray, FloatArray]:
        """Projected vertices (m) of route index r: what shapely should see for the same answers."""
        a, b = self.route_seg_off[r], self.route_seg_off[r + 1]
        return np.append(self.seg_ax[a:b], self.seg_bx[b - 1]), np.append(self.seg_ay[a:b], self.seg_by[b - 1])

    def route_args(self) -> tuple[object, ...]:
        """Route arrays in the order the kernels take them (after the per-point arrays)."""
        return (self.seg_ax, self.seg_ay, self.seg_bx, self.seg_by, self.half_width, self.grid_x0, self.grid_y0,
                self.grid_cell, self.grid_nx, self.grid_ny, self.col_base, self.col_off, self.cell_keys,
                self.cell_seg_off, self.cell_segs)

    def zone_args(self) -> tuple[object, ...]:
        return (self.zone_ring_off, self.ring_off, self.vx, self.vy, self.zmin_x, self.zmin_y, self.zmax_x,
                self.zmax_y, self.zgrid, self.zcell_keys, self.zcell_off, self.zcell_zones)


def _concat(parts: list[np.ndarray], dtype: type = np.float64) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)


def check_zone(zone: ZoneInput) -> list[tuple[FloatArray, FloatArray]]:
    """The zone's rings as arrays; raises GeometryError naming what is wrong."""
    if not zone.rings:
        raise GeometryError(f"zone {zone.key}: a polygon needs at least one ring")
    rings = []
    for lon_s, lat_s in zone.rings:
        lon = np.asarray(lon_s, dtype=np.float64)
        lat = np.asarray(lat_s, dtype=np.float64)
        if len(lon) < 4 or lon.shape != lat.shape or lon[0] != lon[-1] or lat[0] != lat[-1]:
            raise GeometryError(f"zone {zone.key}: a ring needs at least 4 positions, the last equal to the first")
        if not (np.isfinite(lon).all() and np.isfinite(lat).all()) or (np.abs(lon) > 180).any() \
                or (np.abs(lat) > 90).any():
            raise GeometryError(f"zone {zone.key}: coordinates out of range (lon -180..180, lat -90..90)")
        rings.append((lon, lat))
    return rings


def _pack_zones(zones: Sequence[ZoneInput]) -> dict[str, np.ndarray]:
    ring_counts: list[int] = []
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for z in zones:
        rings = check_zone(z)
        ring_counts.append(len(rings))
        for lon, lat in rings:
            xs.append(lon)
            ys.append(lat)
    ring_off = np.concatenate([[0], np.cumsum([len(v) for v in xs])]).astype(np.int64)
    zone_ring_off = np.concatenate([[0], np.cumsum(ring_counts)]).astype(np.int64)
    vx, vy = _concat(xs), _concat(ys)
    shells = zone_ring_off[:-1]
    zmin_x = np.array([vx[ring_off[s]:ring_off[s + 1]].min() for s in shells], dtype=np.float64)
    zmax_x = np.array([vx[ring_off[s]:ring_off[s + 1]].max() for s in shells], dtype=np.float64)
    zmin_y = np.array([vy[ring_off[s]:ring_off[s + 1]].min() for s in shells], dtype=np.float64)
    zmax_y = np.array([vy[ring_off[s]:ring_off[s + 1]].max() for s in shells], dtype=np.float64)
    g = _grid(zmin_x, zmin_y, zmax_x, zmax_y, ZONE_CELL_DEG)
    return {
        "zone_ring_off": zone_ring_off, "ring_off": ring_off, "vx": vx, "vy": vy,
        "zmin_x": zmin_x, "zmin_y": zmin_y, "zmax_x": zmax_x, "zmax_y": zmax_y,
        "zgrid": np.array([g.x0, g.y0, g.cell, g.nx, g.ny], dtype=np.float64),
        "zcell_keys": g.keys, "zcell_off": g.offsets, "zcell_zones": g.items,
    }
