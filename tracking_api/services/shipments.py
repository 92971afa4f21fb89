"""Shipments (transit declarations): registration, one shipment's read, and the
status lifecycle ``registered -> in_transit -> arrived -> closed``.

The API's routes and the command line (scenario registration, ``ctt shipments``)
both come here: the body is a ``ShipmentIn`` (the one schema), every change is
audited in the same transaction as the change itself. An officer sees and acts
only on shipments touching their region; any other is ``NotFoundError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import DictRow

from tracking_api import audit
from tracking_api.access import visible
from tracking_api.auth import Principal
from tracking_api.progress import estimate, route_lengths
from tracking_api.regions import regions_touching
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.shipments import Action, Progress, Shipment, ShipmentIn, Status
from tracking_api.services.errors import ConflictError, NotFoundError

Conn = AsyncConnection[DictRow]
# A transition dated ahead of the database clock by more than this is refused (clock skew allowance).
FUTURE_SKEW = timedelta(minutes=5)

SELECT = sql.SQL("""
SELECT s.id, s.reference, s.status, s.route_id, s.tracker_id, s.containers, s.office_of_departure,
       s.office_of_destination, s.deadline, s.departed_at, s.arrived_at, s.closed_at, s.created_at, s.created_by,
       ARRAY(SELECT ss.seal_id FROM shipment_seals ss WHERE ss.shipment_id = s.id ORDER BY ss.seal_id) AS seal_ids,
       ARRAY(SELECT sr.region_code FROM shipment_regions sr WHERE sr.shipment_id = s.id
             ORDER BY sr.region_code) AS regions,
       g.device_id IS NOT NULL AS tracked, g.chainage_m, g.distance_m, g.last_fix_at
FROM shipments s
LEFT JOIN geofence_state g ON g.device_id = s.tracker_id AND g.shipment_id = s.id
WHERE {where}
ORDER BY s.id DESC
LIMIT {limit}
""")
_PARTS = """
SELECT (SELECT geometry FROM routes WHERE id = %s) AS route,
       (SELECT geometry FROM zones WHERE office_code = %s) AS departure,
       (SELECT geometry FROM zones WHERE office_code = %s) AS destination
"""
# Devices of active shipments, whatever their part: a device is in one truck at a time.
_BOUND = """
SELECT s.tracker_id AS device, s.reference, s.status FROM shipments s
WHERE s.status IN ('registered', 'in_transit') AND s.tracker_id = ANY(%(devices)s)
UNION ALL
SELECT ss.seal_id, s.reference, s.status FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
WHERE ss.active AND ss.seal_id = ANY(%(devices)s)
ORDER BY 1
"""
_INSERT = """
INSERT INTO shipments (reference, route_id, tracker_id, containers, office_of_departure, office_of_destination,
                       deadline, created_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""
_CONSTRAINT_FIELDS = {"shipments_reference_key": "reference", "shipments_active_tracker": "tracker_id",
                      "shipment_seals_active": "seal_ids"}


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
    """Registers a transit declaration in status ``registered``; ``ConflictError`` when the
    reference is taken or the tracker or a seal is bound to another active shipment,
    422 (``RequestValidationError``) naming a route or office that does not exist."""
    try:
        async with conn.transaction():
            parts = await _parts(conn, body)
            await _devices_free(conn, [body.tracker_id, *body.seal_ids])
            taken = await (await conn.execute("SELECT id FROM shipments WHERE reference = %s",
                                              (body.reference,))).fetchone()
            if taken is not None:
                raise ConflictError(f"reference {body.reference!r} is already registered (shipment {taken['id']})")
            regions = await regions_touching(conn, parts)
            row = await (await conn.execute(_INSERT, (
                body.reference, body.route_id, body.tracker_id, body.containers, body.office_of_departure,
                body.office_of_destination, body.deadline, caller.subject))).fetchone()
            assert row is not None
            shipment_id = row["id"]
            if body.seal_ids:
                await conn.execute("INSERT INTO shipment_seals (shipment_id, seal_id) SELECT %s, unnest(%s::text[])",
                                   (shipment_id, body.seal_ids))
            if regions:
                await conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) "
                                   "SELECT %s, unnest(%s::text[])", (shipment_id, regions))
            await audit.record(conn, caller, "shipment.registered", "shipment", shipment_id,
                               body.model_dump(mode="json") | {"regions": regions})
            return await get(conn, caller, shipment_id)
    except errors.UniqueViolation as exc:  # registered concurrently, after the checks
        field = _CONSTRAINT_FIELDS.get(exc.diag.constraint_name or "", "reference")
        # The detail names the value: "Key (tracker_id)=(trk-0042) already exists."
        raise ConflictError(f"{field}: {exc.diag.message_detail or 'already in use'} "
                       "(bound by a shipment registered at the same time)") from exc


async def _parts(conn: Conn, body: ShipmentIn) -> list[dict[str, Any]]:
    """The route line and office polygons (GeoJSON); 422 naming each reference that does not exist."""
    row = await (await conn.execute(_PARTS, (body.route_id, body.office_of_departure,
                                             body.office_of_destination))).fetchone()
    assert row is not None
    issues: list[tuple[tuple[str | int, ...], str]] = []
    if row["route"] is None:
        issues.append((("body", "route_id"), f"route {body.route_id} does not exist"))
    for field, part in (("office_of_departure", "departure"), ("office_of_destination", "destination")):
        if row[part] is None:
            issues.append((("body", field), f"{field} {getattr(body, field)!r} is not the code of an office zone"))
    if issues:
        raise invalid(*issues)
    return [row["route"], row["departure"], row["destination"]]


async def _devices_free(conn: Conn, devices: list[str]) -> None:
    rows = await (await conn.execute(_BOUND, {"devices": devices})).fetchall()
    if rows:
        raise ConflictError("; ".join(
            f"{'tracker' if r['device'] == devices[0] else 'seal'} {r['device']!r} is bound to active shipment "
            f"{r['reference']} ({r['status']})" for r in rows))


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
                                   | {"progress": progress})


# Lifecycle

async def move(conn: Conn, caller: Principal, shipment_id: int, action: Action, at: datetime | None = None) -> Shipment:
    """One lifecycle step at ``at`` (default: the database's now): ``ConflictError`` from the
    wrong status, 422 on ``at`` in the future or before the previous step."""
    step = STEPS[action]
    async with conn.transaction():
        # FOR UPDATE: of two concurrent transitions, the second waits and then sees the new status.
        row = await (await conn.execute(sql.SQL(
            "SELECT s.id, s.reference, s.status, s.departed_at, s.arrived_at, now() AS now FROM shipments s "
            "WHERE s.id = %s AND {} FOR UPDATE OF s").format(visible(caller)), (shipment_id,))).fetchone()
        if row is None:
            raise NotFoundError(f"shipment {shipment_id} does not exist")
        if row["status"] != step.source:
            raise ConflictError(f"cannot {action} shipment {shipment_id}: its status is "
                           f"{row['status']!r}, {action} needs {step.source!r}")
        # In UTC, so that the audit row and messages read the same whatever zone the client used.
        when = (at if at is not None else row["now"]).astimezone(UTC)
        if when > row["now"] + FUTURE_SKEW:
            raise invalid((("body", "at"), f"at {when.isoformat()} is in the future"))
        previous = row[step.previous].astimezone(UTC) if step.previous else None
        if previous is not None and when < previous:
            raise invalid((("body", "at"), f"at {when.isoformat()} is before {step.previous} {previous.isoformat()}"))
        await conn.execute(sql.SQL("UPDATE shipments SET status = %s, {} = %s WHERE id = %s").format(
            sql.Identifier(step.column)), (step.target, when, shipment_id))
        if action == "close":
            await conn.execute("UPDATE shipment_seals SET active = false WHERE shipment_id = %s AND active",
                               (shipment_id,))
        await audit.record(conn, caller, step.audit_action, "shipment", shipment_id,
                           {"reference": row["reference"], "from": step.source, "to": step.target,
                            "at": when.isoformat()})
        return await get(conn, caller, shipment_id)
