"""Standard Webhooks symmetric signatures: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
with a secret given as ``whsec_<base64>`` (the Standard Webhooks specification, "Signature scheme";
its reference library, libraries/python/standardwebhooks/webhooks.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
TOLERANCE_S = 300  # a receiver refuses a timestamp further than this from its clock (the library's 5 min)


class SignatureError(ValueError):
    """A webhook that does not verify; the message says why (never which signature was expected)."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` (``whsec_`` optional, padding optional, as the reference library reads it)."""
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"secret is not whsec_ followed by base64: {exc}") from exc
    if not key:
        raise SignatureError("secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one message: ``v1,<base64>``. ``timestamp`` is Unix seconds."""
    if "." in msg_id:
        raise SignatureError(f"webhook-id {msg_id!r} contains a full stop (the signed content is dot-delimited)")
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body)}


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Checks a received webhook: the three headers present, a timestamp within ``TOLERANCE_S``
    of ``now`` (Unix seconds, default the clock) and one of the space-separated ``v1``
    signatures matching (compared in constant time). ``SignatureError`` otherwise."""
    lowered = {k.lower(): v for k, v in received.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise SignatureError(f"webhook-timestamp {stamp!r} is not an integer") from exc
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        raise SignatureError(f"webhook-timestamp {timestamp} is more than {TOLERANCE_S} s from now")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no v1 signature matches")
