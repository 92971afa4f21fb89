"""The payload contract: what is accepted, what is refused and why."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.messages import Limits, parse_message
from protocol.records import Fix, SealEvent, Status, encode
from tests.ingest import hostile

NOW = 1_790_000_000_000
POS = "ctt/v1/dev/TRK-1/pos"

fixes = st.builds(
    Fix,
    seq=st.integers(0, 2**63 - 1),
    ts=st.integers(NOW - Limits().max_age_ms, NOW),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    spd=st.none() | st.floats(0, 400),
    hdg=st.none() | st.floats(0, 360),
)


@given(st.binary(max_size=2000))
def test_any_bytes_yield_records_or_rejects_never_an_exception(payload: bytes) -> None:
    for topic in (POS, "ctt/v1/dev/TRK-1/seal", "ctt/v1/dev/TRK-1/status"):
        parsed = parse_message(topic, payload, NOW)
        assert parsed.fixes or parsed.seals or parsed.statuses or parsed.rejects
        assert all(r.reason for r in parsed.rejects)


@given(st.lists(fixes, min_size=1, max_size=60))
def test_valid_fixes_round_trip_singly_and_as_arrays(records: list[Fix]) -> None:
    as_array = parse_message(POS, encode(records), NOW)
    assert as_array.fixes == records and not as_array.rejects
    single = parse_message(POS, encode(records[0]), NOW)
    assert single.fixes == records[:1]


@pytest.mark.parametrize(
    ("payload", "reason_part"),
    [
        (b'{"seq":1,"ts":1790000000000,"lat":90.5,"lon":0}', "$.lat"),
        (b'{"seq":1,"ts":1790000000000,"lat":0,"lon":-181}', "$.lon"),
        (b'{"seq":-1,"ts":1790000000000,"lat":0,"lon":0}', "$.seq"),
        (b'{"seq":1.5,"ts":1790000000000,"lat":0,"lon":0}', "$.seq"),
        (b'{"seq":1,"ts":"1790000000000","lat":0,"lon":0}', "$.ts"),
        (b'{"seq":1,"ts":946684799999,"lat":0,"lon":0}', "$.ts"),
        (b'{"seq":1,"ts":1790000000000,"lat":NaN,"lon":0}', "malformed"),
        (b'{"seq":1,"ts":1790000000000,"lat":1e400,"lon":0}', "$.lat"),
        (b'{"seq":1,"ts":1790000000000,"lat":0,"lon":0,"spd":-3}', "$.spd"),
        (b'{"seq":1,"ts":1790000000000,"lat":0,"lon":0,"v":2}', "$.v"),
        (b'{"ts":1790000000000,"lat":0,"lon":0}', "seq"),
        (b'{"seq":1,"ts":1790000300001,"lat":0,"lon":0}', "clock skew"),
        (b"[]", "array of 0"),
        (b"not json", "malformed"),
    ],
)
def test_refused_fix_names_the_bad_value(payload: bytes, reason_part: str) -> None:
    parsed = parse_message(POS, payload, NOW)
    assert not parsed.fixes
    assert len(parsed.rejects) == 1
    assert reason_part in parsed.rejects[0].reason
    assert parsed.rejects[0].payload == payload


def test_rejected_record_keeps_its_seq_for_acks() -> None:
    parsed = parse_message(POS, b'{"seq":7,"ts":1790000000000,"lat":99,"lon":0}', NOW)
    assert parsed.rejects[0].seq == 7
    assert parsed.seqs() == [7]


def test_limits_on_size_and_array_length() -> None:
    one = encode(Fix(seq=1, ts=NOW, lat=0, lon=0))
    limits = Limits(max_payload_bytes=len(one) * 3, max_records=2)
    big = parse_message(POS, b"[" + b",".join([one] * 3) + b"]", NOW, limits)
    assert "exceeds limit" in big.rejects[0].reason
    many = parse_message(POS, b"[" + b",".join([one] * 3) + b"]", NOW, Limits(max_records=2))
    assert "array of 3" in many.rejects[0].reason and not many.fixes


def test_deep_nesting_is_refused_not_crashing() -> None:
    payload = b'{"seq":1,"ts":1790000000000,"lat":0,"lon":0,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    parsed = parse_message(POS, payload, NOW)
    assert not parsed.fixes and "recursion" in parsed.rejects[0].reason


def test_unknown_topic_is_refused_with_the_topic_named() -> None:
    parsed = parse_message("ctt/v1/dev/TRK 1/pos", b"{}", NOW)
    assert parsed.device_id is None
    assert "'ctt/v1/dev/TRK 1/pos'" in parsed.rejects[0].reason


def test_seal_event_validation() -> None:
    ok = SealEvent(seq=3, ts=NOW, seal_id="KE-1", event="cut", lat=1.0, lon=2.0)
    assert parse_message("ctt/v1/dev/S1/seal", encode(ok), NOW).seals == [ok]
    bad = json.dumps({"seq": 3, "ts": NOW, "seal_id": "KE-1", "event": "melted"}).encode()
    parsed = parse_message("ctt/v1/dev/S1/seal", bad, NOW)
    assert "$.event" in parsed.rejects[0].reason


def test_equal_bad_elements_of_different_messages_have_different_digests() -> None:
    a = parse_message(POS, b"[null]", NOW).rejects[0]
    b = parse_message(POS, b"[null,null]", NOW).rejects
    assert len({a.digest, b[0].digest, b[1].digest}) == 3
    assert parse_message(POS, b"[null]", NOW).rejects[0].digest == a.digest  # redelivery: same


_INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\x80"]


@pytest.mark.parametrize("bad", _INVALID_UTF8)
@pytest.mark.parametrize(
    ("topic", "template"),
    [
        ("ctt/v1/dev/S1/status", b'{"ts":1790000000000,"state":"online","fw":"%s"}'),
        ("ctt/v1/dev/S1/status", b'{"ts":1790000000000,"state":"%s"}'),
        ("ctt/v1/dev/S1/seal", b'{"seq":4,"ts":1790000000000,"seal_id":"%s","event":"cut"}'),
        ("ctt/v1/dev/S1/seal", b'{"seq":4,"ts":1790000000000,"seal_id":"KE-1","event":"%s"}'),
        ("ctt/v1/dev/S1/seal", b'[{"seq":4,"ts":1790000000000,"seal_id":"%s","event":"cut"}]'),
        (POS, b'{"seq":4,"ts":1790000000000,"lat":0,"lon":0,"note":"%s"}'),
        (POS, b'{"seq":4,"ts":1790000000000,"lat":0,"lon":0,"%s":1}'),
    ],
)
def test_invalid_utf8_inside_a_string_is_refused_with_a_reason(topic: str, template: bytes, bad: bytes) -> None:
    payload = template % bad
    parsed = parse_message(topic, payload, NOW)
    if parsed.rejects:  # an unknown field may be skipped unread: then the record is valid
        assert len(parsed.rejects) == 1 and parsed.rejects[0].reason
        assert not (parsed.fixes or parsed.seals or parsed.statuses)
    else:
        assert topic == POS and len(parsed.fixes) == 1


def _expected_outcomes(kind: str, payload: bytes, limits: Limits) -> int:
    """How many kept records plus rejects a message must yield: one per element of
    an array of acceptable length (each judged alone), else one for the message."""
    if kind == "status":
        return 1
    try:
        items = msgspec.json.decode(payload, type=list[msgspec.Raw])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return 1
    return len(items) if 0 < len(items) <= limits.max_records else 1


@settings(max_examples=1500, deadline=None)
@given(hostile.messages(NOW))
def test_hostile_payloads_are_kept_or_refused_with_a_reason_never_raised(message: tuple[str, bytes]) -> None:
    kind, payload = message
    limits = Limits()
    parsed = parse_message(f"ctt/v1/dev/TRK-1/{kind}", payload, NOW, limits)
    kept: list[Fix | SealEvent | Status] = [*parsed.fixes, *parsed.seals, *parsed.statuses]
    assert len(kept) + len(parsed.rejects) == _expected_outcomes(kind, payload, limits)
    assert all(r.reason.strip() and r.device_id == "TRK-1" for r in parsed.rejects)
    for r in kept:  # what is kept is what the database and the engine can take
        assert NOW - limits.max_age_ms <= r.ts <= NOW + limits.max_future_ms
        for text in (getattr(r, "seal_id", None), getattr(r, "fw", None)):
            assert text is None or (text.encode() and "\x00" not in text)
    assert len({r.digest for r in parsed.rejects}) == len(parsed.rejects)


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
def test_time_window_refuses_records_older_than_the_maximum_age(kind: str) -> None:
    limits = Limits()
    fields = {"pos": b'"seq":5,"lat":0,"lon":0', "seal": b'"seq":5,"seal_id":"KE-1","event":"cut"',
              "status": b'"state":"online"'}[kind]
    oldest = NOW - limits.max_age_ms
    ok = parse_message(f"ctt/v1/dev/D1/{kind}", b'{"ts":%d,%s}' % (oldest, fields), NOW)
    assert not ok.rejects
    old = parse_message(f"ctt/v1/dev/D1/{kind}", b'{"ts":%d,%s}' % (oldest - 1, fields), NOW)
    assert len(old.rejects) == 1 and "older than the maximum age" in old.rejects[0].reason
    if kind != "status":
        assert old.seqs() == [5]  # still counts for the device's ack
