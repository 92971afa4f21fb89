"""A route as a polyline with distance along it (chainage), in metres."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from firmware_sim.corridors import Corridor

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180  # along a meridian, on the sphere haversine_m uses


def haversine_m(lat1: NDArray[np.float64], lon1: NDArray[np.float64],
                lat2: NDArray[np.float64], lon2: NDArray[np.float64]) -> NDArray[np.float64]:
    """Great-circle distance in metres between arrays of WGS84 points (degrees)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a)), dtype=np.float64)


def moved(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """(lat, lon) in degrees shifted by a few km north and east (metres), on the same
    sphere as ``haversine_m`` so that the shift measures back as given."""
    lat2 = lat + north_m / M_PER_DEG
    return lat2, lon + east_m / (M_PER_DEG * math.cos(math.radians((lat + lat2) / 2)))


@dataclass(frozen=True)
class RouteLine:
    """Densified polyline; ``chainage[i]`` is the distance (m) from the start to vertex i."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    chainage: NDArray[np.float64]
    stops: dict[str, float]  # named places -> chainage (m)

    @property
    def length_m(self) -> float:
        return float(self.chainage[-1])

    @classmethod
    def from_corridor(cls, corridor: Corridor, spacing_m: float = 1000.0, reverse: bool = False) -> RouteLine:
        places = corridor.waypoints[::-1] if reverse else corridor.waypoints
        lats: list[float] = []
        lons: list[float] = []
        names: dict[str, int] = {}
        for a, b in itertools.pairwise(places):
            names[a.name] = len(lats)
            leg = float(haversine_m(np.array(a.lat), np.array(a.lon), np.array(b.lat), np.array(b.lon)))
            n = max(1, int(np.ceil(leg / spacing_m)))
            t = np.arange(n) / n
            lats.extend(a.lat + t * (b.lat - a.lat))
            lons.extend(a.lon + t * (b.lon - a.lon))
        names[places[-1].name] = len(lats)
        lats.append(places[-1].lat)
        lons.append(places[-1].lon)
        lat, lon = np.array(lats), np.array(lons)
        chainage = np.concatenate([[0.0], np.cumsum(haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]))])
        return cls(lat, lon, chainage, {k: float(chainage[i]) for k, i in names.items()})

    def position_at(self, s: float) -> tuple[float, float, float]:
        """(lat, lon, heading in degrees from north) at chainage ``s`` metres."""
        s = min(max(s, 0.0), self.length_m)
        i = int(np.searchsorted(self.chainage, s, side="right")) - 1
        i = min(max(i, 0), len(self.chainage) - 2)
        span = self.chainage[i + 1] - self.chainage[i]
        f = (s - self.chainage[i]) / span if span > 0 else 0.0
        lat = self.lat[i] + f * (self.lat[i + 1] - self.lat[i])
        lon = self.lon[i] + f * (self.lon[i + 1] - self.lon[i])
        dy = self.lat[i + 1] - self.lat[i]
        dx = (self.lon[i + 1] - self.lon[i]) * np.cos(np.radians(lat))
        heading = float(np.degrees(np.arctan2(dx, dy)) % 360.0)
        return float(lat), float(lon), heading

    def chainage_of(self, lat: float, lon: float) -> float:
        """Chainage (m) of the point of the route nearest to (``lat``, ``lon``), degrees
        (planar around the point: exact enough within a few km of the route)."""
        x, y = self._local(lat, lon)
        ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        f = np.clip(np.divide(-(ax * dx + ay * dy), seg2, out=np.zeros_like(seg2), where=seg2 > 0), 0.0, 1.0)
        d2 = (ax + f * dx) ** 2 + (ay + f * dy) ** 2
        i = int(np.argmin(d2))
        return float(self.chainage[i] + f[i] * (self.chainage[i + 1] - self.chainage[i]))

    def band(self, s0: float, s1: float, half_width_m: float) -> tuple[tuple[float, float], ...]:
        """Counter-clockwise closed ring (lon, lat) of the road from chainage ``s0`` to ``s1``
        (m), ``half_width_m`` either side, with mitred corners where the road bends."""
        inner = [s for s in self.chainage if s0 < s < s1]
        lat = np.array([self.position_at(s)[0] for s in (s0, *inner, s1)])
        lon = np.array([self.position_at(s)[1] for s in (s0, *inner, s1)])
        lat0, lon0 = float(lat[0]), float(lon[0])
        x, y = self._local(lat0, lon0, lat, lon)
        ux, uy = np.diff(x), np.diff(y)
        norm = np.hypot(ux, uy)
        ux, uy = ux / norm, uy / norm
        # Unit left normals per segment; at a vertex, the mitre of its two segments.
        nx = np.concatenate([[-uy[0]], -(uy[:-1] + uy[1:]) / 2, [-uy[-1]]])
        ny = np.concatenate([[ux[0]], (ux[:-1] + ux[1:]) / 2, [ux[-1]]])
        scale = half_width_m / (nx * nx + ny * ny)  # 1 / cos(half the bend) along the bisector
        left = list(zip(x + nx * scale, y + ny * scale, strict=True))
        right = list(zip(x - nx * scale, y - ny * scale, strict=True))
        ring = [*right, *left[::-1]]  # right side forwards, left side back: counter-clockwise
        k = M_PER_DEG * math.cos(math.radians(lat0))
        out = tuple((round(lon0 + px / k, 7), round(lat0 + py / M_PER_DEG, 7)) for px, py in ring)
        return (*out, out[0])

    def _local(self, lat0: float, lon0: float, lat: NDArray[np.float64] | None = None,
               lon: NDArray[np.float64] | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Planar metres (east, north) from (``lat0``, ``lon0``) of the route's vertices or of the points given."""
        lat = self.lat if lat is None else lat
        lon = self.lon if lon is None else lon
        k = M_PER_DEG * math.cos(math.radians(lat0))
        return (lon - lon0) * k, (lat - lat0) * M_PER_DEG
