"""``/units``: the units officers belong to (a token's ``unit`` claim); alerts may be assigned
to a unit (``POST /alerts/{id}/assign``). Reading is open to every role; defining is the admin's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from psycopg import errors

from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.schemas.errors import UNAUTHORIZED, forbidden, invalid, validation
from tracking_api.schemas.units import Unit, UnitIn, UnitList

router = APIRouter(prefix="/units", tags=["alerts"])

Admin = Annotated[Principal, Depends(require("admin"))]
Code = Annotated[str, Path(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$", description="Unit code")]

_LIST = "SELECT code, name, region FROM units ORDER BY code"
_UPSERT = """
INSERT INTO units (code, name, region) VALUES (%s, %s, %s)
ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region
RETURNING code, name, region
"""


@router.get("", summary="The units", response_model=UnitList, responses=UNAUTHORIZED)
async def list_units(conn: Conn, _caller: Caller) -> UnitList:
    """Every unit, by code."""
    rows = await (await conn.execute(_LIST)).fetchall()
    return UnitList(items=[Unit(**r) for r in rows])


@router.put("/{code}", summary="Define or change a unit (admin)", response_model=Unit,
            responses={**UNAUTHORIZED, **forbidden("admin"),
                       **validation("The body is invalid or the region is unknown", ["body", "region"],
                                    "region 'KE-XX' is not defined (GET /regions)")})
async def define_unit(conn: Conn, caller: Admin, code: Code, body: UnitIn) -> Unit:
    """Creates the unit or changes its name and region; audited (`unit.defined`)."""
    try:
        async with conn.transaction():
            row = await (await conn.execute(_UPSERT, (code, body.name, body.region))).fetchone()
            assert row is not None
            await audit.record(conn, caller, "unit.defined", "unit", code, {"name": body.name, "region": body.region})
    except errors.ForeignKeyViolation as exc:
        raise invalid((("body", "region"), f"region {body.region!r} is not defined (GET /regions)")) from exc
    return Unit(**row)
