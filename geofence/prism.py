"""Where a truck could have been during a reporting gap: the space-time prism.

With fixes A and B a gap of ``gap_s`` apart and a top speed ``v``, every place
P it could have reached satisfies |AP| + |PB| <= v * gap_s: an ellipse with
foci A and B. It is drawn in the route's projection (metres) and returned in
lon/lat as a GeoJSON Polygon.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pyproj import Transformer
from pyproj.enums import TransformDirection

from geofence.types import FloatArray

VERTICES = 48


def ellipse(ax: float, ay: float, bx: float, by: float, reach_m: float,
            vertices: int = VERTICES) -> tuple[FloatArray, FloatArray]:
    """``vertices`` points (m) on the ellipse |AP| + |PB| = ``reach_m``, counter-clockwise;
    when B is out of reach from A the ellipse degenerates to the segment AB."""
    cx, cy = (ax + bx) / 2, (ay + by) / 2
    c = math.hypot(bx - ax, by - ay) / 2
    a = max(reach_m / 2, c)
    b = math.sqrt(max(a * a - c * c, 0.0))
    angle = math.atan2(by - ay, bx - ax)
    theta = np.linspace(0.0, 2 * math.pi, vertices, endpoint=False)
    u, v = a * np.cos(theta), b * np.sin(theta)
    cos, sin = math.cos(angle), math.sin(angle)
    return cx + u * cos - v * sin, cy + u * sin + v * cos


def prism_polygon(transformer: Transformer, ax: float, ay: float, bx: float, by: float,
                  reach_m: float) -> dict[str, Any]:
    """The prism as a GeoJSON Polygon (lon, lat; closed ring); A and B in ``transformer``'s metres."""
    x, y = ellipse(ax, ay, bx, by, reach_m)
    lon, lat = transformer.transform(x, y, direction=TransformDirection.INVERSE)
    ring = [[round(float(lo), 7), round(float(la), 7)] for lo, la in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}
