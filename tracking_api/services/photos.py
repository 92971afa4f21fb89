"""Photos from the roadside: checked (magic bytes, then a full decode with Pillow under a
pixel bound), stored as received with their SHA-256 and a JPEG thumbnail, attached to an
alert or a case of a shipment the caller may see, audited ``photo.attached``.

The bytes stored are the bytes received (the hash is of what the phone sent); the thumbnail
is made upright (EXIF orientation) for display only.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from psycopg import sql

from tracking_api import audit
from tracking_api.access import GRANTS, visible
from tracking_api.auth import Principal
from tracking_api.services import cases
from tracking_api.services.errors import NotFoundError, ServiceError
from tracking_api.services.shipments import Conn

THUMBNAIL_PX = 320
Target = Literal["alert", "case"]

# What each accepted type's file starts with (WebP: "RIFF", 4 bytes of size, "WEBP").
_FORMATS: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


class UnsupportedMediaError(ServiceError):
    status_code = 415


class PhotoRefusedError(ValueError):
    """The body is not a whole image of an accepted type; the message says why."""


@dataclass(frozen=True)
class Checked:
    content_type: str
    width: int
    height: int
    thumbnail: bytes


@dataclass(frozen=True)
class Metadata:
    taken_at: datetime
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    note: str | None


def sniff(content: bytes) -> str | None:
    """The media type the bytes' signature says, or None."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check(content: bytes, declared: str, max_pixels: int) -> Checked:
    """The image's type, size and thumbnail. ``UnsupportedMediaError`` (415) for a declared type
    not accepted or not the bytes' own; ``PhotoRefusedError`` for bytes that are no whole image."""
    if declared not in _FORMATS:
        raise UnsupportedMediaError(f"Content-Type {declared!r} is not one of {', '.join(_FORMATS)}")
    found = sniff(content)
    if found is None:
        raise PhotoRefusedError("the body is not a JPEG, PNG or WebP image (unknown signature)")
    if found != declared:
        raise UnsupportedMediaError(f"Content-Type {declared!r} does not match the body, which is {found}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=[_FORMATS[found]]) as image:
                # Checked before decoding: a small file may declare a huge canvas (a decompression bomb).
                if image.width * image.height > max_pixels:
                    raise PhotoRefusedError(f"the image is {image.width}x{image.height} pixels, more than "
                                            f"{max_pixels}")
                image.load()
                return Checked(found, image.width, image.height, _thumbnail(image))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRefusedError(f"the body is not a readable {found} image: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data, whatever the decoder says
        if isinstance(exc, PhotoRefusedError):
            raise
        raise PhotoRefusedError(f"the body is not a whole {found} image: {exc}") from exc


def _thumbnail(image: Image.Image) -> bytes:
    small = ImageOps.exif_transpose(image).convert("RGB")
    small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


_ALERT_SHIPMENT = sql.SQL("SELECT a.shipment_id FROM alerts a WHERE a.id = %s AND {}")
_INSERT = """
INSERT INTO photos (content, sha256, content_type, bytes, width, height, thumbnail, taken_at, lat, lon, accuracy_m,
                    note, alert_id, case_id, shipment_id, uploaded_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING id, uploaded_at
"""
_COLUMNS = """
p.id, encode(p.sha256, 'hex') AS sha256, p.content_type, p.bytes, p.width, p.height, p.taken_at, p.lat, p.lon,
p.accuracy_m, p.note, p.alert_id AS alert, p.case_id AS "case", p.shipment_id AS shipment, p.uploaded_by,
p.uploaded_at
"""
_LIST = {
    "alert": f"SELECT {_COLUMNS} FROM photos p WHERE p.alert_id = %s ORDER BY p.id",
    # A case's photos and those of the alerts it holds.
    "case": f"SELECT {_COLUMNS} FROM photos p WHERE p.case_id = %s OR p.alert_id IN "
            "(SELECT alert_id FROM case_alerts WHERE case_id = %s) ORDER BY p.id",
}
_ONE = sql.SQL("SELECT {}, {} AS data FROM photos p WHERE p.id = %s AND {} AND {}")
_SHIPMENT_PHOTOS = sql.SQL(f"SELECT {_COLUMNS}, p.thumbnail FROM photos p WHERE p.shipment_id = %s AND {{}} "
                           "ORDER BY p.id")


async def _shipment_of(conn: Conn, caller: Principal, target: Target, target_id: int, lock: bool) -> int:
    if target == "case":
        case = await cases.get(conn, caller, target_id, lock=lock)
        if lock:
            cases.writable(case)
        return int(case["shipment_id"])
    row = await (await conn.execute(_ALERT_SHIPMENT.format(visible(caller, sql.SQL("a.shipment_id"))),
                                    (target_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"alert {target_id} not found")
    return int(row["shipment_id"])


async def attach(conn: Conn, caller: Principal, target: Target, target_id: int, content: bytes, checked: Checked,
                 meta: Metadata) -> dict[str, Any]:
    """Stores the photo on the alert or (open) case and audits ``photo.attached``; the photo as listed."""
    async with conn.transaction():
        shipment = await _shipment_of(conn, caller, target, target_id, lock=True)
        digest = hashlib.sha256(content).digest()
        row = await (await conn.execute(_INSERT, (
            content, digest, checked.content_type, len(content), checked.width, checked.height, checked.thumbnail,
            meta.taken_at, meta.lat, meta.lon, meta.accuracy_m, meta.note,
            target_id if target == "alert" else None, target_id if target == "case" else None, shipment,
            caller.subject))).fetchone()
        assert row is not None
        await audit.record(conn, caller, "photo.attached", target, target_id, {
            "photo": row["id"], "sha256": digest.hex(), "bytes": len(content), "content_type": checked.content_type,
            "shipment": shipment, "taken_at": meta.taken_at.isoformat(), "lat": meta.lat, "lon": meta.lon})
    return {"id": row["id"], "sha256": digest.hex(), "content_type": checked.content_type, "bytes": len(content),
            "width": checked.width, "height": checked.height, "taken_at": meta.taken_at, "lat": meta.lat,
            "lon": meta.lon, "accuracy_m": meta.accuracy_m, "note": meta.note,
            "alert": target_id if target == "alert" else None, "case": target_id if target == "case" else None,
            "shipment": shipment, "uploaded_by": caller.subject, "uploaded_at": row["uploaded_at"]}


async def listing(conn: Conn, caller: Principal, target: Target, target_id: int) -> list[dict[str, Any]]:
    """The photos of the alert or case (404 as the alert or case), oldest first."""
    await _shipment_of(conn, caller, target, target_id, lock=False)
    params = (target_id,) if target == "alert" else (target_id, target_id)
    return [dict(r) for r in await (await conn.execute(_LIST[target], params)).fetchall()]


async def content(conn: Conn, caller: Principal, photo_id: int, thumbnail: bool) -> dict[str, Any]:
    """The photo (or its thumbnail) as ``data``, with its metadata; 404 if the caller may not see its
    shipment, or it is a case's and the caller's role does not work cases."""
    query = _ONE.format(sql.SQL(_COLUMNS), sql.SQL("p.thumbnail" if thumbnail else "p.content"),
                        visible(caller, sql.SQL("p.shipment_id")), _works_cases(caller))
    row = await (await conn.execute(query, (photo_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"photo {photo_id} not found")
    return dict(row)


async def of_shipment(conn: Conn, caller: Principal, shipment_id: int) -> list[dict[str, Any]]:
    """The shipment's photos with their thumbnails, as ``caller`` may see them (the report; the
    shipment's own visibility is checked there)."""
    query = _SHIPMENT_PHOTOS.format(_works_cases(caller))
    return [dict(r) for r in await (await conn.execute(query, (shipment_id,))).fetchall()]


def _works_cases(caller: Principal) -> sql.Composable:
    """A case's photos only for the roles that work cases (integrators see alerts', not cases')."""
    return sql.SQL("true" if caller.role in GRANTS["act_on_alerts"] else "p.case_id IS NULL")
