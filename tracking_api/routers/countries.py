"""The countries loaded by ``ctt countries load`` (the borders ingest and the engine use).

Every role reads them. Without ``?geometry=true`` only codes and boxes are sent: the
outlines of East Africa alone are megabytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from psycopg import sql
from pydantic import Field

from tracking_api.deps import Caller, Conn
from tracking_api.schemas.countries import CountryCollection
from tracking_api.schemas.errors import UNAUTHORIZED

router = APIRouter(tags=["geography"])

CountryCode = Annotated[str, Field(pattern="^[A-Za-z]{3}$")]

# The whole FeatureCollection is built by PostgreSQL: the stored outlines go out as
# they are, with no per-position Python object.
_COUNTRIES = sql.SQL("""
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', code, 'bbox', bbox, 'geometry', {geometry},
    'properties', json_build_object('code', code, 'bbox', bbox, 'source', source, 'loaded_at', loaded_at)
) ORDER BY code), '[]'))::text AS body
FROM countries WHERE {where}
""")


@router.get("/countries", response_model=CountryCollection, summary="Loaded countries: codes and boxes",
            responses={**UNAUTHORIZED})
async def list_countries(
    conn: Conn, _caller: Caller,
    geometry: Annotated[bool, Query(description="Include the outlines (large)")] = False,
    code: Annotated[list[CountryCode] | None, Query(max_length=300, description=(
        "Only these alpha-3 codes (repeat the parameter); anything but three letters is a 422"))] = None,
) -> Response:
    """One Feature per country, by code: ``bbox`` [west, south, east, north] degrees,
    the outline's source, and with ``?geometry=true`` the outline itself."""
    where, params = (sql.SQL("code = ANY(%s)"), ([c.upper() for c in code],)) if code else (sql.SQL("true"), ())
    query = _COUNTRIES.format(geometry=sql.SQL("geometry" if geometry else "NULL"), where=where)
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return Response(row["body"], media_type="application/json")
