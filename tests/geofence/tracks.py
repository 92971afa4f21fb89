"""Tiny hand-built routes, zones and tracks for the geofence tests.

Near the equator one degree of longitude is ~111.32 km, so offsets are easy
to reason about: 0.0045 degrees of latitude is about 500 m.
"""

from __future__ import annotations

from geofence.engine import Binding, Track
from geofence.geometry import Network, RouteInput, ZoneInput

M_PER_DEG = 111_320.0
T0 = 1_800_000_000_000  # fix times, epoch ms
STEP_MS = 15_000


def box(key: int, lon: float, lat: float, half_m: float, office: bool = False) -> ZoneInput:
    d = half_m / M_PER_DEG
    lons = [lon - d, lon + d, lon + d, lon - d, lon - d]
    lats = [lat - d, lat - d, lat + d, lat + d, lat - d]
    return ZoneInput(key, [(lons, lats)], office=office)


def straight_network() -> Network:
    """One route due east along the equator from lon 30.0 to 31.0 (~111 km), corridor 500 m.

    Zone 10: an authorised stop area (±400 m) at lon 30.2; zone 20: the
    destination office (±1 km) at lon 31.0; zone 30: a stop area that belongs
    to no route (a stop there is not authorised).
    """
    zones = [box(10, 30.2, 0.0, 400), box(20, 31.0, 0.0, 1000, office=True), box(30, 30.6, 0.0, 400)]
    return Network.build([RouteInput(1, [30.0, 30.5, 31.0], [0.0, 0.0, 0.0], 500.0, stop_zones=(10,))], zones)


BINDING = Binding(shipment_id=7, route=0, destination_zone=1, departed_ms=T0)


class Trip:
    """A truck heading east along the equator, one fix every 15 s."""

    def __init__(self, lon: float = 30.0, start_ms: int = T0) -> None:
        self.lon = lon
        self.now = start_ms
        self.north_m = 0.0
        self.t: list[int] = []
        self.lons: list[float] = []
        self.lats: list[float] = []

    def _fix(self, north_m: float) -> None:
        self.t.append(self.now)
        self.lons.append(self.lon)
        self.lats.append(north_m / M_PER_DEG)
        self.now += STEP_MS

    def drive(self, fixes: int, north_m: float | None = None, kmh: float = 80.0) -> Trip:
        """``fixes`` fixes moving east at ``kmh``, ``north_m`` metres off the route line."""
        if north_m is not None:
            self.north_m = north_m
        for _ in range(fixes):
            self._fix(self.north_m)
            self.lon += kmh / 3.6 * STEP_MS / 1000 / M_PER_DEG
        return self

    def park(self, fixes: int) -> Trip:
        for _ in range(fixes):
            self._fix(self.north_m)
        return self

    def jump(self, north_m: float) -> Trip:
        """One multipath fix ``north_m`` metres away from where the truck is."""
        self._fix(self.north_m + north_m)
        return self

    def track(self) -> Track:
        return Track.of(self.t, self.lons, self.lats)
