"""Shipments (transit declarations): registration, reads, and the status
lifecycle ``registered -> in_transit -> arrived -> closed``.

Integrators register and read; admins, operators and officers move shipments
through their lifecycle. An officer sees and acts only on shipments touching
their region; any other is answered 404, as if it did not exist. Every change
is audited in the same transaction as the change itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response, status
from psycopg import errors, sql
from psycopg.rows import DictRow

from tracking_api import audit
from tracking_api.access import GRANTS, visible
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.pagination import Paging
from tracking_api.progress import estimate, route_lengths
from tracking_api.regions import regions_touching
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, invalid, validation
from tracking_api.schemas.shipments import (
    Action,
    Progress,
    Shipment,
    ShipmentIn,
    ShipmentPage,
    Status,
    TransitionIn,
)

router = APIRouter(tags=["shipments"])

REGISTRARS = GRANTS["register_shipments"]
ACTORS = GRANTS["move_shipments"]
Registrar = Annotated[Principal, Depends(require(*REGISTRARS))]
Actor = Annotated[Principal, Depends(require(*ACTORS))]
# A transition dated ahead of the database clock by more than this is refused (clock skew allowance).
FUTURE_SKEW = timedelta(minutes=5)

_SELECT = sql.SQL("""
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
class _Step:
    source: Status
    target: Status
    column: str  # the timestamp this step sets
    previous: str | None  # the timestamp it may not precede
    audit_action: str


_STEPS: dict[Action, _Step] = {
    "depart": _Step("registered", "in_transit", "departed_at", None, "shipment.departed"),
    "arrive": _Step("in_transit", "arrived", "arrived_at", "departed_at", "shipment.arrived"),
    "close": _Step("arrived", "closed", "closed_at", "arrived_at", "shipment.closed"),
}
_NOT_FOUND = error(404, "No such shipment, or not in the officer's region", "shipment 99 does not exist")


# Registration

@router.post(
    "/shipments", status_code=status.HTTP_201_CREATED, response_model=Shipment, summary="Register a shipment",
    responses={**UNAUTHORIZED, **forbidden(*REGISTRARS),
               **error(409, "The reference is taken, or the tracker or a seal is bound to another active shipment",
                       "tracker 'trk-0042' is bound to active shipment 26KE1000000000041 (in_transit)"),
               **validation("Bad body: reference or device id form, ISO 6346 check digit, unknown route or office, "
                            "deadline without a time zone, unknown field", ["body", "containers", 0],
                            "Value error, container CSQU3054384: check digit 4 is wrong, expected 3")})
async def create_shipment(body: ShipmentIn, conn: Conn, caller: Registrar, request: Request,
                          response: Response) -> Shipment:
    """Registers a transit declaration in status ``registered``. The tracker and
    e-seals must be free: not bound to another shipment that is registered or
    in transit (seals: until that shipment is closed). The regions the route
    or either office touches are recorded: their officers see the shipment."""
    try:
        async with conn.transaction():
            parts = await _parts(conn, body)
            await _devices_free(conn, [body.tracker_id, *body.seal_ids])
            taken = await (await conn.execute("SELECT id FROM shipments WHERE reference = %s",
                                              (body.reference,))).fetchone()
            if taken is not None:
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    f"reference {body.reference!r} is already registered (shipment {taken['id']})")
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
            created = await _one(conn, caller, shipment_id)
    except errors.UniqueViolation as exc:  # registered concurrently, after the checks
        field = _CONSTRAINT_FIELDS.get(exc.diag.constraint_name or "", "reference")
        # The detail names the value: "Key (tracker_id)=(trk-0042) already exists."
        raise HTTPException(status.HTTP_409_CONFLICT, f"{field}: {exc.diag.message_detail or 'already in use'} "
                                                      "(bound by a shipment registered at the same time)") from exc
    response.headers["Location"] = str(request.url_for("get_shipment", shipment_id=shipment_id))
    return created


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
        raise HTTPException(status.HTTP_409_CONFLICT, "; ".join(
            f"{'tracker' if r['device'] == devices[0] else 'seal'} {r['device']!r} is bound to active shipment "
            f"{r['reference']} ({r['status']})" for r in rows))


# Reads

@router.get("/shipments", response_model=ShipmentPage, summary="Shipments, newest first",
            responses={**UNAUTHORIZED, **validation("Bad query parameter", ["query", "limit"],
                                                    "Input should be less than or equal to 500")})
async def list_shipments(
    conn: Conn, caller: Caller, page: Paging,
    status_: Annotated[Status | None, Query(alias="status", description="Only shipments in this status")] = None,
    reference: Annotated[str | None, Query(max_length=64, description="Only the shipment with this reference")]
    = None,
) -> ShipmentPage:
    """Shipments the caller may see (an officer: those touching their region), newest first, a page at a time."""
    conditions: list[sql.Composable] = [visible(caller)]
    params: list[Any] = []
    for column, value in (("s.status = %s", status_), ("s.reference = %s", reference),
                          ("s.id < %s", page.below)):
        if value is not None:
            conditions.append(sql.SQL(column))
            params.append(value)
    query = _SELECT.format(where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(page.fetch))
    rows = await (await conn.execute(query, params)).fetchall()
    lengths = await route_lengths(conn, {r["route_id"] for r in rows[:page.limit]})
    items = [_shipment(r, lengths) for r in rows[:page.limit]]
    return ShipmentPage(items=items, next_cursor=page.next_cursor([s.id for s in items], len(rows)))


@router.get("/shipments/{shipment_id}", response_model=Shipment, summary="One shipment",
            responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_shipment(shipment_id: Annotated[int, Path(description="Shipment id")], conn: Conn,
                       caller: Caller) -> Shipment:
    return await _one(conn, caller, shipment_id)


async def _one(conn: Conn, caller: Principal, shipment_id: int) -> Shipment:
    where = sql.SQL("s.id = %s AND {}").format(visible(caller))
    row = await (await conn.execute(_SELECT.format(where=where, limit=sql.Literal(1)), (shipment_id,))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"shipment {shipment_id} does not exist")
    return _shipment(row, await route_lengths(conn, {row["route_id"]}))


def _shipment(row: DictRow, lengths: dict[int, float]) -> Shipment:
    length = lengths.get(row["route_id"])
    progress = Progress(chainage_m=row["chainage_m"], distance_m=row["distance_m"], last_fix_at=row["last_fix_at"],
                        route_length_m=length, **estimate(length, row["chainage_m"], row["departed_at"],
                                                          row["last_fix_at"])) if row["tracked"] else None
    return Shipment.model_validate({k: v for k, v in row.items() if k in Shipment.model_fields}
                                   | {"progress": progress})


# Lifecycle

def _transition_doc(action: Action) -> dict[str, Any]:
    step = _STEPS[action]
    at_example = (f"at 2026-11-23T05:00:00+00:00 is before {step.previous} 2026-11-23T06:00:00+00:00"
                  if step.previous else "at 2099-01-01T00:00:00+00:00 is in the future")
    return {
        "response_model": Shipment,
        "summary": f"{action.capitalize()}: {step.source} -> {step.target}",
        "responses": {
            **UNAUTHORIZED, **forbidden(*ACTORS), **_NOT_FOUND,
            **error(409, f"The shipment is not {step.source}",
                    f"cannot {action} shipment 7: its status is 'closed', {action} needs {step.source!r}"),
            **validation("Bad body: unknown field, time without a time zone, in the future"
                         + (f" or before {step.previous}" if step.previous else ""), ["body", "at"], at_example),
        },
    }


TransitionBody = Annotated[TransitionIn | None, Body(description="Optional; without it the step happens now")]
ShipmentId = Annotated[int, Path(description="Shipment id")]


@router.post("/shipments/{shipment_id}/depart", **_transition_doc("depart"))
async def depart(shipment_id: ShipmentId, conn: Conn, caller: Actor, body: TransitionBody = None) -> Shipment:
    """The shipment left its office of departure: ``registered -> in_transit``, sets
    ``departed_at``. Monitoring (deviation, stops, seals, deadline) starts."""
    return await _transition(conn, caller, shipment_id, "depart", body)


@router.post("/shipments/{shipment_id}/arrive", **_transition_doc("arrive"))
async def arrive(shipment_id: ShipmentId, conn: Conn, caller: Actor, body: TransitionBody = None) -> Shipment:
    """The shipment reached its office of destination: ``in_transit -> arrived``, sets ``arrived_at``."""
    return await _transition(conn, caller, shipment_id, "arrive", body)


@router.post("/shipments/{shipment_id}/close", **_transition_doc("close"))
async def close(shipment_id: ShipmentId, conn: Conn, caller: Actor, body: TransitionBody = None) -> Shipment:
    """The declaration is discharged: ``arrived -> closed``, sets ``closed_at`` and
    releases its e-seals for another shipment."""
    return await _transition(conn, caller, shipment_id, "close", body)


async def _transition(conn: Conn, caller: Principal, shipment_id: int, action: Action,
                      body: TransitionIn | None) -> Shipment:
    step = _STEPS[action]
    async with conn.transaction():
        # FOR UPDATE: of two concurrent transitions, the second waits and then sees the new status.
        row = await (await conn.execute(sql.SQL(
            "SELECT s.id, s.reference, s.status, s.departed_at, s.arrived_at, now() AS now FROM shipments s "
            "WHERE s.id = %s AND {} FOR UPDATE OF s").format(visible(caller)), (shipment_id,))).fetchone()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"shipment {shipment_id} does not exist")
        if row["status"] != step.source:
            raise HTTPException(status.HTTP_409_CONFLICT, f"cannot {action} shipment {shipment_id}: its status is "
                                                          f"{row['status']!r}, {action} needs {step.source!r}")
        # In UTC, so that the audit row and messages read the same whatever zone the client used.
        at = (body.at if body is not None and body.at is not None else row["now"]).astimezone(UTC)
        if at > row["now"] + FUTURE_SKEW:
            raise invalid((("body", "at"), f"at {at.isoformat()} is in the future"))
        previous = row[step.previous].astimezone(UTC) if step.previous else None
        if previous is not None and at < previous:
            raise invalid((("body", "at"), f"at {at.isoformat()} is before {step.previous} {previous.isoformat()}"))
        await conn.execute(sql.SQL("UPDATE shipments SET status = %s, {} = %s WHERE id = %s").format(
            sql.Identifier(step.column)), (step.target, at, shipment_id))
        if action == "close":
            await conn.execute("UPDATE shipment_seals SET active = false WHERE shipment_id = %s AND active",
                               (shipment_id,))
        await audit.record(conn, caller, step.audit_action, "shipment", shipment_id,
                           {"reference": row["reference"], "from": step.source, "to": step.target,
                            "at": at.isoformat()})
        return await _one(conn, caller, shipment_id)

