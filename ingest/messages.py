"""Parsing one MQTT message into typed records (``protocol.records``) plus
rejects, each with the reason it was refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from protocol.records import MIN_TS_MS, DeviceAck, Fix, SealEvent, Seq, Status, encode
from protocol.topics import RecordKind, TopicError, parse_topic, record_topic

__all__ = ["MIN_TS_MS", "DeviceAck", "Fix", "Limits", "Parsed", "Reject", "SealEvent", "Status", "encode",
           "parse_message", "refused_message", "refused_record"]


class _SeqOnly(msgspec.Struct):
    seq: Seq


@dataclass(frozen=True)
class Limits:
    """Plausibility limits applied at the MQTT boundary."""

    max_payload_bytes: int = 256 * 1024
    max_records: int = 1000
    max_future_ms: int = 300_000
    # 31 days: a tracker's store-and-forward holds at most 30 days, plus a day's margin.
    max_age_ms: int = 31 * 86_400_000


@dataclass(frozen=True)
class Reject:
    """A refused message or array element, kept untouched for the dead-letter store.

    ``digest`` identifies it within its message (topic, message bytes, position),
    so a redelivered message is kept once and equal elements of different
    messages are all kept.
    """

    topic: str
    device_id: str | None
    seq: int | None
    payload: bytes
    reason: str
    digest: bytes


def _reject(topic: str, message: bytes, where: str, device_id: str | None, seq: int | None,
            payload: bytes, reason: str) -> Reject:
    digest = hashlib.sha256(b"\x00".join((topic.encode(), message, where.encode()))).digest()
    return Reject(topic, device_id, seq, payload, reason, digest)


@dataclass
class Parsed:
    """What one MQTT message yields."""

    device_id: str | None
    fixes: list[Fix] = field(default_factory=list)
    seals: list[SealEvent] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def seqs(self) -> list[int]:
        """Seqs this message makes durable: stored records and dead-lettered ones."""
        out = [f.seq for f in self.fixes] + [s.seq for s in self.seals]
        out.extend(r.seq for r in self.rejects if r.seq is not None)
        return out


_MANY: dict[str, msgspec.json.Decoder[Any]] = {
    "pos": msgspec.json.Decoder(Fix | list[Fix]),
    "seal": msgspec.json.Decoder(SealEvent | list[SealEvent]),
}
_ONE: dict[str, msgspec.json.Decoder[Any]] = {
    "pos": msgspec.json.Decoder(Fix),
    "seal": msgspec.json.Decoder(SealEvent),
    "status": msgspec.json.Decoder(Status),
}
_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_SEQ_ONLY = msgspec.json.Decoder(_SeqOnly)

# msgspec raises DecodeError (and its ValidationError) on malformed or invalid
# JSON, UnicodeDecodeError on invalid UTF-8 inside a string (an overlong or
# surrogate encoding, a stray 0xff), RecursionError on pathologically deep nesting.
_BAD_INPUT = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def parse_message(topic: str, payload: bytes, now_ms: int, limits: Limits = Limits()) -> Parsed:
    """Parse one message; never raises on bad input (bad parts become rejects).

    ``now_ms`` is the server clock (epoch ms) that bounds plausible record times.
    """
    try:
        device_id, kind = parse_topic(topic)
    except TopicError as exc:
        return Parsed(None, rejects=[_reject(topic, payload, "", None, None, payload, str(exc))])
    out = Parsed(device_id)
    if len(payload) > limits.max_payload_bytes:
        reason = f"payload of {len(payload)} bytes exceeds limit {limits.max_payload_bytes}"
        out.rejects.append(_reject(topic, payload, "", device_id, None, payload, reason))
        return out
    window = _Window(now_ms - limits.max_age_ms, now_ms + limits.max_future_ms)
    if kind == "status":
        _one(out, kind, topic, payload, payload, window)
    else:
        _many(out, kind, topic, payload, limits.max_records, window)
    return out


def refused_message(topic: str, payload: bytes, reason: str, stage: str, seq: int | None = None) -> Parsed:
    """A whole message dead-lettered by a later ``stage`` of ingest (the database
    refused it, handling it failed); its digest differs from parse rejects."""
    try:
        device_id: str | None = parse_topic(topic)[0]
    except TopicError:
        device_id = None
    reject = _reject(topic, payload, stage, device_id, seq, payload, reason)
    return Parsed(device_id, rejects=[reject])


def refused_record(device_id: str, kind: RecordKind, record: Fix | SealEvent | Status, reason: str,
                   check: str) -> Reject:
    """A record that parsed but a later ``check`` of ingest refuses (signature, replay): kept
    as decoded, re-encoded, on its topic; a redelivery of it is kept once."""
    payload = encode(record)
    topic = record_topic(device_id, kind)
    return _reject(topic, payload, check, device_id, getattr(record, "seq", None), payload, reason)


@dataclass(frozen=True)
class _Window:
    """Plausible record times, epoch ms, inclusive."""

    earliest_ms: int
    latest_ms: int

    def holds(self, records: list[Any]) -> bool:
        return all(self.earliest_ms <= r.ts <= self.latest_ms for r in records)

    def refusal(self, ts: int) -> str | None:
        if ts > self.latest_ms:
            return f"ts {ts} is {(ts - self.latest_ms) / 1000:.0f} s beyond the allowed clock skew"
        if ts < self.earliest_ms:
            return f"ts {ts} is older than the maximum age by {(self.earliest_ms - ts) / 1000:.0f} s"
        return None


def _many(out: Parsed, kind: RecordKind, topic: str, payload: bytes, max_records: int, window: _Window) -> None:
    try:
        decoded = _MANY[kind].decode(payload)
        records = decoded if isinstance(decoded, list) else [decoded]
        if 0 < len(records) <= max_records and window.holds(records):
            _keep(out, records)
            return
    except _BAD_INPUT:
        pass
    # Slow path: find out what is wrong, element by element, keeping raw bytes.
    try:
        items = _RAW_ITEMS.decode(payload)
    except _BAD_INPUT:
        _one(out, kind, topic, payload, payload, window)
        return
    if not items or len(items) > max_records:
        reason = f"{kind}: array of {len(items)} records; expected 1 to {max_records}"
        out.rejects.append(_reject(topic, payload, "", out.device_id, None, payload, reason))
        return
    for index, item in enumerate(items):
        _one(out, kind, topic, payload, bytes(item), window, f"{kind}[{index}]")


def _one(out: Parsed, kind: RecordKind, topic: str, message: bytes, raw: bytes, window: _Window,
         where: str = "") -> None:
    """Decode one record object ``raw`` (of ``message``); keep it or reject it with the reason."""
    where = where or kind
    try:
        record = _ONE[kind].decode(raw)
    except _BAD_INPUT as exc:
        out.rejects.append(_reject(topic, message, where, out.device_id, _seq_of(raw), raw, f"{where}: {exc}"))
        return
    refusal = window.refusal(record.ts)
    if refusal is not None:
        seq = getattr(record, "seq", None)
        out.rejects.append(_reject(topic, message, where, out.device_id, seq, raw, f"{where}: {refusal}"))
        return
    _keep(out, [record])


def _keep(out: Parsed, records: list[Any]) -> None:
    for record in records:
        if isinstance(record, Fix):
            out.fixes.append(record)
        elif isinstance(record, SealEvent):
            out.seals.append(record)
        else:
            out.statuses.append(record)


def _seq_of(raw: bytes) -> int | None:
    """The seq of a refused record, when it has a valid one (it still counts for acks)."""
    try:
        return _SEQ_ONLY.decode(raw).seq
    except _BAD_INPUT:
        return None
