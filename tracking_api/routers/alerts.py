"""``/alerts``: what the geofence engine raised, and the officers' workflow on it
(open -> acknowledged -> resolved, or open -> resolved), each step audited."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status
from psycopg import sql

from protocol.alerts import CONFIRMED, alert
from tracking_api import access, audit
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn
from tracking_api.idempotency import Idempotent
from tracking_api.pagination import Paging
from tracking_api.schemas.alerts import (
    ALERT_STATUSES,
    ALERT_TYPES,
    AckRequest,
    Alert,
    AlertPage,
    AlertStatus,
    AlertType,
    Assigned,
    AssignRequest,
    Outcome,
    ResolveRequest,
    one_of,
)
from tracking_api.schemas.errors import UNAUTHORIZED, error, invalid, validation
from tracking_api.services import cases

router = APIRouter(prefix="/alerts", tags=["alerts"])

_BIGINT_MAX = 2**63 - 1
_SHIPMENT_OF_ALERT = sql.SQL("a.shipment_id")
_SHIPMENT_OF_VIEW = sql.SQL("a.shipment")

# The one alert object's row (protocol.alerts.Alert), as every other consumer gets it.
_SELECT = sql.SQL("SELECT a.* FROM alert_view a")
_LOCK = sql.SQL("SELECT a.status, a.shipment_id, a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at "
                "FROM alerts a WHERE a.id = %s AND {} FOR UPDATE")
_ACKNOWLEDGE = """
UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),
                  note = coalesce(%s, note), updated_at = now()
WHERE id = %s
"""
_RESOLVE = """
UPDATE alerts SET status = 'resolved', resolved_by = %s, resolved_at = now(), note = %s, outcome = %s,
                  updated_at = now()
WHERE id = %s
"""

_LOCK_ASSIGNED = sql.SQL("""
SELECT a.id, a.status FROM alerts a
WHERE {} AND a.status <> 'resolved'
  AND (a.id = %(id)s OR (%(incident)s AND a.incident = (SELECT incident FROM alerts WHERE id = %(id)s)))
ORDER BY a.id FOR UPDATE
""")
_ASSIGN = """
UPDATE alerts SET assignee = %s, unit = %s, assigned_at = now(), assigned_by = %s, updated_at = now()
WHERE id = %s
"""
_UNIT_REGION = "SELECT region FROM units WHERE code = %s"

# Which status each action may start from; anything else is a 409.
_FROM: dict[str, tuple[str, ...]] = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}

_NOT_FOUND = error(404, "No such alert, or one the caller may not see", "alert 42 not found")
_INVALID_QUERY = validation("A filter, limit or cursor is invalid", ["query", "status"],
                            "Value error, status 'closed' is not one of open, acknowledged, resolved")
_ACTION_ERRORS = {
    **UNAUTHORIZED,
    **error(403, "Integrators cannot act on alerts", "integrators cannot act on alerts"),
    **_NOT_FOUND,
    **error(409, "The alert's status does not allow this step; the message names it",
            "alert 42 is resolved; only an open alert can be acknowledged"),
    **validation("The body is invalid: an unknown field, a missing, blank or too long note, a missing or unknown "
                 "outcome",
                 ["body", "note"],
                 "Field required"),
}


def actor(caller: Caller) -> Principal:
    """Admins, operators and officers act on alerts; integrators only read them."""
    if caller.role not in access.GRANTS["act_on_alerts"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "integrators cannot act on alerts")
    return caller


Actor = Annotated[Principal, Depends(actor)]
AlertId = Annotated[int, Path(ge=1, le=_BIGINT_MAX, description="Alert id")]


@router.get("", summary="List alerts, newest first", response_model=AlertPage,
            responses={**UNAUTHORIZED, **_INVALID_QUERY})
async def list_alerts(
    conn: Conn,
    caller: Caller,
    page: Paging,
    shipment: Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Shipment id")] = None,
    type: Annotated[AlertType | None, one_of("type", ALERT_TYPES), Query(description="Alert type")] = None,
    status_: Annotated[AlertStatus | None, one_of("status", ALERT_STATUSES),
                       Query(alias="status", description="Workflow status")] = None,
    device: Annotated[str | None, Query(min_length=1, max_length=64, description="Device id")] = None,
    late: Annotated[bool | None, Query(description="Only alerts raised from late data (true) or live (false)")]
    = None,
    country: Annotated[str | None, Query(pattern="^[A-Z]{3}$", description="Only alerts on this country's ground "
                                                                         "(ISO 3166-1 alpha-3)")] = None,
    incident: Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Only the alerts of this incident "
                                                                          "(one truck's condition)")] = None,
    assigned: Annotated[Literal["me"] | None, Query(description=(
        "`me`: only the alerts assigned to the caller (their token's subject) or to their unit"))] = None,
) -> Response:
    """Alerts matching every given filter, by id descending (newest first), in pages:
    follow `next_cursor` until it is null. Keyset pagination: alerts raised while
    paging appear on a fresh first page, never as duplicates. An officer sees only
    the alerts of shipments touching their region."""
    conditions: list[sql.Composable] = [access.visible(caller, _SHIPMENT_OF_VIEW)]
    params: list[Any] = []
    for column, value in (("a.shipment", shipment), ("a.type", type), ("a.status", status_),
                          ("a.device", device), ("a.late", late), ("a.country", country),
                          ("a.incident", incident)):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.SQL(column)))
            params.append(value)
    if assigned == "me":
        conditions.append(sql.SQL("(a.assignee = %s OR a.unit = %s)"))
        params += [caller.subject, caller.unit]
    if page.below is not None:
        conditions.append(sql.SQL("a.id < %s"))
        params.append(page.below)
    query = sql.SQL("{} WHERE {} ORDER BY a.id DESC LIMIT %s").format(_SELECT, sql.SQL(" AND ").join(conditions))
    # One row more than asked tells whether another page exists without a second query.
    rows = await (await conn.execute(query, [*params, page.fetch])).fetchall()
    items = [alert(r) for r in rows[:page.limit]]
    return _json({"items": items, "next_cursor": page.next_cursor([i.id for i in items], len(rows))})


@router.get("/{alert_id}", summary="One alert", response_model=Alert, responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_alert(conn: Conn, caller: Caller, alert_id: AlertId) -> Response:
    """The alert with its workflow fields. 404 also when an officer may not see it,
    so that ids of other regions' alerts are not confirmed."""
    return await _fetch(conn, caller, alert_id)


@router.post("/{alert_id}/ack", summary="Acknowledge an open alert", response_model=Alert,
             responses=_ACTION_ERRORS)
async def acknowledge(
    conn: Conn, caller: Actor, alert_id: AlertId, idem: Idempotent,
    body: Annotated[AckRequest | None, Body(openapi_examples={
        "with a note": {"value": {"note": "calling the driver"}},
        "without a note": {"value": {"note": None}}})] = None,
) -> Response:
    """`open` -> `acknowledged`: someone is on it. Records who and when, the note
    if given, and an `alert.acknowledged` audit entry, in one transaction. The body
    may be left out. With an `Idempotency-Key`, done once (docs/api.md)."""
    return await idem.run(conn, lambda: _transition(conn, caller, alert_id, "acknowledged",
                                                    body.note if body else None))


@router.post("/{alert_id}/resolve", summary="Resolve an alert, with a note", response_model=Alert,
             responses=_ACTION_ERRORS)
async def resolve(
    conn: Conn, caller: Actor, alert_id: AlertId, idem: Idempotent,
    body: Annotated[ResolveRequest, Body(openapi_examples={
        "seal re-armed": {"value": {"note": "seal re-armed at Malaba, cargo checked", "outcome": "false_alarm"}},
        "goods seized": {"value": {"note": "undeclared cigarettes behind the load", "outcome": "goods_seized"}},
        "duplicate": {"value": {"note": "duplicate of alert 41", "outcome": "other"}}})],
) -> Response:
    """`open` or `acknowledged` -> `resolved`, with a required note saying why and the
    outcome (the verdict the risk unit's figures count; without one, a 422 naming `outcome`).
    Records who and when and an `alert.resolved` audit entry, in one transaction. A confirmed
    outcome (`confirmed_irregularity`, `goods_seized`) opens a case on the shipment, or adds the
    alert to its open case, with the evidence snapshot (`GET /cases?alert=`), in the same
    transaction. Resolving is the officers' verdict; it does not end the condition (`ended_at`).
    A 409 names who resolved it and when. With an `Idempotency-Key`, done once (docs/api.md)."""
    return await idem.run(conn, lambda: _transition(conn, caller, alert_id, "resolved", body.note, body.outcome))


@router.post("/{alert_id}/assign", summary="Assign an alert (or its incident) to an officer or a unit",
             response_model=Assigned, responses={**_ACTION_ERRORS, **validation(
                 "The body is invalid, or the unit is unknown or (for an officer or supervisor) of another region",
                 ["body", "unit"], "unit 'MSA-1' is of region KE-WEST, not the caller's region KE-MSA")})
async def assign(
    conn: Conn, caller: Actor, alert_id: AlertId, idem: Idempotent,
    body: Annotated[AssignRequest, Body(openapi_examples={
        "an officer": {"value": {"assignee": "officer-kemba-17", "unit": None, "incident": False}},
        "a unit, the whole incident": {"value": {"assignee": None, "unit": "MSA-MOBILE-1", "incident": True}},
        "nobody": {"value": {"assignee": None, "unit": None}}})],
) -> Response:
    """Who answers it: an officer (token subject) and/or a unit; both null withdraws the
    assignment. With `incident`, every alert of the same incident the caller may see and that
    is not resolved is assigned too. Each assigned alert gets an `alert.assigned` audit entry
    and an `assigned` alert event (stream, MQTT, push, webhooks), in one transaction. An
    officer or supervisor assigns within their region only. A resolved alert is a 409. With an
    `Idempotency-Key`, done once (docs/api.md)."""
    return await idem.run(conn, lambda: _assign(conn, caller, alert_id, body))


async def _assign(conn: Conn, caller: Principal, alert_id: int, body: AssignRequest) -> Response:
    async with conn.transaction():
        if body.unit is not None:
            await _check_unit(conn, caller, body.unit)
        visible = access.visible(caller, _SHIPMENT_OF_ALERT)
        rows = await (await conn.execute(_LOCK_ASSIGNED.format(visible),
                                         {"id": alert_id, "incident": body.incident})).fetchall()
        if alert_id not in {r["id"] for r in rows}:
            await _fetch(conn, caller, alert_id)  # 404 if it is not the caller's to see
            raise HTTPException(status.HTTP_409_CONFLICT, f"alert {alert_id} is resolved; only an open or "
                                                          "acknowledged alert can be assigned")
        for row in rows:
            await conn.execute(_ASSIGN, (body.assignee, body.unit, caller.subject, row["id"]))
            await audit.record(conn, caller, "alert.assigned", "alert", row["id"],
                               {"assignee": body.assignee, "unit": body.unit, "via": alert_id})
        query = sql.SQL("{} WHERE a.id = ANY(%s) ORDER BY a.id DESC").format(_SELECT)
        changed = await (await conn.execute(query, ([r["id"] for r in rows],))).fetchall()
        return _json({"items": [alert(r) for r in changed]})


async def _check_unit(conn: Conn, caller: Principal, unit: str) -> None:
    row = await (await conn.execute(_UNIT_REGION, (unit,))).fetchone()
    if row is None:
        raise invalid((("body", "unit"), f"unit {unit!r} is not defined (GET /units)"))
    if caller.role in access.REGION_SCOPED and row["region"] != caller.region:
        raise invalid((("body", "unit"), f"unit {unit!r} is of region {row['region']}, not the caller's region "
                                         f"{caller.region}"))


async def _transition(conn: Conn, caller: Principal, alert_id: int, target: Literal["acknowledged", "resolved"],
                      note: str | None, outcome: Outcome | None = None) -> Response:
    async with conn.transaction():
        # The row lock orders concurrent actions on one alert (and ingest's updates of
        # its times): the second ack of two sees 'acknowledged' and gets its 409.
        locked = await (await conn.execute(
            _LOCK.format(access.visible(caller, _SHIPMENT_OF_ALERT)), (alert_id,))).fetchone()
        if locked is None:
            raise _not_found(alert_id)
        current = locked["status"]
        if current not in _FROM[target]:
            raise HTTPException(status.HTTP_409_CONFLICT, f"alert {alert_id} is {current}; only an "
                                f"{' or '.join(_FROM[target])} alert can be {target}{_by_whom(locked)}")
        detail: dict[str, Any] = {"note": note, "from": current}
        if target == "acknowledged":
            await conn.execute(_ACKNOWLEDGE, (caller.subject, note, alert_id))
        else:
            await conn.execute(_RESOLVE, (caller.subject, note, outcome, alert_id))
            detail["outcome"] = outcome
        await audit.record(conn, caller, f"alert.{target}", "alert", alert_id, detail)
        if outcome in CONFIRMED:
            # After the resolution's audit entry: the case's evidence holds it.
            await cases.open_or_join(conn, caller, alert_id, locked["shipment_id"], outcome)
        return await _fetch(conn, caller, alert_id)


def _by_whom(locked: dict[str, Any]) -> str:
    """Who moved the alert to its present status, and when (for the conflict's message)."""
    status_ = locked["status"]
    by, at = locked.get(f"{status_}_by"), locked.get(f"{status_}_at")
    if by is None or at is None:  # open, or set without the workflow (a fixture, an old row)
        return ""
    return f" ({status_} by {by} at {at.astimezone(UTC).isoformat().replace('+00:00', 'Z')})"


async def _fetch(conn: Conn, caller: Principal, alert_id: int) -> Response:
    query = sql.SQL("{} WHERE a.id = %s AND {}").format(_SELECT, access.visible(caller, _SHIPMENT_OF_VIEW))
    row = await (await conn.execute(query, (alert_id,))).fetchone()
    if row is None:
        raise _not_found(alert_id)
    return _json(alert(row))


def _json(value: object) -> Response:
    # msgspec, as for MQTT, the stream and Web Push: one encoding of the alert object (times in UTC, "Z").
    return Response(msgspec.json.encode(value), media_type="application/json")


def _not_found(alert_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
