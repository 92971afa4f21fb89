"""Register zones, routes and in-transit shipments of a simulator scenario in
the database (tests, benchmarks and the demo; integrators use the API)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from firmware_sim.scenarios import Scenario
from tracking_api.regions import FOOTPRINTS, REGIONS, RegionIndex

_ZONE = """
INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, %s, %s, %s)
ON CONFLICT (office_code) DO UPDATE SET geometry = excluded.geometry RETURNING id
"""
_ROUTE = "INSERT INTO routes (name, geometry, corridor_m) VALUES (%s, %s, %s) RETURNING id"
_STOP_ZONE = "INSERT INTO route_stop_zones (route_id, zone_id) VALUES (%s, %s)"
_SHIPMENT = """
INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline,
                       status, departed_at)
VALUES (%s, %s, %s, %s, %s, to_timestamp(%s / 1000.0), 'in_transit', to_timestamp(%s / 1000.0)) RETURNING id
"""
_SEAL = "INSERT INTO shipment_seals (shipment_id, seal_id) VALUES (%s, %s)"


def register(conn: psycopg.Connection[Any], scenario: Scenario) -> dict[str, int]:
    """Insert the scenario's zones, routes and shipments (departed); return shipment ids by reference.

    Office zones are shared by office code: registering a second scenario on
    the same offices reuses them.
    """
    with conn.transaction():
        zones: dict[str, int] = {}
        for z in scenario.zones:
            geometry = Jsonb({"type": "Polygon", "coordinates": [[list(p) for p in z.ring]]})
            zones[z.name] = _id(conn, _ZONE, (z.name, z.kind, z.office_code, geometry))
        routes: dict[str, int] = {}
        for r in scenario.routes:
            geometry = Jsonb({"type": "LineString", "coordinates": [list(p) for p in r.line]})
            routes[r.name] = _id(conn, _ROUTE, (r.name, geometry, r.corridor_m))
            for name in r.stop_zones:
                conn.execute(_STOP_ZONE, (routes[r.name], zones[name]))
        shipments: dict[str, int] = {}
        for s in scenario.shipments:
            shipments[s.reference] = _id(conn, _SHIPMENT, (s.reference, routes[s.route], s.tracker_id,
                                                           s.office_of_departure, s.office_of_destination,
                                                           s.deadline_ms, s.departed_at_ms))
            for seal_id in s.seal_ids:
                conn.execute(_SEAL, (shipments[s.reference], seal_id))
        _link_regions(conn, list(shipments.values()))
    return shipments


def _link_regions(conn: psycopg.Connection[Any], shipment_ids: list[int]) -> None:
    """The regions each shipment touches, as the API computes them at registration (officers' visibility)."""
    regions = conn.execute(REGIONS).fetchall()
    if not regions:
        return
    index = RegionIndex(regions)
    for sid, route, departure, destination in conn.execute(FOOTPRINTS + "WHERE s.id = ANY(%s)",
                                                           (shipment_ids,)).fetchall():
        for code in index.touching((route, departure, destination)):
            conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) VALUES (%s, %s)", (sid, code))


def _id(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, "INSERT ... RETURNING id returned nothing"
    return int(row[0])
