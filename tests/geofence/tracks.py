"""Tiny hand-built routes, zones and tracks for the geofence tests.

Near the equator one degree of longitude is ~111.32 km, so offsets are easy
to reason about: 0.0045 degrees of latitude is about 500 m.
"""

from __future__ import annotations

from geofence.countries import CountryInput
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

# The itinerary network: the straight route with a departure office (±1 km) at lon 30.0,
# border posts (±500 m) at 30.3 and 30.6 and the destination office (±1 km) at 31.0.
POST_LONS = (30.3, 30.6)
OFFICE_CODES = ("KEDEP", "KEPOST", "UGPOST", "UGDST")


def itinerary_network(post_lats: tuple[float, float] = (0.0, 0.0)) -> Network:
    """The straight route and four itinerary zones; ``post_lats`` moves a post off the road."""
    zones = [box(1, 30.0, 0.0, 1000, office=True), box(2, POST_LONS[0], post_lats[0], 500, office=True),
             box(3, POST_LONS[1], post_lats[1], 500, office=True), box(4, 31.0, 0.0, 1000, office=True)]
    return Network.build([RouteInput(1, [30.0, 30.5, 31.0], [0.0, 0.0, 0.0], 500.0)], zones)


def itinerary_binding(dwell_ms: int = 3_600_000) -> Binding:
    """Departure, two border posts of transit watched for dwell, destination."""
    return Binding(shipment_id=8, route=0, destination_zone=3, departed_ms=T0, offices=(0, 1, 2, 3),
                   dwell_ms=(0, dwell_ms, dwell_ms, 0), transit=(False, True, True, False),
                   office_codes=OFFICE_CODES)


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

    def drive_to(self, lon: float, kmh: float = 80.0) -> Trip:
        """Drive east until just past ``lon``."""
        step = kmh / 3.6 * STEP_MS / 1000 / M_PER_DEG
        return self.drive(max(1, int((lon - self.lon) / step) + 1), kmh=kmh)

    def back(self, fixes: int, kmh: float = 60.0) -> Trip:
        """``fixes`` fixes moving west (a U-turn)."""
        return self.drive(fixes, kmh=-kmh)

    def silence(self, minutes: float, km: float) -> Trip:
        """No fix for ``minutes`` while the truck moves ``km`` east along the route."""
        self.now += int(minutes * 60_000) - STEP_MS
        self.lon += km * 1000 / M_PER_DEG
        return self

    def jump(self, north_m: float) -> Trip:
        """One multipath fix ``north_m`` metres away from where the truck is."""
        self._fix(self.north_m + north_m)
        return self

    def track(self) -> Track:
        return Track.of(self.t, self.lons, self.lats)


BORDER_LON = 30.5


def rectangle(code: str, west: float, east: float) -> CountryInput:
    """A country from ``west`` to ``east`` degrees of longitude, latitudes -1..1."""
    return CountryInput(code, [[([west, east, east, west, west], [-1.0, -1.0, 1.0, 1.0, -1.0])]])


def border_network(post_lat: float = 0.0, gap_deg: float = 0.0) -> Network:
    """The straight route from KEN (west of lon 30.5) into UGA, a border post (±500 m)
    on the border at ``post_lat``; ``gap_deg`` either side of the border has no country."""
    zones = [box(1, 30.0, 0.0, 1000, office=True), box(2, BORDER_LON, post_lat, 500, office=True),
             box(3, 31.0, 0.0, 1000, office=True)]
    countries = [rectangle("KEN", 29.0, BORDER_LON - gap_deg), rectangle("UGA", BORDER_LON + gap_deg, 32.0)]
    return Network.build([RouteInput(1, [30.0, 30.5, 31.0], [0.0, 0.0, 0.0], 500.0)], zones, countries)


BORDER_BINDING = Binding(shipment_id=9, route=0, destination_zone=2, departed_ms=T0, offices=(0, 1, 2),
                         transit=(False, True, False), office_codes=("KEDEP", "BUSIA", "UGDST"))
