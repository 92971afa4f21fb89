"""``/escalation/response-times``: how long an alert of each severity may stay open before it
escalates to the region's supervisors (``tracking_api.escalation``). Everyone reads; admins set."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.schemas.errors import UNAUTHORIZED, forbidden, validation
from tracking_api.schemas.escalation import ResponseTimes

router = APIRouter(prefix="/escalation", tags=["alerts"])

Admin = Annotated[Principal, Depends(require("admin"))]
_READ = "SELECT severity, ack_within_s FROM response_times"
_WRITE = "UPDATE response_times SET ack_within_s = %s, updated_at = now() WHERE severity = %s"


async def _current(conn: Conn) -> ResponseTimes:
    rows = await (await conn.execute(_READ)).fetchall()
    return ResponseTimes.model_validate({r["severity"]: r["ack_within_s"] for r in rows})


@router.get("/response-times", summary="Seconds to acknowledge, per severity", response_model=ResponseTimes,
            responses=UNAUTHORIZED)
async def get_response_times(conn: Conn, _caller: Caller) -> ResponseTimes:
    """An open alert unacknowledged this long after it was raised escalates to the supervisors
    of its shipment's regions (Web Push, the `escalated` alert event); again after twice as
    long, four times... Acknowledging stops the clock."""
    return await _current(conn)


@router.put("/response-times", summary="Set the response times (admin)", response_model=ResponseTimes,
            responses={**UNAUTHORIZED, **forbidden("admin"),
                       **validation("A severity is missing or its seconds are out of 1..604800",
                                    ["body", "critical"], "Input should be greater than or equal to 1")})
async def set_response_times(conn: Conn, caller: Admin, body: ResponseTimes) -> ResponseTimes:
    """Every severity's seconds at once; audited (`escalation.response_times_changed`, before
    and after). Takes effect at the next sweep, for the alerts already open too."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE response_times IN SHARE ROW EXCLUSIVE MODE")
        before = await _current(conn)
        for severity, seconds in body.model_dump().items():
            await conn.execute(_WRITE, (seconds, severity))
        await audit.record(conn, caller, "escalation.response_times_changed", "response_times", None,
                           {"before": before.model_dump(), "after": body.model_dump()})
    return body
