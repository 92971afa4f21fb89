"""Hostile device payloads as Hypothesis strategies, shared by the parser's
property test and the broker-and-process sample.

For each record kind: structurally valid JSON objects (and, for pos and seal,
arrays of them) whose fields hold arbitrary bytes in strings (invalid UTF-8,
lone surrogate escapes, NUL, overlong encodings), numbers at and one past every
limit of ``protocol.records`` and of ingest's time window, or a value of the
wrong type; plus raw random bytes.
"""

from __future__ import annotations

import json
import math

from hypothesis import strategies as st

from ingest.messages import Limits
from protocol.records import MAX_INT64, MIN_TS_MS

Fragment = st.SearchStrategy[bytes]
DEFAULT_LIMITS = Limits()

# Bytes a broken or tampered device puts inside a JSON string.
NASTY = [
    b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    rb"\ud800", rb"\udc00", rb"\udbff\udfff", rb"\ud800\u0041", b"\x00", rb"\u0000", b"\\", rb"\"", b"\x1f",
    b"\xe2\x80\xae",  # right-to-left override: valid UTF-8, hostile on screen
]
WRONG_TYPES = [b"null", b"true", b'"1"', b"[]", b"{}", b"[1]", b"1.0", b"-0.0", b"1e400", b"NaN", b'""']


def nasty_string() -> Fragment:
    part = st.one_of(st.sampled_from(NASTY), st.binary(max_size=4), st.text(max_size=4).map(str.encode))
    return st.lists(part, max_size=6).map(lambda parts: b'"' + b"".join(parts) + b'"')


def _number(value: float) -> bytes:
    return json.dumps(value).encode()


def _around(low: float, high: float) -> list[bytes]:
    """The limits of a float range and the nearest values past them."""
    return [_number(v) for v in (low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf))]


def _int_around(low: int, high: int) -> list[bytes]:
    return [str(v).encode() for v in (low, high, low - 1, high + 1)]


def _fields(now_ms: int, limits: Limits) -> dict[str, tuple[Fragment, list[bytes]]]:
    """Per field: valid values, and the values at and one past each limit."""
    earliest, latest = now_ms - limits.max_age_ms, now_ms + limits.max_future_ms
    text64 = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1, max_size=64)
    floats = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "spd": (0.0, 400.0), "hdg": (0.0, 360.0),
              "acc": (0.0, 100_000.0), "bat": (0.0, 100.0)}
    fields: dict[str, tuple[Fragment, list[bytes]]] = {
        name: (st.floats(low, high).map(_number), _around(low, high)) for name, (low, high) in floats.items()
    }
    fields.update({
        # Valid seqs stay below 1e9: tests send a known-good record above them.
        "seq": (st.integers(0, 10**9).map(_number), _int_around(0, MAX_INT64)),
        "ts": (st.integers(earliest + 60_000, now_ms).map(_number),
               _int_around(earliest, latest) + _int_around(MIN_TS_MS, MAX_INT64)),
        "v": (st.just(b"1"), [b"0", b"2"]),
        "buffered": (st.integers(0, 2**31 - 1).map(_number), _int_around(0, 2**31 - 1)),
        "seal_id": (text64.map(lambda s: json.dumps(s).encode()), [b'""', json.dumps("x" * 65).encode()]),
        "fw": (text64.map(lambda s: json.dumps(s).encode()), [b'""', json.dumps("x" * 65).encode()]),
        "event": (st.sampled_from(["armed", "closed", "opened", "tampered", "cut", "low_battery"]).map(
            lambda s: json.dumps(s).encode()), [b'"Cut"', b'"cut "']),
        "state": (st.sampled_from(["online", "offline", "lost"]).map(lambda s: json.dumps(s).encode()),
                  [b'"Online"', b'"lost\\u0000"']),
    })
    return fields


KINDS: dict[str, tuple[list[str], list[str]]] = {  # required fields, optional fields
    "pos": (["seq", "ts", "lat", "lon"], ["spd", "hdg", "acc", "bat", "v"]),
    "seal": (["seq", "ts", "seal_id", "event"], ["lat", "lon", "bat", "v"]),
    "status": (["ts", "state"], ["fw", "bat", "buffered"]),
}


def _hostile(limits: list[bytes]) -> Fragment:
    return st.one_of(st.sampled_from(limits), st.sampled_from(WRONG_TYPES), nasty_string(), st.just(b""))


@st.composite
def _record(draw: st.DrawFn, kind: str, now_ms: int, limits: Limits) -> bytes:
    fields = _fields(now_ms, limits)
    required, optional = KINDS[kind]
    names = required + draw(st.lists(st.sampled_from(optional), unique=True))
    values = {name: draw(fields[name][0]) for name in names}
    # Mostly one or two bad fields: a record bad everywhere tests only the first check.
    for name in draw(st.lists(st.sampled_from(required + optional), unique=True, max_size=2)):
        values[name] = draw(_hostile(fields[name][1]))  # b"": the field is left out
    pairs = [json.dumps(name).encode() + b":" + value for name, value in values.items() if value]
    for _ in range(draw(st.integers(0, 2))):  # unknown fields are skipped, but must be read safely
        pairs.append(draw(nasty_string()) + b":" + draw(st.sampled_from(WRONG_TYPES) | nasty_string()))
    return b"{" + b",".join(draw(st.permutations(pairs))) + b"}"


def record(kind: str, now_ms: int, limits: Limits = DEFAULT_LIMITS) -> Fragment:
    """One JSON object of ``kind``: valid but for one or two fields at or past a
    limit, of the wrong type, holding a nasty string or missing; sometimes with
    unknown fields."""
    return _record(kind, now_ms, limits)


def message(kind: str, now_ms: int, limits: Limits = DEFAULT_LIMITS) -> Fragment:
    """One MQTT payload for ``kind``'s topic."""
    one = record(kind, now_ms, limits)
    if kind == "status":
        return st.one_of(one, one, one, st.binary(max_size=200))
    element = st.one_of(one, one, one, st.sampled_from(WRONG_TYPES), nasty_string())
    array = st.lists(element, min_size=1, max_size=6).map(lambda items: b"[" + b",".join(items) + b"]")
    return st.one_of(one, array, array, st.binary(max_size=200))


def messages(now_ms: int, limits: Limits = DEFAULT_LIMITS) -> st.SearchStrategy[tuple[str, bytes]]:
    """(kind, payload) for any kind."""
    return st.one_of(*(st.tuples(st.just(kind), message(kind, now_ms, limits)) for kind in KINDS))


def known(now_ms: int) -> list[tuple[str, bytes]]:
    """Hand-picked cases every sample carries: the ones that once stopped ingest."""
    return [
        ("status", b'{"ts":%d,"state":"online","fw":"2.\xff"}' % now_ms),
        ("status", b'{"ts":%d,"state":"on\xc0\xafline"}' % now_ms),
        ("seal", b'{"seq":1,"ts":%d,"seal_id":"KE-\xed\xa0\x80","event":"cut"}' % now_ms),
        ("seal", b'[{"seq":2,"ts":%d,"seal_id":"KE-1","event":"cu\xf4\x90\x80\x80t"}]' % now_ms),
        ("seal", b'{"seq":3,"ts":%d,"seal_id":"KE-\\ud800","event":"cut"}' % now_ms),
        ("pos", b'{"seq":4,"ts":%d,"lat":0,"lon":0,"note":"\xff"}' % now_ms),
        ("pos", b'{"seq":5,"ts":%d,"lat":0,"lon":0,"x":' % now_ms + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ]
