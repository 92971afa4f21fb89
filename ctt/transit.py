"""Register a simulator scenario: its zones and routes, then its shipments through
the API's own service (``tracking_api.services.shipments``: validated with the
``POST /shipments`` schema and audited), each departed at its scenario time,
with its itinerary, seal numbers, vehicle and goods, then its risk override and
release when the scenario gives them.
Used by the demo, tests and benchmarks; integrators use the API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from firmware_sim.scenarios import Scenario, ShipmentSpec
from protocol.alerts import RiskLevel
from tracking_api.auth import Principal
from tracking_api.schemas.shipments import ShipmentIn
from tracking_api.services import oversight, risk
from tracking_api.services import shipments as service

T = TypeVar("T")
# Who the audit log names for what the simulator registers (the command line acts with admin rights).
SIMULATOR = Principal("ctt-sim", "admin")

_ZONE = """
INSERT INTO zones (name, kind, office_code, country, dwell_limit_s, geometry) VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (office_code) DO UPDATE
SET kind = excluded.kind, geometry = excluded.geometry, country = excluded.country,
    dwell_limit_s = excluded.dwell_limit_s
RETURNING id
"""
_ROUTE = "INSERT INTO routes (name, geometry, corridor_m) VALUES (%s, %s, %s) RETURNING id"
_STOP_ZONE = "INSERT INTO route_stop_zones (route_id, zone_id) VALUES (%s, %s)"


def run_service(connect: dict[str, Any], work: Callable[[AsyncConnection[DictRow]], Awaitable[T]]) -> T:
    """``work`` on an async connection of its own (``connect``: psycopg's keyword arguments),
    from synchronous code: the services are async. In a thread of its own, since the
    caller may already run an event loop (a browser test's)."""

    async def main() -> T:
        async with await AsyncConnection.connect(**connect, row_factory=dict_row) as conn:
            return await work(conn)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def register(conn: psycopg.Connection[Any], scenario: Scenario, actor: Principal = SIMULATOR) -> dict[str, int]:
    """Insert the scenario's zones and routes (committed), then register and depart its
    shipments as ``actor`` (with their risk override and release when given), then its
    planned inspections; return shipment ids by reference.

    Office zones are shared by office code: registering a second scenario on
    the same offices reuses them. A shipment the API would refuse raises what the
    API answers: ``pydantic.ValidationError`` or ``RequestValidationError`` naming the
    field, ``ServiceError`` (a bound tracker, a reference taken)."""
    routes = _geography(conn, scenario)
    conn.commit()  # the shipments are registered on another connection: it must see the routes
    bodies = [(s, _body(s, routes[s.route])) for s in scenario.shipments]
    inspections = [(p.reference, p.office_code, p.at_ms) for p in scenario.inspections]

    async def work(aconn: AsyncConnection[DictRow]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for spec, body in bodies:
            shipment = await service.register(aconn, actor, body)
            await service.move(aconn, actor, shipment.id, "depart", _utc(spec.departed_at_ms))
            if spec.risk_override is not None:
                level, reason = spec.risk_override
                await risk.override(aconn, actor, shipment.id, cast(RiskLevel, level), reason)
            if spec.released_at_ms is not None:
                await service.release(aconn, actor, shipment.id, _utc(spec.released_at_ms))
            ids[spec.reference] = shipment.id
        for reference, office, at_ms in inspections:
            await oversight.authorise_inspection(aconn, actor, ids[reference], office, at=_utc(at_ms))
        return ids

    return run_service(connection_args(conn), work)


def release(conn: psycopg.Connection[Any], shipment_id: int, at_ms: int | None = None,
            actor: Principal = SIMULATOR) -> None:
    """Release shipment ``shipment_id``'s goods at ``at_ms`` (default now), as POST
    /shipments/{id}/release does: for a scenario whose release comes during the run."""
    at = _utc(at_ms) if at_ms is not None else None
    run_service(connection_args(conn), lambda aconn: service.release(aconn, actor, shipment_id, at))


def connection_args(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What opens another connection to the same database as ``conn``, password included."""
    return conn.info.get_parameters() | ({"password": conn.info.password} if conn.info.password else {})


def _geography(conn: psycopg.Connection[Any], scenario: Scenario) -> dict[str, int]:
    with conn.transaction():
        zones: dict[str, int] = {}
        for z in scenario.zones:
            geometry = Jsonb({"type": "Polygon", "coordinates": [[list(p) for p in z.ring]]})
            zones[z.name] = _id(conn, _ZONE, (z.name, z.kind, z.office_code, z.country, z.dwell_limit_s, geometry))
        routes: dict[str, int] = {}
        for r in scenario.routes:
            geometry = Jsonb({"type": "LineString", "coordinates": [list(p) for p in r.line]})
            routes[r.name] = _id(conn, _ROUTE, (r.name, geometry, r.corridor_m))
            for name in r.stop_zones:
                conn.execute(_STOP_ZONE, (routes[r.name], zones[name]))
    return routes


def _body(spec: ShipmentSpec, route_id: int) -> ShipmentIn:
    return ShipmentIn.model_validate({
        "reference": spec.reference, "route_id": route_id, "tracker_id": spec.tracker_id,
        "seal_ids": list(spec.seal_ids), "office_of_departure": spec.office_of_departure,
        "office_of_destination": spec.office_of_destination, "deadline": _utc(spec.deadline_ms),
        "offices_of_transit": list(spec.offices_of_transit), "seals": [{"number": n} for n in spec.seal_numbers],
        "vehicle": spec.vehicle, "operator": spec.operator,
        "goods": [{"hs_code": hs, "description": description} for hs, description in spec.goods]})


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _id(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, "INSERT ... RETURNING id returned nothing"
    return int(row[0])
