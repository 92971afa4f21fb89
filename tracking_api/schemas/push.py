"""Web Push subscriptions as browsers give them (``PushSubscription.toJSON()``), and the VAPID key."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

ENDPOINT_MAX = 2048
# Printable ASCII without spaces: push services' URLs are ASCII, and this keeps NUL
# and control characters (which PostgreSQL text refuses) out of the database.
ENDPOINT_PATTERN = r"^[!-~]+$"
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"  # a catalogue's file name (tracking_api.i18n)
POINT_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_BYTES = 16

_PUBLIC_KEY = "BG_FuDmrZJirVzrJWW-YtqQZqVFNehMNAxAQhCdnSunZAVo_UIawvYachSj0zm5eSzNR6y2TJq47qPW5wEc8RjY"
_VAPID_KEY = "BCXzg5I-9be4YWd7oVw5tcvx62vurYr-hC7oYjcZQB4Lnc-OaUqvWtJkbRexWzKCMAP-XIdOltiiCuVemfy3bnM"
_SUBSCRIPTION: dict[str, Any] = {
    "endpoint": "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABnV3x7kZ0Qm2c4WlHf9Rk1",
    "expirationTime": None,
    "keys": {"p256dh": _PUBLIC_KEY, "auth": "qoKqJLzukL1haaBjQcUoQw"},
}


def b64url_bytes(value: str, name: str) -> bytes:
    """``value`` decoded as base64url (padded or not); ValueError naming ``name`` otherwise."""
    if not _B64URL.fullmatch(value):
        raise ValueError(f"{name} is not base64url")
    stripped = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not base64url") from exc


def _p256dh(value: str) -> str:
    raw = b64url_bytes(value, "keys.p256dh")
    if len(raw) != POINT_BYTES:
        raise ValueError(f"keys.p256dh is {len(raw)} bytes, not the {POINT_BYTES} of an uncompressed P-256 point")
    try:
        # Refused now rather than at the first push: the payload is encrypted to this point.
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise ValueError("keys.p256dh is not a point on the P-256 curve") from exc
    return value


def _auth(value: str) -> str:
    raw = b64url_bytes(value, "keys.auth")
    if len(raw) != AUTH_BYTES:
        raise ValueError(f"keys.auth is {len(raw)} bytes, not {AUTH_BYTES}")
    return value


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: Annotated[str, Field(min_length=1, max_length=128,
                                 description="The browser's P-256 public key, uncompressed, base64url"),
                      AfterValidator(_p256dh)]
    auth: Annotated[str, Field(min_length=1, max_length=64, description="16-byte authentication secret, base64url"),
                    AfterValidator(_auth)]


class PushSubscriptionRequest(BaseModel):
    """The browser's ``PushSubscription`` as JSON, unchanged, and the language of its notifications."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SUBSCRIPTION]})

    endpoint: str = Field(min_length=1, max_length=ENDPOINT_MAX, pattern=ENDPOINT_PATTERN,
                          description="The push service URL of this browser (https)")
    # Accepted as browsers send it, not used: a push service tells of an expired subscription with 404/410.
    expirationTime: float | None = Field(default=None, ge=0, allow_inf_nan=False,  # noqa: N815 - the browser's name
                                         description="Milliseconds since the epoch, or null")
    keys: SubscriptionKeys
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN, description=(
        "The notifications' language: a catalogue's code (`GET /config.json` lists them); without it, the "
        "request's `Accept-Language` best match, else English"))


class Subscribed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 12, "region": "KE-WEST", "language": "fr"}]})

    id: int = Field(description="The subscription's id")
    region: str | None = Field(description="The region whose alert openings are pushed (an officer's); "
                                           "null: every region")
    language: str = Field(description="The language its notifications are written in")


class VapidPublicKey(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"public_key": _VAPID_KEY}]})

    public_key: str = Field(description="The uncompressed P-256 point, base64url: pass it (decoded to bytes) "
                                        "as `applicationServerKey` to `pushManager.subscribe`")
