"""Shipments (transit declarations): registration (itinerary, seal numbers, goods,
consolidated trucks), one shipment's read and timeline, the status lifecycle
``registered -> in_transit -> arrived -> closed`` and the release at destination.

The API's routes and the command line (scenario registration, ``ctt shipments``)
and the declarations (``services/declarations.py``: amendment, cancellation) all come
here: the body is a ``ShipmentIn`` (the one schema), every change is
audited in the same transaction as the change itself. An officer sees and acts
only on shipments touching their region; any other is ``NotFoundError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection, errors, sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from tracking_api import audit
from tracking_api.access import visible
from tracking_api.auth import Principal
from tracking_api.progress import estimate, route_lengths
from tracking_api.regions import REGIONS, RegionIndex, regions_touching
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.risk import risk as risk_view
from tracking_api.schemas.shipments import (
    Action,
    EventKind,
    Progress,
    Shipment,
    ShipmentIn,
    Status,
    Timeline,
    TimelineItem,
)
from tracking_api.services import risk
from tracking_api.services.errors import ConflictError, NotFoundError

Conn = AsyncConnection[DictRow]
# A transition dated ahead of the database clock by more than this is refused (clock skew allowance).
FUTURE_SKEW = timedelta(minutes=5)

SELECT = sql.SQL("""
SELECT s.id, s.reference, s.status, s.route_id, s.tracker_id, s.containers, s.office_of_departure,
       s.office_of_destination, s.deadline, s.departed_at, s.arrived_at, s.closed_at, s.created_at, s.created_by,
       s.vehicle, s.operator, s.released_at, s.risk, s.risk_level,
       lp.country,
       ARRAY(SELECT ss.seal_id FROM shipment_seals ss WHERE ss.shipment_id = s.id ORDER BY ss.seal_id) AS seal_ids,
       ARRAY(SELECT sr.region_code FROM shipment_regions sr WHERE sr.shipment_id = s.id
             ORDER BY sr.region_code) AS regions,
       ARRAY(SELECT o.office_code FROM shipment_offices o WHERE o.shipment_id = s.id AND o.role = 'transit'
             ORDER BY o.position) AS offices_of_transit,
       coalesce((SELECT json_agg(json_build_object(
                    'position', o.position, 'role', o.role, 'office_code', o.office_code, 'zone_id', z.id,
                    'country', z.country, 'arrived_at', m.arrived_at, 'departed_at', m.departed_at)
                  ORDER BY o.position)
                 FROM shipment_offices o
                 -- A lookup per office by its unique code (a join hashed every zone for each shipment).
                 CROSS JOIN LATERAL (SELECT z.id, z.country FROM zones z WHERE z.office_code = o.office_code
                                     LIMIT 1) z
                 LEFT JOIN (SELECT e.office_code, min(e.at) FILTER (WHERE e.kind = 'arrived') AS arrived_at,
                                   max(e.at) FILTER (WHERE e.kind = 'departed') AS departed_at
                            FROM shipment_events e WHERE e.shipment_id = s.id AND e.kind IN ('arrived', 'departed')
                            GROUP BY e.office_code) m ON m.office_code = o.office_code
                 WHERE o.shipment_id = s.id), '[]') AS itinerary,
       coalesce((SELECT json_agg(json_build_object('number', n.seal_number, 'container', n.container)
                                 ORDER BY n.seal_number)
                 FROM shipment_seal_numbers n WHERE n.shipment_id = s.id), '[]') AS seals,
       coalesce((SELECT json_agg(json_build_object('line', gd.line, 'hs_code', gd.hs_code,
                                                   'description', gd.description,
                                                   'gross_mass_kg', gd.gross_mass_kg, 'value', gd.value,
                                                   'currency', gd.currency) ORDER BY gd.line)
                 FROM shipment_goods gd WHERE gd.shipment_id = s.id), '[]') AS goods,
       g.device_id IS NOT NULL AS tracked, g.chainage_m, g.distance_m, g.last_fix_at
FROM shipments s
LEFT JOIN geofence_state g ON g.device_id = s.tracker_id AND g.shipment_id = s.id
LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
WHERE {where}
ORDER BY s.id DESC
LIMIT {limit}
""")
_ROUTE = "SELECT geometry FROM routes WHERE id = %s"
_OFFICES = "SELECT office_code, kind, geometry FROM zones WHERE office_code = ANY(%s)"
# Devices of active shipments, whatever their part: a device is in one truck at a time. A
# tracker's row says what a consolidated shipment must share: vehicle, route, itinerary.
_BOUND = """
SELECT s.tracker_id AS device, 'tracker' AS part, s.reference, s.status, s.vehicle, s.route_id,
       ARRAY(SELECT o.office_code FROM shipment_offices o WHERE o.shipment_id = s.id ORDER BY o.position) AS offices
FROM shipments s
WHERE s.status IN ('registered', 'in_transit') AND s.tracker_id = ANY(%(devices)s)
UNION ALL
SELECT ss.seal_id, 'seal', s.reference, s.status, NULL, NULL, NULL
FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
WHERE ss.active AND ss.seal_id = ANY(%(devices)s)
ORDER BY 1, 3
"""
# Declared seal numbers stay taken until their shipment is closed (or cancelled), like the e-seal devices.
_NUMBERS_TAKEN = """
SELECT n.seal_number, s.reference, s.status FROM shipment_seal_numbers n JOIN shipments s ON s.id = n.shipment_id
WHERE s.status NOT IN ('closed', 'cancelled') AND n.seal_number = ANY(%s) ORDER BY 1, 2
"""
# The trigger shipment_truck_check (schema/022) takes this lock too: two registrations of one
# tracker are serialised before either checks the other's itinerary. Seal numbers get their own.
_LOCK_TRACKER = "SELECT pg_advisory_xact_lock(7710013, hashtext(%s))"
_LOCK_TRACKERS = "SELECT pg_advisory_xact_lock(7710013, hashtext(t)) FROM unnest(%s::text[]) t ORDER BY t"
_ROUTES = "SELECT id, geometry FROM routes WHERE id = ANY(%s)"
_REFERENCES = "SELECT id, reference FROM shipments WHERE reference = ANY(%s)"
_LOCK_SEAL_NUMBER = "SELECT pg_advisory_xact_lock(7710025, hashtext(n)) FROM unnest(%s::text[]) n ORDER BY n"
_INSERT = """
INSERT INTO shipments (reference, route_id, tracker_id, containers, office_of_departure, office_of_destination,
                       deadline, created_by, vehicle, operator)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""
_INSERT_OFFICES = """
INSERT INTO shipment_offices (shipment_id, position, role, office_code)
SELECT %s, p - 1, r, c FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(c, r, p)
"""
_INSERT_SEAL_NUMBERS = """
INSERT INTO shipment_seal_numbers (shipment_id, seal_number, container)
SELECT %s, n, c FROM unnest(%s::text[], %s::text[]) AS t(n, c)
"""
_INSERT_GOODS = """
INSERT INTO shipment_goods (shipment_id, line, hs_code, description, gross_mass_kg, value, currency)
SELECT %s, p, h, d, m, v, c
FROM unnest(%s::text[], %s::text[], %s::float8[], %s::numeric[], %s::text[]) WITH ORDINALITY AS t(h, d, m, v, c, p)
"""
_TIMELINE = """
SELECT e.kind, e.office_code, coalesce((e.detail->>'position')::int, o.position) AS position, e.country, e.at,
       e.lon, e.lat, e.late, e.detail
FROM shipment_events e
LEFT JOIN shipment_offices o ON o.shipment_id = e.shipment_id AND o.office_code = e.office_code
WHERE e.shipment_id = %s
ORDER BY e.at, e.id
"""
_EVENT = """
INSERT INTO shipment_events (shipment_id, kind, office_code, at, detail, country)
SELECT %s, %s, %s, %s, %s, (SELECT country FROM zones WHERE office_code = %s)
"""
_AMEND = """
UPDATE shipments SET route_id = %s, tracker_id = %s, containers = %s, office_of_departure = %s,
                     office_of_destination = %s, deadline = %s, vehicle = %s, operator = %s
WHERE id = %s
"""
RELEASABLE: tuple[Status, ...] = ("in_transit", "arrived")
AMENDABLE: tuple[Status, ...] = ("registered", "in_transit")
# What the engine has started on at departure: its state is keyed by them.
FIXED_AFTER_DEPARTURE = frozenset({"route_id", "tracker_id", "seal_ids", "office_of_departure"})
_CONSTRAINT_FIELDS = {"shipments_reference_key": "reference", "shipments_active_tracker": "tracker_id",
                      "shipment_seals_active": "seal_ids"}
# What registering one body of a batch may raise instead of registering it.
Refused = RequestValidationError | ConflictError
# Kinds of zone an itinerary office may be (those with an office code).
OFFICE_KINDS = ("office", "border_post")


@dataclass(frozen=True)
class Step:
    source: Status
    target: Status
    column: str  # the timestamp this step sets
    previous: str | None  # the timestamp it may not precede
    audit_action: str


STEPS: dict[Action, Step] = {
    "depart": Step("registered", "in_transit", "departed_at", None, "shipment.departed"),
    "arrive": Step("in_transit", "arrived", "arrived_at", "departed_at", "shipment.arrived"),
    "close": Step("arrived", "closed", "closed_at", "arrived_at", "shipment.closed"),
}


# Registration

async def register(conn: Conn, caller: Principal, body: ShipmentIn) -> Shipment:
    """Registers a transit declaration in status ``registered``, its itinerary, seal numbers
    and goods; ``ConflictError`` when the reference is taken, a seal or seal number is on
    another active shipment, or the tracker is on one that is not the same truck (vehicle,
    route, itinerary); 422 (``RequestValidationError``) naming a route or office that does
    not exist or a declaration that contradicts itself."""
    async with conn.transaction():
        return await get(conn, caller, await registered(conn, caller, body))


async def registered(conn: Conn, caller: Principal, body: ShipmentIn) -> int:
    """``register`` without reading the shipment back: its id (a batch of one)."""
    try:
        result = (await register_many(conn, caller, [body]))[0]
    except errors.UniqueViolation as exc:  # registered concurrently, after the checks
        raise _concurrent(exc) from exc
    if isinstance(result, Exception):
        raise result
    return result


async def register_many(conn: Conn, caller: Principal, bodies: Sequence[ShipmentIn]) -> list[int | Refused]:
    """``registered`` for each of ``bodies``, in order, with the same checks and audit, set-based
    (the bulk import): one query per check for all of them, one batch of statements per table.
    For each body its shipment's id, or what ``register`` would raise for it (nothing of it
    written). An earlier body binds its devices, seal numbers and reference for the later ones,
    as if they were registered one after the other. A concurrent registration that wins a race
    after the checks (a unique violation) fails the whole call: the caller retries one by one."""
    results: list[int | Refused | None] = [None] * len(bodies)
    for i, body in enumerate(bodies):
        problems = declaration_issues(body)
        if problems:
            results[i] = invalid(*problems)
    live = [bodies[i] for i, r in enumerate(results) if r is None]
    async with conn.transaction():
        await conn.execute(_LOCK_TRACKERS, (sorted({b.tracker_id for b in live}),))
        await conn.execute(_LOCK_SEAL_NUMBER, (sorted({s.number for b in live for s in b.seals}),))
        known = await _Known.load(conn, live)
        accepted: list[tuple[int, ShipmentIn, list[str]]] = []
        for i, body in enumerate(bodies):
            if results[i] is None:
                try:
                    accepted.append((i, body, known.admit(body)))
                except (RequestValidationError, ConflictError) as exc:
                    results[i] = exc
        ids = await _insert_many(conn, caller, accepted)
        for (i, _body, _regions), shipment_id in zip(accepted, ids, strict=True):
            results[i] = shipment_id
        await risk.assess_new(conn, ids)
    return [r for r in results if r is not None]


@dataclass
class _Known:
    """What the checks of a batch read once: routes, office zones, devices and seal numbers
    bound, references taken, regions; updated as each body of the batch is admitted."""

    routes: dict[int, dict[str, Any]]
    zones: dict[str, DictRow]
    bound: list[dict[str, Any]]
    numbers: list[dict[str, Any]]
    references: dict[str, int]
    regions: RegionIndex

    @classmethod
    async def load(cls, conn: Conn, bodies: Sequence[ShipmentIn]) -> _Known:
        async def rows(query: str, params: Any) -> list[DictRow]:
            return await (await conn.execute(query, params)).fetchall()

        routes = {r["id"]: r["geometry"] for r in await rows(_ROUTES, (sorted({b.route_id for b in bodies}),))}
        codes = sorted({c for b in bodies for c in itinerary(b)})
        zones = {r["office_code"]: r for r in await rows(_OFFICES, (codes,))}
        devices = sorted({d for b in bodies for d in (b.tracker_id, *b.seal_ids)})
        bound = [dict(r) for r in await rows(_BOUND, {"devices": devices})]
        numbers = [dict(r) for r in await rows(_NUMBERS_TAKEN, (sorted({s.number for b in bodies for s in b.seals}),))]
        taken = {r["reference"]: r["id"] for r in await rows(_REFERENCES, ([b.reference for b in bodies],))}
        regions = RegionIndex([(r["code"], r["geometry"]) for r in await rows(REGIONS, ())])
        return cls(routes, zones, bound, numbers, taken, regions)

    def admit(self, body: ShipmentIn) -> list[str]:
        """``registered``'s checks, in its order, on what was read; the regions it touches. The
        body then binds its devices, numbers and reference for the rest of the batch."""
        parts = _parts_of(body, self.routes.get(body.route_id), self.zones)
        _devices_refused(body, self.bound)
        _numbers_refused((s.number for s in body.seals), body.reference, self.numbers)
        if body.reference in self.references:
            raise ConflictError(f"reference {body.reference!r} is already registered "
                                f"(shipment {self.references[body.reference]})")
        held = {"reference": body.reference, "status": "registered"}
        self.bound.append(held | {"device": body.tracker_id, "part": "tracker", "vehicle": body.vehicle,
                                  "route_id": body.route_id, "offices": itinerary(body)})
        self.bound += [held | {"device": d, "part": "seal", "vehicle": None, "route_id": None, "offices": None}
                       for d in body.seal_ids]
        self.numbers += [held | {"seal_number": s.number} for s in body.seals]
        self.references[body.reference] = -1  # this batch's: the id is not known yet
        return self.regions.touching(parts)


async def _insert_many(conn: Conn, caller: Principal, accepted: list[tuple[int, ShipmentIn, list[str]]]) -> list[int]:
    """``_insert``, the regions and the audit of each admitted body, batched; the new ids in order."""
    if not accepted:
        return []
    async with conn.cursor() as cur:
        await cur.executemany(_INSERT, [(
            b.reference, b.route_id, b.tracker_id, b.containers, b.office_of_departure, b.office_of_destination,
            b.deadline, caller.subject, b.vehicle, b.operator) for _i, b, _r in accepted], returning=True)
        ids: list[int] = []
        while True:
            row = await cur.fetchone()
            assert row is not None
            ids.append(row["id"])
            if not cur.nextset():
                break
    async with conn.pipeline():
        for (_i, body, regions), shipment_id in zip(accepted, ids, strict=True):
            await _insert_parts(conn, shipment_id, body)
            await _set_regions(conn, shipment_id, regions)
            await audit.record(conn, caller, "shipment.registered", "shipment", shipment_id,
                               body.model_dump(mode="json") | {"regions": regions})
    return ids


async def _checked(conn: Conn, body: ShipmentIn) -> list[dict[str, Any]]:
    """Locks the tracker and the seal numbers, checks the route, offices, devices and seal
    numbers (free of any other shipment); the route and office geometries."""
    await conn.execute(_LOCK_TRACKER, (body.tracker_id,))
    numbers = [seal.number for seal in body.seals]
    await conn.execute(_LOCK_SEAL_NUMBER, (numbers,))
    parts = await _parts(conn, body)
    await _devices_free(conn, body)
    await _seal_numbers_free(conn, numbers, body.reference)
    return parts


async def _set_regions(conn: Conn, shipment_id: int, regions: list[str]) -> None:
    if regions:
        await conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) "
                           "SELECT %s, unnest(%s::text[])", (shipment_id, regions))


def _concurrent(exc: errors.UniqueViolation) -> ConflictError:
    field = _CONSTRAINT_FIELDS.get(exc.diag.constraint_name or "", "reference")
    # The detail names the value: "Key (tracker_id)=(trk-0042) already exists."
    return ConflictError(f"{field}: {exc.diag.message_detail or 'already in use'} "
                         "(bound by a shipment registered at the same time)")


# Amendment and cancellation (a declaration's, before or during the movement)

async def amend(conn: Conn, caller: Principal, shipment_id: int, body: ShipmentIn) -> list[str]:
    """Replaces the registered or in-transit shipment's declared data with ``body`` (same
    reference) under the registration's checks: itinerary, seal numbers, containers, goods,
    deadline, vehicle, operator; the tracker, e-seals, route and office of departure only
    before departure. The triggers on the rewritten tables bump ``geofence_version``: ingest
    reloads. Re-runs the risk assessment; audited. The names of the fields it changed.
    ``ConflictError`` when arrived, closed or cancelled, or a device or seal number is taken."""
    problems = declaration_issues(body)
    if problems:
        raise invalid(*problems)
    try:
        async with conn.transaction():
            row = await locked(conn, caller, shipment_id)
            if row["status"] not in AMENDABLE:
                raise ConflictError(f"cannot amend shipment {shipment_id}: its status is {row['status']!r}, "
                                    f"amending needs {' or '.join(map(repr, AMENDABLE))}")
            before = (await get(conn, caller, shipment_id)).model_dump(mode="json")
            after = body.model_dump(mode="json")
            changed = sorted(k for k in after if k != "reference" and _declared(before, k) != _declared(after, k))
            frozen = [k for k in changed if k in FIXED_AFTER_DEPARTURE]
            if row["status"] != "registered" and frozen:
                raise ConflictError(f"cannot amend {', '.join(frozen)} of shipment {shipment_id}: it is "
                                    f"{row['status']}, these may change only before departure")
            parts = await _checked(conn, body)
            await _replace(conn, shipment_id, body)
            await conn.execute("DELETE FROM shipment_regions WHERE shipment_id = %s", (shipment_id,))
            regions = await regions_touching(conn, parts)
            await _set_regions(conn, shipment_id, regions)
            await audit.record(conn, caller, "shipment.amended", "shipment", shipment_id,
                               {"reference": body.reference, "changed": changed, "regions": regions})
            await risk.assess(conn, shipment_id)
            return changed
    except errors.UniqueViolation as exc:
        raise _concurrent(exc) from exc


def _declared(shipment: dict[str, Any], field: str) -> Any:
    """The value of ``ShipmentIn`` field ``field`` in a form that compares a ``Shipment``'s (the
    API's answer, JSON) with a ``ShipmentIn``'s: sets sorted, times parsed, goods without line."""
    value = shipment[field]
    if field == "seals":
        return sorted(value, key=lambda s: s["number"])
    if field == "seal_ids":
        return sorted(value)
    if field == "deadline":
        return datetime.fromisoformat(value)
    if field == "goods":
        return [{k: v for k, v in g.items() if k != "line"} for g in value]
    return value


async def _replace(conn: Conn, shipment_id: int, body: ShipmentIn) -> None:
    await conn.execute(_AMEND, (body.route_id, body.tracker_id, body.containers, body.office_of_departure,
                                body.office_of_destination, body.deadline, body.vehicle, body.operator,
                                shipment_id))
    for table in ("shipment_seals", "shipment_offices", "shipment_seal_numbers", "shipment_goods"):
        await conn.execute(sql.SQL("DELETE FROM {} WHERE shipment_id = %s").format(sql.Identifier(table)),
                           (shipment_id,))
    await _insert_parts(conn, shipment_id, body)


async def cancel(conn: Conn, caller: Principal, shipment_id: int, reason: str) -> Shipment:
    """``registered -> cancelled``: its tracker, e-seals and seal numbers are free again, the
    engine forgets it. ``ConflictError`` in any other status."""
    async with conn.transaction():
        row = await locked(conn, caller, shipment_id)
        if row["status"] != "registered":
            raise ConflictError(f"cannot cancel shipment {shipment_id}: its status is {row['status']!r}, "
                                "only a 'registered' shipment can be cancelled")
        await conn.execute("UPDATE shipments SET status = 'cancelled', cancelled_at = now(), cancelled_by = %s "
                           "WHERE id = %s", (caller.subject, shipment_id))
        await conn.execute("UPDATE shipment_seals SET active = false WHERE shipment_id = %s AND active",
                           (shipment_id,))
        await audit.record(conn, caller, "shipment.cancelled", "shipment", shipment_id,
                           {"reference": row["reference"], "from": "registered", "to": "cancelled",
                            "reason": reason})
        return await get(conn, caller, shipment_id)


def itinerary(body: ShipmentIn) -> list[str]:
    """Office codes in itinerary order: departure, the offices of transit, destination."""
    return [body.office_of_departure, *body.offices_of_transit, body.office_of_destination]


def declaration_issues(body: ShipmentIn) -> list[tuple[tuple[str | int, ...], str]]:
    """What contradicts itself in ``body`` (no database needed), as (loc, msg) naming the index."""
    issues: list[tuple[tuple[str | int, ...], str]] = []
    ends = {body.office_of_departure: "office_of_departure", body.office_of_destination: "office_of_destination"}
    first: dict[str, int] = {}
    for i, code in enumerate(body.offices_of_transit):
        if code in ends:
            issues.append((("body", "offices_of_transit", i), f"office of transit {code!r} is the {ends[code]}"))
        elif code in first:
            issues.append((("body", "offices_of_transit", i),
                           f"office of transit {code!r} is listed twice (also at {first[code]})"))
        first.setdefault(code, i)
    seen: set[str] = set()
    for i, seal in enumerate(body.seals):
        if seal.number in seen:
            issues.append((("body", "seals", i, "number"), f"seal number {seal.number} is listed twice"))
        seen.add(seal.number)
        if seal.container is not None and seal.container not in body.containers:
            issues.append((("body", "seals", i, "container"),
                           f"container {seal.container!r} of seal {seal.number} is not in containers"))
    return issues


async def _parts(conn: Conn, body: ShipmentIn) -> list[dict[str, Any]]:
    """The route line and every itinerary office's polygon (GeoJSON); 422 naming each reference
    that does not exist or is not an office or border post."""
    route = await (await conn.execute(_ROUTE, (body.route_id,))).fetchone()
    zones = {r["office_code"]: r for r in await (await conn.execute(_OFFICES, (itinerary(body),))).fetchall()}
    return _parts_of(body, route["geometry"] if route else None, zones)


def _parts_of(body: ShipmentIn, route: dict[str, Any] | None, zones: Mapping[str, DictRow]) -> list[dict[str, Any]]:
    """``_parts`` from the route's geometry (None: no such route) and the zones by office code."""
    codes = itinerary(body)
    issues: list[tuple[tuple[str | int, ...], str]] = []
    if route is None:
        issues.append((("body", "route_id"), f"route {body.route_id} does not exist"))
    for field in ("office_of_departure", "office_of_destination"):
        if getattr(body, field) not in zones:
            issues.append((("body", field), f"{field} {getattr(body, field)!r} is not the code of an office zone"))
    for i, code in enumerate(body.offices_of_transit):
        if code not in zones:
            issues.append((("body", "offices_of_transit", i),
                           f"office of transit {code!r} is not the code of an office or border_post zone"))
    if issues:
        raise invalid(*issues)
    assert route is not None
    return [route, *(zones[c]["geometry"] for c in codes)]


async def _devices_free(conn: Conn, body: ShipmentIn) -> None:
    """``ConflictError`` naming each device bound to another active shipment, unless it is this
    body's tracker on a shipment of the same truck (vehicle, route and itinerary)."""
    devices = [body.tracker_id, *body.seal_ids]
    _devices_refused(body, await (await conn.execute(_BOUND, {"devices": devices})).fetchall())


def _devices_refused(body: ShipmentIn, rows: Iterable[Mapping[str, Any]]) -> None:
    """``_devices_free`` on the rows of ``_BOUND`` (those of other devices are ignored)."""
    devices = {body.tracker_id, *body.seal_ids}
    # Its own devices (an amendment) are no conflict: the reference is unique.
    refusals = [_refusal(body, r) for r in rows if r["device"] in devices and r["reference"] != body.reference]
    if any(refusals):
        raise ConflictError("; ".join(r for r in refusals if r))


def _refusal(body: ShipmentIn, row: Mapping[str, Any]) -> str | None:
    """Why the device of ``row`` (bound to another active shipment) may not serve ``body``; None if it may."""
    part = "tracker" if row["device"] == body.tracker_id else "seal"
    bound = f"{part} {row['device']!r} is bound to active shipment {row['reference']} ({row['status']})"
    if part == "seal" or row["part"] == "seal":
        return bound
    same_truck = body.vehicle is not None and row["vehicle"] == body.vehicle and row["route_id"] == body.route_id
    if row["vehicle"] is not None and not same_truck:
        return (f"{bound}: a tracker serves several shipments only on one vehicle and route "
                f"(that one: vehicle {row['vehicle']}, route {row['route_id']})")
    if not same_truck:
        return bound
    if row["offices"] != itinerary(body):
        return (f"{bound}: a consolidated truck has one itinerary ({' > '.join(row['offices'])}), "
                f"this declaration's is {' > '.join(itinerary(body))}")
    return None


async def _seal_numbers_free(conn: Conn, numbers: list[str], reference: str) -> None:
    _numbers_refused(numbers, reference, await (await conn.execute(_NUMBERS_TAKEN, (numbers,))).fetchall())


def _numbers_refused(numbers: Iterable[str], reference: str, taken: Iterable[Mapping[str, Any]]) -> None:
    wanted = set(numbers)
    rows = [r for r in taken if r["seal_number"] in wanted and r["reference"] != reference]
    if rows:
        raise ConflictError("; ".join(f"seal number {r['seal_number']} is declared on active shipment "
                                      f"{r['reference']} ({r['status']})" for r in rows))


async def _insert(conn: Conn, caller: Principal, body: ShipmentIn) -> int:
    """The shipment's rows (shipments, seals, itinerary, seal numbers, goods); its id."""
    row = await (await conn.execute(_INSERT, (
        body.reference, body.route_id, body.tracker_id, body.containers, body.office_of_departure,
        body.office_of_destination, body.deadline, caller.subject, body.vehicle, body.operator))).fetchone()
    assert row is not None
    shipment_id: int = row["id"]
    await _insert_parts(conn, shipment_id, body)
    return shipment_id


async def _insert_parts(conn: Conn, shipment_id: int, body: ShipmentIn) -> None:
    """Its e-seals, itinerary, seal numbers and goods."""
    if body.seal_ids:
        await conn.execute("INSERT INTO shipment_seals (shipment_id, seal_id) SELECT %s, unnest(%s::text[])",
                           (shipment_id, body.seal_ids))
    codes = itinerary(body)
    roles = ["departure", *(["transit"] * len(body.offices_of_transit)), "destination"]
    await conn.execute(_INSERT_OFFICES, (shipment_id, codes, roles))
    if body.seals:
        await conn.execute(_INSERT_SEAL_NUMBERS, (shipment_id, [s.number for s in body.seals],
                                                  [s.container for s in body.seals]))
    if body.goods:
        g = body.goods
        await conn.execute(_INSERT_GOODS, (shipment_id, [x.hs_code for x in g], [x.description for x in g],
                                           [x.gross_mass_kg for x in g], [x.value for x in g],
                                           [x.currency for x in g]))


# Reads

async def get(conn: Conn, caller: Principal, shipment_id: int) -> Shipment:
    where = sql.SQL("s.id = %s AND {}").format(visible(caller))
    row = await (await conn.execute(SELECT.format(where=where, limit=sql.Literal(1)), (shipment_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} does not exist")
    return shipment(row, await route_lengths(conn, {row["route_id"]}))


def shipment(row: DictRow, lengths: dict[int, float]) -> Shipment:
    """A row of ``SELECT`` as the API answers it, with its progress along the route."""
    length = lengths.get(row["route_id"])
    progress = Progress(chainage_m=row["chainage_m"], distance_m=row["distance_m"], last_fix_at=row["last_fix_at"],
                        route_length_m=length, **estimate(length, row["chainage_m"], row["departed_at"],
                                                          row["last_fix_at"])) if row["tracked"] else None
    return Shipment.model_validate({k: v for k, v in row.items() if k in Shipment.model_fields}
                                   | {"progress": progress, "risk": risk_view(row["risk"], row["risk_level"])})


async def timeline(conn: Conn, caller: Principal, shipment_id: int) -> Timeline:
    """The shipment's milestones in time order (404 as ``get`` for one the caller may not see)."""
    seen = await (await conn.execute(sql.SQL("SELECT 1 FROM shipments s WHERE s.id = %s AND {}").format(
        visible(caller)), (shipment_id,))).fetchone()
    if seen is None:
        raise NotFoundError(f"shipment {shipment_id} does not exist")
    rows = await (await conn.execute(_TIMELINE, (shipment_id,))).fetchall()
    return Timeline(items=[TimelineItem.model_validate(r) for r in rows])


# Lifecycle

async def move(conn: Conn, caller: Principal, shipment_id: int, action: Action, at: datetime | None = None,
               release: bool = False) -> Shipment:
    """One lifecycle step at ``at`` (default: the database's now): ``ConflictError`` from the
    wrong status, 422 on ``at`` in the future or before the previous step. ``release`` (arrive
    only) releases the goods at the same time."""
    step = STEPS[action]
    async with conn.transaction():
        row = await locked(conn, caller, shipment_id)
        if row["status"] != step.source:
            raise ConflictError(f"cannot {action} shipment {shipment_id}: its status is "
                           f"{row['status']!r}, {action} needs {step.source!r}")
        when = checked_time(row, at, step.previous)
        await conn.execute(sql.SQL("UPDATE shipments SET status = %s, {} = %s WHERE id = %s").format(
            sql.Identifier(step.column)), (step.target, when, shipment_id))
        if action == "close":
            await conn.execute("UPDATE shipment_seals SET active = false WHERE shipment_id = %s AND active",
                               (shipment_id,))
        await audit.record(conn, caller, step.audit_action, "shipment", shipment_id,
                           {"reference": row["reference"], "from": step.source, "to": step.target,
                            "at": when.isoformat()})
        if release:
            await _release(conn, caller, row, when, None)
        return await get(conn, caller, shipment_id)


async def release(conn: Conn, caller: Principal, shipment_id: int, at: datetime | None = None,
                  note: str | None = None) -> Shipment:
    """An officer releases the goods at destination (in transit or arrived) at ``at`` (default
    now): from then on a seal opening inside the destination zone is normal. ``ConflictError``
    when already released or in another status; 422 on ``at`` in the future or before departure."""
    async with conn.transaction():
        row = await locked(conn, caller, shipment_id)
        if row["status"] not in RELEASABLE:
            raise ConflictError(f"cannot release shipment {shipment_id}: its status is {row['status']!r}, "
                                f"release needs {' or '.join(map(repr, RELEASABLE))}")
        await _release(conn, caller, row, checked_time(row, at, "departed_at"), note)
        return await get(conn, caller, shipment_id)


async def _release(conn: Conn, caller: Principal, row: DictRow, when: datetime, note: str | None) -> None:
    if row["released_at"] is not None:
        raise ConflictError(f"shipment {row['id']} was already released at "
                            f"{row['released_at'].astimezone(UTC).isoformat()} by {row['released_by']}")
    await conn.execute("UPDATE shipments SET released_at = %s, released_by = %s WHERE id = %s",
                       (when, caller.subject, row["id"]))
    detail = {"by": caller.subject} | ({"note": note} if note else {})
    await record_event(conn, row["id"], "released", row["office_of_destination"], when, detail)
    await audit.record(conn, caller, "shipment.released", "shipment", row["id"],
                       {"reference": row["reference"], "at": when.isoformat(), "note": note})


async def record_event(conn: Conn, shipment_id: int, kind: EventKind, office_code: str, at: datetime,
                       detail: dict[str, Any]) -> None:
    """A timeline row for an officer's action at an office (its zone's country)."""
    await conn.execute(_EVENT, (shipment_id, kind, office_code, at, Jsonb(detail), office_code))


async def locked(conn: Conn, caller: Principal, shipment_id: int) -> DictRow:
    """The shipment's row, locked until the transaction ends (``NotFoundError`` if the caller
    may not see it): of two concurrent changes, the second waits and then sees the first's."""
    row = await (await conn.execute(sql.SQL(
        "SELECT s.id, s.reference, s.status, s.departed_at, s.arrived_at, s.released_at, s.released_by, "
        "s.office_of_destination, s.risk, s.risk_level, now() AS now FROM shipments s "
        "WHERE s.id = %s AND {} FOR UPDATE OF s").format(visible(caller)), (shipment_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} does not exist")
    return row


def checked_time(row: DictRow, at: datetime | None, previous_column: str | None) -> datetime:
    """``at`` (default the database's now, ``row["now"]``) in UTC; 422 when in the future or before
    ``row[previous_column]``."""
    # In UTC, so that the audit row and messages read the same whatever zone the client used.
    when = (at if at is not None else row["now"]).astimezone(UTC)
    if when > row["now"] + FUTURE_SKEW:
        raise invalid((("body", "at"), f"at {when.isoformat()} is in the future"))
    previous = row[previous_column] if previous_column else None
    if previous is not None and when < previous:
        raise invalid((("body", "at"), f"at {when.isoformat()} is before {previous_column} "
                                       f"{previous.astimezone(UTC).isoformat()}"))
    return when
