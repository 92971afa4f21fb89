"""Photos as the API documents them: taken by an officer at the roadside, attached to an
alert or a case, stored as received with their SHA-256."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tracking_api.schemas.alerts import UtcDatetime

PhotoType = Literal["image/jpeg", "image/png", "image/webp"]
PHOTO_TYPES: tuple[PhotoType, ...] = ("image/jpeg", "image/png", "image/webp")
NOTE_MAX = 500

_PHOTO: dict[str, Any] = {
    "id": 12, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "content_type": "image/jpeg", "bytes": 482113, "width": 1600, "height": 1200,
    "taken_at": "2026-11-23T07:10:00Z", "lat": -3.3961, "lon": 38.5561, "accuracy_m": 12.0,
    "note": "seal wire cut, rear door", "alert": 42, "case": None, "shipment": 7,
    "uploaded_by": "officer-kemba-17", "uploaded_at": "2026-11-23T07:31:02Z",
}


class Photo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PHOTO]})

    id: int
    sha256: str = Field(description="SHA-256 of the stored bytes (hex); audited with `photo.attached`")
    content_type: PhotoType
    bytes: int = Field(description="Size of the image, bytes")
    width: int = Field(description="Pixels")
    height: int = Field(description="Pixels")
    taken_at: UtcDatetime = Field(description="When the phone took it (the phone's clock)")
    lat: float | None = Field(description="The phone's position (WGS 84 degrees) when taken, if it had one")
    lon: float | None
    accuracy_m: float | None = Field(description="The position's accuracy radius, metres")
    note: str | None
    alert: int | None = Field(description="The alert it is attached to (or null: a case's)")
    case: int | None = Field(description="The case it is attached to (or null: an alert's)")
    shipment: int
    uploaded_by: str = Field(description="Token subject of the officer who sent it")
    uploaded_at: UtcDatetime


class PhotoList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_PHOTO]}]})

    items: list[Photo] = Field(description="Oldest first")
