"""Signed records (docs/protocol.md, "Signed records"): HMAC-SHA256 with a
per-device 32-byte key over a canonical encoding of the record.

Canonical bytes: ``ctt/v1/sig\\n{device id}\\n{kind}\\n`` followed by the record
as JSON without ``sig``, keys sorted, no whitespace, absent fields omitted,
numbers as msgspec writes them (shortest round trip). ``sig`` is the MAC in
base64url without padding (43 characters). Pure: msgspec and the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TypeVar

import msgspec

from protocol.records import Fix, SealEvent, Status

KEY_BYTES = 32
DOMAIN = b"ctt/v1/sig\n"
Signable = TypeVar("Signable", bound=Fix | SealEvent | Status)
_SORTED = msgspec.json.Encoder(order="sorted")


class SigningKeyError(ValueError):
    """A signing key that is not 32 bytes."""


def check_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise SigningKeyError(f"signing key of {len(key)} bytes; expected {KEY_BYTES}")
    return key


def canonical(device_id: str, kind: str, record: Fix | SealEvent | Status) -> bytes:
    """The bytes a signature covers: device id, kind (``pos``, ``seal``, ``status``) and the record without ``sig``."""
    body = _SORTED.encode(msgspec.structs.replace(record, sig=None))
    return b"".join((DOMAIN, device_id.encode(), b"\n", kind.encode(), b"\n", body))


def mac(key: bytes, device_id: str, kind: str, record: Fix | SealEvent | Status) -> str:
    """The signature of ``record``: base64url (no padding) of HMAC-SHA256(key, canonical bytes)."""
    digest = hmac.new(check_key(key), canonical(device_id, kind, record), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(key: bytes, device_id: str, kind: str, record: Signable) -> Signable:
    """``record`` with its ``sig``, as firmware sends it."""
    return msgspec.structs.replace(record, sig=mac(key, device_id, kind, record))


def verify(key: bytes, device_id: str, kind: str, record: Fix | SealEvent | Status) -> bool:
    """Whether ``record.sig`` is the signature of ``record`` under ``key`` (constant-time compare)."""
    if record.sig is None:
        return False
    return hmac.compare_digest(record.sig.encode(), mac(key, device_id, kind, record).encode())


def encode_key(key: bytes) -> str:
    """A key as provisioning hands it to the device: base64url without padding."""
    return base64.urlsafe_b64encode(check_key(key)).rstrip(b"=").decode()


def decode_key(text: str) -> bytes:
    """The key of ``encode_key``'s text."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError as exc:
        raise SigningKeyError(f"signing key {text[:8]!r}... is not base64url: {exc}") from exc
    return check_key(raw)
