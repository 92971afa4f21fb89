"""The signing scheme of docs/protocol.md ("Signed records"), against its test vector."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest

from protocol.records import Fix, SealEvent, Status
from protocol.signing import SigningKeyError, canonical, decode_key, encode_key, sign, verify

# The vector printed in docs/protocol.md.
KEY = bytes(range(32))
KEY_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
RECORD = SealEvent(seq=42, ts=1767225600000, seal_id="SEAL-0001", event="armed", lat=-3.9975, lon=39.6681, v=1)
CANONICAL = (b'ctt/v1/sig\neseal-0001\nseal\n{"event":"armed","lat":-3.9975,"lon":39.6681,'
             b'"seal_id":"SEAL-0001","seq":42,"ts":1767225600000,"v":1}')
SIGNATURE = "l7ULJSTayxKgz12__MtDdYRRXZ-OyVQIY4lDV9O4tH0"
WIRE = (b'{"seq":42,"ts":1767225600000,"seal_id":"SEAL-0001","event":"armed","lat":-3.9975,"lon":39.6681,"v":1,'
        b'"sig":"l7ULJSTayxKgz12__MtDdYRRXZ-OyVQIY4lDV9O4tH0"}')


def test_the_documented_vector() -> None:
    assert encode_key(KEY) == KEY_TEXT and decode_key(KEY_TEXT) == KEY
    assert canonical("eseal-0001", "seal", RECORD) == CANONICAL
    independent = base64.urlsafe_b64encode(hmac.new(KEY, CANONICAL, hashlib.sha256).digest()).rstrip(b"=").decode()
    assert independent == SIGNATURE
    signed = sign(KEY, "eseal-0001", "seal", RECORD)
    assert signed.sig == SIGNATURE
    assert msgspec.json.encode(signed) == WIRE


def test_the_wire_form_verifies_whatever_its_key_order_and_spacing() -> None:
    shuffled = (b'{ "sig": "l7ULJSTayxKgz12__MtDdYRRXZ-OyVQIY4lDV9O4tH0", "v": 1, "lon": 39.6681, "lat": -3.9975,'
                b' "event": "armed", "seal_id": "SEAL-0001", "ts": 1767225600000, "seq": 42 }')
    assert verify(KEY, "eseal-0001", "seal", msgspec.json.decode(shuffled, type=SealEvent))


@pytest.mark.parametrize("changed", [
    {"seq": 43}, {"ts": 1767225600001}, {"event": "opened"}, {"lat": -3.9976}, {"seal_id": "SEAL-0002"},
])
def test_a_changed_field_breaks_the_signature(changed: dict[str, object]) -> None:
    signed = sign(KEY, "eseal-0001", "seal", RECORD)
    assert not verify(KEY, "eseal-0001", "seal", msgspec.structs.replace(signed, **changed))


def test_the_device_kind_and_key_are_covered() -> None:
    signed = sign(KEY, "eseal-0001", "seal", RECORD)
    assert verify(KEY, "eseal-0001", "seal", signed)
    assert not verify(KEY, "eseal-0002", "seal", signed)
    assert not verify(KEY, "eseal-0001", "pos", signed)
    assert not verify(bytes(32), "eseal-0001", "seal", signed)
    assert not verify(KEY, "eseal-0001", "seal", RECORD)  # unsigned


def test_fixes_and_statuses_sign_too() -> None:
    fix = sign(KEY, "trk-1", "pos", Fix(seq=0, ts=1767225600000, lat=1.5, lon=30.25, spd=72.0))
    status = sign(KEY, "trk-1", "status", Status(ts=1767225600000, state="online", fw="sim-1.0"))
    assert verify(KEY, "trk-1", "pos", fix) and verify(KEY, "trk-1", "status", status)


def test_a_key_of_the_wrong_length_is_refused_naming_it() -> None:
    with pytest.raises(SigningKeyError, match="16 bytes"):
        sign(bytes(16), "d", "seal", RECORD)
    with pytest.raises(SigningKeyError, match="not base64url"):
        decode_key("!!!!")
