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
