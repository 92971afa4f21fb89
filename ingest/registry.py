"""What the geofence engine needs from the database: routes and zones as a
Network, in-transit shipments as bindings of trackers and e-seals, and saved
detector states. Reloaded when the counters in ``geofence_version`` move.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property
from itertools import groupby
from typing import Any

import msgspec
import psycopg
import structlog

from geofence.countries import CountryIndex
from geofence.engine import Binding
from geofence.geometry import GeometryError, Network, RouteInput, ZoneInput, check_route, check_zone
from geofence.rules import Rules
from geofence.state import DeviceState, loads
from ingest import metrics
from ingest.countries import CountryCache

log = structlog.get_logger("ingest.registry")

_ZONES = "SELECT id, kind, geometry FROM zones ORDER BY id"
# Zones that authorise a stop on every route: customs offices, border posts, weighbridges,
# inspection areas (a stop zone only on the routes that list it).
STOP_EVERYWHERE = frozenset({"office", "border_post", "weighbridge", "inspection"})
# risk_profiles' medium unscheduled-stop minimum (schema/022): the level the rules' setting is.
MEDIUM_STOP_MIN_S = 900.0
DEFAULT_RULES = Rules()
_ROUTES = """
SELECT r.id, r.geometry, r.corridor_m, coalesce(array_agg(rz.zone_id) FILTER (WHERE rz.zone_id IS NOT NULL), '{}')
FROM routes r LEFT JOIN route_stop_zones rz ON rz.route_id = r.id
GROUP BY r.id ORDER BY r.id
"""
_IN_TRANSIT = """
SELECT s.id, s.reference, s.tracker_id, s.route_id, z.id, (extract(epoch FROM s.departed_at) * 1000)::int8,
       p.corridor_factor, p.stop_min_s, p.border_dwell_factor, zd.id, s.office_of_departure, s.office_of_destination
FROM shipments s LEFT JOIN zones z ON z.office_code = s.office_of_destination
LEFT JOIN zones zd ON zd.office_code = s.office_of_departure
JOIN risk_profiles p ON p.level = s.risk_level
WHERE s.status = 'in_transit'
ORDER BY s.tracker_id, s.departed_at, s.id
"""
# Itineraries of in-transit shipments: each office's zone, role and border-dwell limit (s).
_ITINERARIES = """
SELECT o.shipment_id, z.id, o.role, z.kind, z.dwell_limit_s, o.office_code
FROM shipment_offices o JOIN shipments s ON s.id = o.shipment_id LEFT JOIN zones z ON z.office_code = o.office_code
WHERE s.status = 'in_transit'
ORDER BY o.shipment_id, o.position
"""
_SEALS = """
SELECT ss.seal_id, s.id FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
WHERE s.status = 'in_transit'
"""
_BEHIND = """
SELECT g.device_id FROM geofence_state g JOIN latest_positions lp ON lp.device_id = g.device_id
WHERE g.device_id = ANY(%s) AND lp.ts > g.last_fix_at
"""
_VERSION = "SELECT geometry, shipments FROM geofence_version"
_STATES = "SELECT device_id, shipment_id, state FROM geofence_state WHERE device_id = ANY(%s)"


@dataclass(frozen=True)
class Shipment:
    id: int
    reference: str
    tracker_id: str
    binding: Binding | None  # None when its route could not be built
    # The other in-transit shipments on the same truck (same tracker, vehicle and route):
    # the engine evaluates the tracker once, under this shipment, and alerts all of them.
    siblings: tuple[int, ...] = ()

    @property
    def ids(self) -> tuple[int, ...]:
        """This shipment's id and its siblings' (every shipment on the truck)."""
        return (self.id, *self.siblings)


@dataclass
class Registry:
    network: Network
    shipments: dict[int, Shipment] = field(default_factory=dict)
    trackers: dict[str, Shipment] = field(default_factory=dict)
    seals: dict[str, Shipment] = field(default_factory=dict)  # e-seal device id -> shipment

    @cached_property
    def live_trackers(self) -> frozenset[str]:
        """Trackers the engine evaluates: in transit on a route it could build."""
        return frozenset(d for d, s in self.trackers.items() if s.binding is not None)


def load_network(cur: psycopg.Cursor[Any], countries: CountryIndex | None = None) -> Network:
    """All routes and zones, with the countries' index. A route or zone that cannot be built
    is logged and left out."""
    zones = [_zone(key, kind, geometry) for key, kind, geometry in cur.execute(_ZONES).fetchall()]
    good_zones = [z for z in zones if z is not None]
    zone_keys = {z.key for z in good_zones}
    routes = []
    for key, geometry, corridor_m, stop_zones in cur.execute(_ROUTES).fetchall():
        coords = geometry.get("coordinates") or []
        try:
            lon = [float(c[0]) for c in coords]
            lat = [float(c[1]) for c in coords]
            route = RouteInput(key, lon, lat, float(corridor_m), tuple(z for z in stop_zones if z in zone_keys))
            check_route(route)
        except (GeometryError, TypeError, IndexError, ValueError) as exc:
            log.error("route left out of the geofence", route_id=key, error=str(exc))
            continue
        routes.append(route)
    return Network.build(routes, good_zones, countries if countries is not None else ())


def _zone(key: int, kind: str, geometry: dict[str, Any]) -> ZoneInput | None:
    try:
        rings = [([float(c[0]) for c in ring], [float(c[1]) for c in ring]) for ring in geometry["coordinates"]]
        zone = ZoneInput(key, rings, office=kind in STOP_EVERYWHERE)
        check_zone(zone)
    except (GeometryError, TypeError, IndexError, KeyError, ValueError) as exc:
        log.error("zone left out of the geofence", zone_id=key, error=str(exc))
        return None
    return zone


def load_registry(cur: psycopg.Cursor[Any], network: Network, rules: Rules = DEFAULT_RULES) -> Registry:
    """In-transit shipments bound to ``network``. Shipments sharing a tracker (one truck)
    are bound once: under the earliest departed, with the strictest thresholds among them
    (the highest risk's) and every one of them in ``siblings``."""
    registry = Registry(network)
    itineraries = _itineraries(cur, network, rules)
    rows = cur.execute(_IN_TRANSIT).fetchall()
    for tracker, truck in groupby(rows, key=lambda row: row[2]):
        shipments = list(truck)
        sid, _reference, _tracker, route_id, dest_zone, departed_ms, *_risk = shipments[0]
        corridor_factor = min(float(r[6]) for r in shipments)
        # The profiles are for the default rules: CTT_STOP_MIN_DURATION_S scales every level.
        stop_min_s = min(float(r[7]) for r in shipments) * rules.stop_min_duration_s / MEDIUM_STOP_MIN_S
        dwell_factor = min(float(r[8]) for r in shipments)
        route = network.route_index.get(route_id)
        # No itinerary rows (written before them): its two offices.
        two = tuple(network.zone_index.get(z, -1) if z is not None else -1 for z in (shipments[0][9], dest_zone))
        offices, limits, transit, codes = itineraries.get(
            sid, (two, (0.0, 0.0), (False, False), (shipments[0][10], shipments[0][11])))
        binding = None if route is None else Binding(
            shipment_id=sid, route=route, destination_zone=network.zone_index.get(dest_zone, -1),
            departed_ms=departed_ms, offices=offices,
            dwell_ms=tuple(round(limit * dwell_factor * 1000) for limit in limits), transit=transit,
            corridor_factor=corridor_factor, stop_min_ms=round(stop_min_s * 1000), office_codes=codes,
        )
        on_truck = [r[0] for r in shipments]
        for row in shipments:  # each under its own id (its seals are its own), one binding
            registry.shipments[row[0]] = Shipment(row[0], row[1], tracker, binding,
                                                  tuple(i for i in on_truck if i != row[0]))
        registry.trackers[tracker] = registry.shipments[sid]
    for seal_id, sid in cur.execute(_SEALS).fetchall():
        registry.seals[seal_id] = registry.shipments[sid]
    return registry


Itinerary = tuple[tuple[int, ...], tuple[float, ...], tuple[bool, ...], tuple[str, ...]]


def _itineraries(cur: psycopg.Cursor[Any], network: Network, rules: Rules) -> dict[int, Itinerary]:
    """Per in-transit shipment: its offices' zone indices (-1: no zone), their border-dwell
    limits in seconds for a medium risk (0: not a border post), whether each is an office of
    transit, and their office codes."""
    out: dict[int, Itinerary] = {}
    for sid, offices in groupby(cur.execute(_ITINERARIES).fetchall(), key=lambda row: row[0]):
        rows = list(offices)
        out[sid] = (
            tuple(network.zone_index.get(zone, -1) if zone is not None else -1 for _, zone, *_ in rows),
            tuple((float(limit) if limit is not None else rules.border_dwell_s) if kind == "border_post" else 0.0
                  for _, _, _, kind, limit, _ in rows),
            tuple(role == "transit" for _, _, role, *_ in rows),
            tuple(code for *_, code in rows),
        )
    return out


def load_states(cur: psycopg.Cursor[Any], registry: Registry,
                among: Collection[str] | None = None) -> dict[str, DeviceState]:
    """Saved states of in-transit trackers (those ``among`` these devices), in one query;
    a state of an earlier shipment is dropped."""
    wanted = list(registry.trackers) if among is None else [d for d in among if d in registry.trackers]
    if not wanted:
        return {}
    states: dict[str, DeviceState] = {}
    for device_id, shipment_id, data in cur.execute(_STATES, (wanted,)).fetchall():
        if registry.trackers[device_id].id != shipment_id:
            continue
        try:
            states[device_id] = loads(bytes(data))
        except msgspec.DecodeError as exc:  # replayed from the database instead
            log.error("saved geofence state unreadable", device_id=device_id, error=str(exc))
    return states


def behind(cur: psycopg.Cursor[Any], registry: Registry) -> set[str]:
    """In-transit trackers with a fix newer than their saved state: not evaluated yet."""
    return {device_id for (device_id,) in cur.execute(_BEHIND, (list(registry.trackers),)).fetchall()}


class RegistryCache:
    """The registry, reloaded when the counters in ``geofence_version`` move
    (routes or zones: the network too; shipments only: the bindings)."""

    def __init__(self, rules: Rules = DEFAULT_RULES, countries: CountryCache | None = None) -> None:
        self._rules = rules
        self._countries = countries if countries is not None else CountryCache()
        self._registry: Registry | None = None
        self._version: tuple[int, int] = (-1, -1)

    def refresh(self, cur: psycopg.Cursor[Any]) -> tuple[Registry, dict[str, DeviceState] | None]:
        """The current registry, and the saved states when it was just reloaded (else None)."""
        row = cur.execute(_VERSION).fetchone()
        assert row is not None
        geometry, shipments = row
        if self._registry is not None and (geometry, shipments) == self._version:
            return self._registry, None
        same_geometry = self._registry is not None and self._version[0] == geometry
        network = (self._registry.network if self._registry and same_geometry
                   else load_network(cur, self._countries.refresh(cur)))
        registry = load_registry(cur, network, self._rules)
        states = load_states(cur, registry)
        self._registry = registry
        self._version = (geometry, shipments)
        metrics.GEOFENCE_SHIPMENTS.set(len(registry.shipments))
        log.info("geofence loaded", routes=len(network.route_keys), zones=len(network.zone_keys),
                 in_transit=len(registry.shipments))
        return registry, states
