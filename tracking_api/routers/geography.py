"""Routes, zones and regions as GeoJSON Features.

Admins and operators register routes and zones, only admins regions (they
decide what officers see); every role reads them. Creation is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from tracking_api import audit
from tracking_api.access import GRANTS
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.regions import link_new_region
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, invalid, validation
from tracking_api.schemas.geography import (
    REGION_CODE,
    RegionCollection,
    RegionFeature,
    RegionIn,
    RouteCollection,
    RouteFeature,
    RouteIn,
    ZoneCollection,
    ZoneFeature,
    ZoneIn,
    ZoneKind,
)
from tracking_api.schemas.geojson import feature, feature_collection

router = APIRouter(tags=["geography"])

Editor = Annotated[Principal, Depends(require(*GRANTS["define_geography"]))]
Admin = Annotated[Principal, Depends(require(*GRANTS["define_regions"]))]

_ROUTES = sql.SQL("""
SELECT r.id, r.name, r.geometry, r.corridor_m, r.created_at,
       coalesce(array_agg(rz.zone_id ORDER BY rz.zone_id) FILTER (WHERE rz.zone_id IS NOT NULL), '{{}}') AS stop_zones
FROM routes r LEFT JOIN route_stop_zones rz ON rz.route_id = r.id
WHERE {where}
GROUP BY r.id ORDER BY r.id
""")
_ROUTE_PROPERTIES = ("name", "corridor_m", "stop_zones", "created_at")
_ZONE_COLUMNS = "id, name, kind, office_code, country, dwell_limit_s, geometry, created_at"
_ZONES = sql.SQL(f"SELECT {_ZONE_COLUMNS} FROM zones WHERE {{where}} ORDER BY id")
_ZONE_PROPERTIES = ("name", "kind", "office_code", "country", "dwell_limit_s", "created_at")
_REGION_COLUMNS = "code, name, country, geometry, created_at"
_REGIONS = sql.SQL(f"SELECT {_REGION_COLUMNS} FROM regions WHERE {{where}} ORDER BY code")
_REGION_PROPERTIES = ("code", "name", "country", "created_at")
# What a zone that is not a stop zone is, in the refusal of a route listing it among its stop zones.
_NOT_A_STOP = {"office": "an office zone", "border_post": "a border post", "weighbridge": "a weighbridge",
               "inspection": "an inspection area"}


# Routes

@router.post(
    "/routes", status_code=status.HTTP_201_CREATED, response_model=RouteFeature, summary="Register a route",
    responses={**UNAUTHORIZED, **forbidden("admin", "operator"),
               **validation("Bad body: geometry, corridor_m <= 0, unknown field, or a stop zone that does not "
                            "exist or is not of kind 'stop'", ["body", "stop_zones", 1], "zone 99 does not exist")})
async def create_route(body: RouteIn, conn: Conn, caller: Editor, request: Request, response: Response) -> RouteFeature:
    """A route: a GeoJSON LineString ([lon, lat]), its corridor half-width in
    metres, and the zones (kind ``stop``) where stopping is authorised."""
    async with conn.transaction():
        await _check_stop_zones(conn, body.stop_zones)
        row = await (await conn.execute(
            "INSERT INTO routes (name, geometry, corridor_m) VALUES (%s, %s, %s) RETURNING id",
            (body.name, Jsonb(body.geometry.to_json()), body.corridor_m))).fetchone()
        assert row is not None
        route_id = row["id"]
        if body.stop_zones:
            await conn.execute("INSERT INTO route_stop_zones (route_id, zone_id) SELECT %s, unnest(%s::bigint[])",
                               (route_id, body.stop_zones))
        await audit.record(conn, caller, "route.created", "route", route_id,
                           {"name": body.name, "corridor_m": body.corridor_m, "stop_zones": body.stop_zones})
        created = await _route(conn, route_id)
    response.headers["Location"] = str(request.url_for("get_route", route_id=route_id))
    return created


@router.get("/routes", response_model=RouteCollection, summary="All routes", responses={**UNAUTHORIZED})
async def list_routes(conn: Conn, _caller: Caller) -> RouteCollection:
    rows = await (await conn.execute(_ROUTES.format(where=sql.SQL("true")))).fetchall()
    return feature_collection(RouteCollection, (feature(RouteFeature, r, _ROUTE_PROPERTIES) for r in rows))


@router.get("/routes/{route_id}", response_model=RouteFeature, summary="One route",
            responses={**UNAUTHORIZED, **error(404, "No such route", "route 99 does not exist")})
async def get_route(route_id: Annotated[int, Path(description="Route id")], conn: Conn,
                    _caller: Caller) -> RouteFeature:
    return await _route(conn, route_id)


async def _route(conn: Conn, route_id: int) -> RouteFeature:
    rows = await (await conn.execute(_ROUTES.format(where=sql.SQL("r.id = %s")), (route_id,))).fetchall()
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"route {route_id} does not exist")
    return feature(RouteFeature, rows[0], _ROUTE_PROPERTIES)


async def _check_stop_zones(conn: Conn, zone_ids: list[int]) -> None:
    """422 naming each id that is not a zone of kind 'stop' (an office zone is not a stop zone)."""
    if not zone_ids:
        return
    rows = await (await conn.execute("SELECT id, kind FROM zones WHERE id = ANY(%s)", (zone_ids,))).fetchall()
    kinds = {r["id"]: r["kind"] for r in rows}
    issues = [(("body", "stop_zones", i),
               f"zone {z} does not exist" if z not in kinds else f"zone {z} is {_NOT_A_STOP[kinds[z]]}, not a "
                                                                 "stop zone")
              for i, z in enumerate(zone_ids) if kinds.get(z) != "stop"]
    if issues:
        raise invalid(*issues)


# Zones

@router.post(
    "/zones", status_code=status.HTTP_201_CREATED, response_model=ZoneFeature, summary="Register a zone",
    responses={**UNAUTHORIZED, **forbidden("admin", "operator"),
               **error(409, "The office code is taken", "office_code 'KEMBA' is already used by zone 3"),
               **validation("Bad body: geometry, office_code missing for an office or border post or given for "
                            "another kind, country not alpha-3, dwell_limit_s not on a border post or out of "
                            "range, unknown field", ["body"],
                            "Value error, office_code is required when kind is 'border_post'")})
async def create_zone(body: ZoneIn, conn: Conn, caller: Editor, request: Request, response: Response) -> ZoneFeature:
    """An office zone (customs office or border post, with its unique office
    code), a weighbridge or inspection area (every truck may stop there), or
    a stop zone authorised on the routes that list it, as a GeoJSON Polygon
    ([lon, lat]); with its country and, for a border post, its dwell limit."""
    try:
        async with conn.transaction():
            if body.office_code is not None:
                await _office_code_free(conn, body.office_code)
            row = await (await conn.execute(
                "INSERT INTO zones (name, kind, office_code, country, dwell_limit_s, geometry) "
                f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ZONE_COLUMNS}",
                (body.name, body.kind, body.office_code, body.country, body.dwell_limit_s,
                 Jsonb(body.geometry.to_json())))).fetchone()
            assert row is not None
            await audit.record(conn, caller, "zone.created", "zone", row["id"],
                               body.model_dump(mode="json", exclude={"geometry"}))
    except errors.UniqueViolation as exc:  # registered concurrently, after the check
        raise HTTPException(status.HTTP_409_CONFLICT, f"office_code {body.office_code!r} is already used") from exc
    response.headers["Location"] = str(request.url_for("get_zone", zone_id=row["id"]))
    return feature(ZoneFeature, row, _ZONE_PROPERTIES)


@router.get("/zones", response_model=ZoneCollection, summary="Zones, optionally of one kind",
            responses={**UNAUTHORIZED})
async def list_zones(conn: Conn, _caller: Caller,
                     kind: Annotated[ZoneKind | None, Query(description="Only zones of this kind")] = None,
                     ) -> ZoneCollection:
    where, params = (sql.SQL("kind = %s"), (kind,)) if kind else (sql.SQL("true"), ())
    rows = await (await conn.execute(_ZONES.format(where=where), params)).fetchall()
    return feature_collection(ZoneCollection, (feature(ZoneFeature, r, _ZONE_PROPERTIES) for r in rows))


@router.get("/zones/{zone_id}", response_model=ZoneFeature, summary="One zone",
            responses={**UNAUTHORIZED, **error(404, "No such zone", "zone 99 does not exist")})
async def get_zone(zone_id: Annotated[int, Path(description="Zone id")], conn: Conn, _caller: Caller) -> ZoneFeature:
    row = await (await conn.execute(_ZONES.format(where=sql.SQL("id = %s")), (zone_id,))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"zone {zone_id} does not exist")
    return feature(ZoneFeature, row, _ZONE_PROPERTIES)


async def _office_code_free(conn: Conn, office_code: str) -> None:
    row = await (await conn.execute("SELECT id FROM zones WHERE office_code = %s", (office_code,))).fetchone()
    if row is not None:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"office_code {office_code!r} is already used by zone {row['id']}")


# Regions

@router.post(
    "/regions", status_code=status.HTTP_201_CREATED, response_model=RegionFeature, summary="Register a region",
    responses={**UNAUTHORIZED, **forbidden("admin"),
               **error(409, "The region code is taken", "region 'KE-MSA' already exists"),
               **validation("Bad body: code, geometry (Polygon or MultiPolygon), unknown field",
                            ["body", "geometry", "Polygon", "coordinates", 0],
                            "Value error, linear ring is not closed: its last position [39.66, -4.03] must equal "
                            "its first [39.66, -4.05]")})
async def create_region(body: RegionIn, conn: Conn, caller: Admin, request: Request,
                        response: Response) -> RegionFeature:
    """A region (customs district, border area) that officers' tokens name.
    Shipments not yet closed whose route or offices it touches become visible
    to its officers at once; later shipments when they are registered."""
    try:
        async with conn.transaction():
            if await (await conn.execute("SELECT 1 FROM regions WHERE code = %s", (body.code,))).fetchone():
                raise HTTPException(status.HTTP_409_CONFLICT, f"region {body.code!r} already exists")
            geometry = body.geometry.to_json()
            row = await (await conn.execute(
                f"INSERT INTO regions (code, name, country, geometry) VALUES (%s, %s, %s, %s) "
                f"RETURNING {_REGION_COLUMNS}", (body.code, body.name, body.country, Jsonb(geometry)))).fetchone()
            assert row is not None
            shipments = await link_new_region(conn, body.code, geometry)
            await audit.record(conn, caller, "region.created", "region", body.code,
                               {"name": body.name, "country": body.country, "shipments": shipments})
    except errors.UniqueViolation as exc:  # registered concurrently, after the check
        raise HTTPException(status.HTTP_409_CONFLICT, f"region {body.code!r} already exists") from exc
    response.headers["Location"] = str(request.url_for("get_region", code=body.code))
    return feature(RegionFeature, row, _REGION_PROPERTIES, id_key="code")


@router.get("/regions", response_model=RegionCollection, summary="All regions", responses={**UNAUTHORIZED})
async def list_regions(conn: Conn, _caller: Caller) -> RegionCollection:
    rows = await (await conn.execute(_REGIONS.format(where=sql.SQL("true")))).fetchall()
    return feature_collection(RegionCollection,
                              (feature(RegionFeature, r, _REGION_PROPERTIES, id_key="code") for r in rows))


@router.get("/regions/{code}", response_model=RegionFeature, summary="One region",
            responses={**UNAUTHORIZED, **error(404, "No such region", "region 'KE-XX' does not exist")})
async def get_region(code: Annotated[str, Path(pattern=REGION_CODE, description="Region code")], conn: Conn,
                     _caller: Caller) -> RegionFeature:
    row = await (await conn.execute(_REGIONS.format(where=sql.SQL("code = %s")), (code,))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"region {code!r} does not exist")
    return feature(RegionFeature, row, _REGION_PROPERTIES, id_key="code")

