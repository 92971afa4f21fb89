"""Shipments (transit declarations): registration, reads, and the status
lifecycle ``registered -> in_transit -> arrived -> closed``.

Integrators register and read; admins, operators and officers move shipments
through their lifecycle. An officer sees and acts only on shipments touching
their region; any other is answered 404, as if it did not exist. Every change
is audited in the same transaction as the change itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from psycopg import sql

from tracking_api.access import GRANTS, visible
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.pagination import Paging
from tracking_api.progress import route_lengths
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, validation
from tracking_api.schemas.risk import OverrideIn
from tracking_api.schemas.shipments import (
    VEHICLE,
    Action,
    ArriveIn,
    Inspection,
    InspectionIn,
    ReleaseIn,
    Shipment,
    ShipmentIn,
    ShipmentPage,
    Status,
    Timeline,
    TransitionIn,
)
from tracking_api.services import oversight, risk
from tracking_api.services import shipments as service

router = APIRouter(tags=["shipments"])

REGISTRARS = GRANTS["register_shipments"]
ACTORS = GRANTS["move_shipments"]
RISK_EDITORS = risk.EDITORS
Registrar = Annotated[Principal, Depends(require(*REGISTRARS))]
Actor = Annotated[Principal, Depends(require(*ACTORS))]
RiskEditor = Annotated[Principal, Depends(require(*RISK_EDITORS))]
_NOT_FOUND = error(404, "No such shipment, or not in the officer's region", "shipment 99 does not exist")


# Registration

@router.post(
    "/shipments", status_code=status.HTTP_201_CREATED, response_model=Shipment, summary="Register a shipment",
    responses={**UNAUTHORIZED, **forbidden(*REGISTRARS),
               **error(409, "The reference is taken, a seal or seal number is on another active shipment, or the "
                            "tracker is on an active shipment of another truck (vehicle, route or itinerary)",
                       "tracker 'trk-0042' is bound to active shipment 26KE1000000000041 (in_transit)"),
               **validation("Bad body: reference or device id form, ISO 6346 check digit, unknown route or office, "
                            "an office of transit that is the departure or destination, a seal on an undeclared "
                            "container, a field over its limit, deadline without a time zone, unknown field",
                            ["body", "offices_of_transit", 1],
                            "office of transit 'UGXXX' is not the code of an office or border_post zone")})
async def create_shipment(body: ShipmentIn, conn: Conn, caller: Registrar, request: Request,
                          response: Response) -> Shipment:
    """Registers a transit declaration in status ``registered``. The tracker and
    e-seals must be free: not bound to another shipment that is registered or
    in transit (seals and seal numbers: until that shipment is closed). A tracker
    may serve several shipments only on one truck: the same ``vehicle``, route
    and itinerary (a consolidated truck). The regions the route or any office of
    the itinerary touches are recorded: their officers see the shipment."""
    created = await service.register(conn, caller, body)
    response.headers["Location"] = str(request.url_for("get_shipment", shipment_id=created.id))
    return created


# Reads

@router.get("/shipments", response_model=ShipmentPage, summary="Shipments, newest first",
            responses={**UNAUTHORIZED, **validation("Bad query parameter", ["query", "limit"],
                                                    "Input should be less than or equal to 500")})
async def list_shipments(
    conn: Conn, caller: Caller, page: Paging,
    status_: Annotated[Status | None, Query(alias="status", description="Only shipments in this status")] = None,
    reference: Annotated[str | None, Query(max_length=64, description="Only the shipment with this reference")]
    = None,
    vehicle: Annotated[str | None, Query(pattern=VEHICLE, description="Only the shipments on this vehicle (plate)")]
    = None,
) -> ShipmentPage:
    """Shipments the caller may see (an officer: those touching their region), newest first, a page at a time."""
    conditions: list[sql.Composable] = [visible(caller)]
    params: list[Any] = []
    for column, value in (("s.status = %s", status_), ("s.reference = %s", reference),
                          ("s.vehicle = %s", vehicle), ("s.id < %s", page.below)):
        if value is not None:
            conditions.append(sql.SQL(column))
            params.append(value)
    query = service.SELECT.format(where=sql.SQL(" AND ").join(conditions), limit=sql.Literal(page.fetch))
    rows = await (await conn.execute(query, params)).fetchall()
    lengths = await route_lengths(conn, {r["route_id"] for r in rows[:page.limit]})
    items = [service.shipment(r, lengths) for r in rows[:page.limit]]
    return ShipmentPage(items=items, next_cursor=page.next_cursor([s.id for s in items], len(rows)))


@router.get("/shipments/{shipment_id}", response_model=Shipment, summary="One shipment",
            responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_shipment(shipment_id: Annotated[int, Path(description="Shipment id")], conn: Conn,
                       caller: Caller) -> Shipment:
    return await service.get(conn, caller, shipment_id)


@router.get("/shipments/{shipment_id}/timeline", response_model=Timeline, summary="One shipment's milestones",
            responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_timeline(shipment_id: Annotated[int, Path(description="Shipment id")], conn: Conn,
                       caller: Caller) -> Timeline:
    """Arrivals at and departures from each office of its itinerary and border crossings
    (the engine, on fix time), release, inspections and seals armed, in time order."""
    return await service.timeline(conn, caller, shipment_id)


# Lifecycle

def _transition_doc(action: Action) -> dict[str, Any]:
    step = service.STEPS[action]
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
async def arrive(shipment_id: ShipmentId, conn: Conn, caller: Actor,
                 body: Annotated[ArriveIn | None, Body(description="Optional; without it the step happens now")]
                 = None) -> Shipment:
    """The shipment reached its office of destination: ``in_transit -> arrived``, sets
    ``arrived_at``; with ``"release": true`` the goods are released at the same time."""
    return await service.move(conn, caller, shipment_id, "arrive", body.at if body else None,
                              release=body.release if body else False)


@router.post("/shipments/{shipment_id}/close", **_transition_doc("close"))
async def close(shipment_id: ShipmentId, conn: Conn, caller: Actor, body: TransitionBody = None) -> Shipment:
    """The declaration is discharged: ``arrived -> closed``, sets ``closed_at`` and
    releases its e-seals for another shipment."""
    return await _transition(conn, caller, shipment_id, "close", body)


async def _transition(conn: Conn, caller: Principal, shipment_id: int, action: Action,
                      body: TransitionIn | None) -> Shipment:
    return await service.move(conn, caller, shipment_id, action, body.at if body is not None else None)


# Officers' decisions

@router.post(
    "/shipments/{shipment_id}/release", response_model=Shipment, summary="Release the goods at destination",
    responses={**UNAUTHORIZED, **forbidden(*ACTORS), **_NOT_FOUND,
               **error(409, "Already released, or not in transit nor arrived",
                       "shipment 7 was already released at 2026-11-25T09:30:00+00:00 by officer-ug-17"),
               **validation("Bad body: unknown field, time without a time zone, in the future or before departure",
                            ["body", "at"], "at 2099-01-01T00:00:00+00:00 is in the future")})
async def release(shipment_id: ShipmentId, conn: Conn, caller: Actor,
                  body: Annotated[ReleaseIn | None, Body(description="Optional; without it: now, no note")]
                  = None) -> Shipment:
    """An officer clears the goods (``in_transit`` or ``arrived``): sets ``released_at``, and a
    seal opening inside the destination zone from then on is normal (before it, a breach
    even there). Recorded on the timeline (``released``) and audited."""
    return await service.release(conn, caller, shipment_id, body.at if body else None, body.note if body else None)


@router.post(
    "/shipments/{shipment_id}/inspections", status_code=status.HTTP_201_CREATED, response_model=Inspection,
    summary="Authorise an inspection at an office of the itinerary",
    responses={**UNAUTHORIZED, **forbidden(*ACTORS), **_NOT_FOUND,
               **error(409, "The shipment is closed",
                       "cannot authorise an inspection of shipment 7: its status is 'closed'"),
               **validation("Bad body: office_code not on the itinerary, unknown field", ["body", "office_code"],
                            "office_code 'TZDAR' is not on the itinerary of shipment 7 (KEMBA, KEMAL, UGMAL, UGKLA)")})
async def authorise_inspection(shipment_id: ShipmentId, body: InspectionIn, conn: Conn, caller: Actor) -> Inspection:
    """One seal opening inside the office's zone (at or after ``authorised_at`` - 5 min) is
    then recorded as this inspection's (``inspection_opening`` on the timeline), not raised
    as a breach. Recorded on the timeline (``inspection_authorised``) and audited."""
    return await oversight.authorise_inspection(conn, caller, shipment_id, body.office_code, body.note)


@router.put(
    "/shipments/{shipment_id}/risk", response_model=Shipment, summary="Override the shipment's risk level",
    responses={**UNAUTHORIZED, **forbidden(*RISK_EDITORS), **_NOT_FOUND,
               **validation("Bad body: level not low/medium/high/null, reason missing or empty, unknown field",
                            ["body", "reason"], "Field required")})
async def override_risk(shipment_id: ShipmentId, body: OverrideIn, conn: Conn, caller: RiskEditor) -> Shipment:
    """Impose a risk level (its thresholds and severities apply from the engine's next
    reload), with a reason; ``"level": null`` clears the override and the computed level
    applies again (re-scored). Shown in ``risk.override`` and audited."""
    await risk.override(conn, caller, shipment_id, body.level, body.reason)
    return await service.get(conn, caller, shipment_id)
