"""Photos from the roadside: ``POST /alerts/{id}/photos`` and ``POST /cases/{id}/photos`` take the
image bytes as the body (metadata in the query), the lists and the bytes back. Upload: the roles
that act on alerts, on an alert or case they may see (a closed case: 409); reading: whoever may
see the alert's or case's shipment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from pydantic import AwareDatetime

from tracking_api.access import GRANTS
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, Settings, require
from tracking_api.idempotency import Idempotent
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, invalid, validation
from tracking_api.schemas.photos import NOTE_MAX, PHOTO_TYPES, Photo, PhotoList
from tracking_api.services import photos
from tracking_api.services.photos import Metadata, PhotoRefusedError, Target

router = APIRouter(tags=["photos"])

_BIGINT_MAX = 2**63 - 1
# The phone's clock may run a little ahead of the server's; further ahead is a mistake.
CLOCK_SKEW = timedelta(minutes=10)
# The routes (under the API prefix) whose body may reach CTT_PHOTO_MAX_BYTES (tracking_api.body_limit).
UPLOAD_PATHS = (r"/alerts/\d+/photos", r"/cases/\d+/photos")

Worker = Annotated[Principal, Depends(require(*GRANTS["act_on_alerts"]))]
TargetId = Annotated[int, Path(ge=1, le=_BIGINT_MAX)]
PhotoId = Annotated[int, Path(ge=1, le=_BIGINT_MAX, description="Photo id")]

_READ = {**UNAUTHORIZED, **error(404, "No such alert, case or photo, or one the caller may not see",
                                 "alert 42 not found")}
_UPLOAD = {
    201: {"description": "Stored; the photo as listed"},
    **_READ, **forbidden(*GRANTS["act_on_alerts"]),
    **error(409, "The case is closed: read-only", "case 3 is closed: read-only"),
    **error(413, "The body is larger than CTT_PHOTO_MAX_BYTES", "request body larger than 8388608 bytes"),
    **error(415, "Content-Type is not image/jpeg, image/png or image/webp, or not the body's own type",
            "Content-Type 'image/jpeg' does not match the body, which is image/png"),
    **validation("The body is no whole image, or a query field is invalid", ["query", "taken_at"],
                 "Field required"),
}
_BODY = {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES}, "required": True}
# Images are bytes: the schema says so, the example is the start of a JPEG.
_BINARY = {"schema": {"type": "string", "format": "binary"}, "example": "\u00ff\u00d8\u00ff\u00e0 JFIF ..."}
_IMAGE = {"description": "The exact bytes stored; X-Content-SHA256 is their hash (hex)",
          "content": {t: _BINARY for t in PHOTO_TYPES}}


async def _metadata(
    taken_at: Annotated[AwareDatetime, Query(description="When the phone took it (RFC 3339 with offset)")],
    lat: Annotated[float | None, Query(ge=-90, le=90, description="The phone's latitude, WGS 84 degrees")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="The phone's longitude, WGS 84 degrees")] = None,
    accuracy_m: Annotated[float | None, Query(ge=0, le=100_000, description="The position's accuracy, metres")]
    = None,
    note: Annotated[str | None, Query(min_length=1, max_length=NOTE_MAX, description="What it shows")] = None,
) -> Metadata:
    if taken_at > datetime.now(UTC) + CLOCK_SKEW:
        raise invalid((("query", "taken_at"), f"taken_at {taken_at.isoformat()} is in the future"))
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise invalid((("query", missing), f"{missing} is required with {'lat' if missing == 'lon' else 'lon'}"))
    if accuracy_m is not None and lat is None:
        raise invalid((("query", "accuracy_m"), "accuracy_m needs lat and lon"))
    if note is not None and any(ord(c) < 32 and c not in "\t\n\r" for c in note):
        raise invalid((("query", "note"), "note must not contain control characters (U+0000-U+001F)"))
    return Metadata(taken_at.astimezone(UTC), lat, lon, accuracy_m, note)


Meta = Annotated[Metadata, Depends(_metadata)]
ContentType = Annotated[str, Header(alias="Content-Type", description="image/jpeg, image/png or image/webp")]


async def _upload(conn: Conn, caller: Principal, settings: Settings, request: Request, idem: Idempotent,
                  target: Target, target_id: int, content_type: str, meta: Metadata) -> Response:
    content = await request.body()
    if not content:
        raise invalid((("body",), "the body is empty: send the image's bytes"))
    try:
        # Decoding a 12 Mpx photo takes about 150 ms of CPU: off the event loop.
        checked = await asyncio.to_thread(photos.check, content, content_type.partition(";")[0].strip().lower(),
                                          settings.photo_max_pixels)
    except PhotoRefusedError as exc:
        raise invalid((("body",), str(exc))) from exc

    async def attach() -> Response:
        row = await photos.attach(conn, caller, target, target_id, content, checked, meta)
        return Response(Photo.model_validate(row).model_dump_json(), status_code=status.HTTP_201_CREATED,
                        media_type="application/json")

    return await idem.run(conn, attach)


@router.post("/alerts/{alert_id}/photos", summary="Attach a photo to an alert", status_code=201,
             response_model=Photo, responses=_UPLOAD, openapi_extra={"requestBody": _BODY})
async def add_alert_photo(conn: Conn, caller: Worker, settings: Settings, request: Request, idem: Idempotent,
                          alert_id: TargetId, content_type: ContentType, meta: Meta) -> Response:
    """The body is the image (at most `CTT_PHOTO_MAX_BYTES`), checked by its signature and a full
    decode; stored as received with its SHA-256, audited `photo.attached`. With an
    `Idempotency-Key`, stored once however often the phone retries."""
    return await _upload(conn, caller, settings, request, idem, "alert", alert_id, content_type, meta)


@router.post("/cases/{case_id}/photos", summary="Attach a photo to an open case", status_code=201,
             response_model=Photo, responses=_UPLOAD, openapi_extra={"requestBody": _BODY})
async def add_case_photo(conn: Conn, caller: Worker, settings: Settings, request: Request, idem: Idempotent,
                         case_id: TargetId, content_type: ContentType, meta: Meta) -> Response:
    """As for an alert; a closed case is a 409 (read-only)."""
    return await _upload(conn, caller, settings, request, idem, "case", case_id, content_type, meta)


@router.get("/alerts/{alert_id}/photos", summary="An alert's photos", response_model=PhotoList, responses=_READ)
async def alert_photos(conn: Conn, caller: Caller, alert_id: TargetId) -> PhotoList:
    """Oldest first, without their bytes (`GET /photos/{id}`, `/photos/{id}/thumbnail`)."""
    return PhotoList.model_validate({"items": await photos.listing(conn, caller, "alert", alert_id)})


@router.get("/cases/{case_id}/photos", summary="A case's photos, and its alerts'", response_model=PhotoList,
            responses={**_READ, **forbidden(*GRANTS["act_on_alerts"])})
async def case_photos(conn: Conn, caller: Worker, case_id: TargetId) -> PhotoList:
    """The case's photos and those of the alerts it holds, oldest first."""
    return PhotoList.model_validate({"items": await photos.listing(conn, caller, "case", case_id)})


@router.get("/photos/{photo_id}", summary="A photo's bytes", response_class=Response,
            responses={**_READ, 200: _IMAGE})
async def photo(conn: Conn, caller: Caller, photo_id: PhotoId) -> Response:
    """The image as received, byte for byte: its SHA-256 is the one listed and audited."""
    row = await photos.content(conn, caller, photo_id, thumbnail=False)
    return _image(row, row["content_type"])


@router.get("/photos/{photo_id}/thumbnail", summary="A photo's thumbnail (JPEG, at most 320 px)",
            response_class=Response, responses={**_READ, 200: {"description": "JPEG",
                                                                "content": {"image/jpeg": _BINARY}}})
async def thumbnail(conn: Conn, caller: Caller, photo_id: PhotoId) -> Response:
    """Made upright (EXIF orientation) for display; the evidence is `GET /photos/{id}`."""
    return _image(await photos.content(conn, caller, photo_id, thumbnail=True), "image/jpeg")


def _image(row: dict[str, Any], media_type: str) -> Response:
    # Evidence never changes: cacheable, but only by the browser that fetched it (it is behind a token).
    return Response(bytes(row["data"]), media_type=media_type,
                    headers={"X-Content-SHA256": row["sha256"], "Cache-Control": "private, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})
