"""Replay detection (all devices, signing or not): a seq is one record. A record whose
seq the device has already used — stored with another ts or body, or at or below what
it has had acknowledged without being stored as this record (its counter went
backwards) — is refused; the very same record again is a duplicate, stored once.

Cheap on the common path: only records whose seq the ack state (``AckTracker``, loaded
in the batch's transaction) says is taken, or that appear twice in the batch, are looked
up, in one query per table.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.acks import AckTracker
from ingest.batch import Batch
from ingest.refusals import Refusal
from protocol.topics import RecordKind

_MS = "to_timestamp({} / 1000.0)"
_STORED_TS = """
(SELECT (extract(epoch FROM x.ts) * 1000)::int8 FROM (
    SELECT ts FROM fixes WHERE device_id = v.d AND seq = v.s
    UNION ALL SELECT ts FROM seal_events WHERE device_id = v.d AND seq = v.s) x LIMIT 1)
"""
_FIXES = f"""
SELECT v.i, {_STORED_TS} FROM unnest(%s::int4[], %s::text[], %s::int8[], %s::int8[], %s::float8[], %s::float8[],
                                     %s::float4[], %s::float4[], %s::float4[], %s::float4[])
    AS v(i, d, s, t, lat, lon, spd, hdg, acc, bat)
WHERE NOT EXISTS (
    SELECT 1 FROM fixes f WHERE f.device_id = v.d AND f.seq = v.s AND f.ts = {_MS.format("v.t")}
    AND f.lat = v.lat AND f.lon = v.lon AND f.spd IS NOT DISTINCT FROM v.spd AND f.hdg IS NOT DISTINCT FROM v.hdg
    AND f.acc IS NOT DISTINCT FROM v.acc AND f.bat IS NOT DISTINCT FROM v.bat)
ORDER BY v.i
"""
_SEALS = f"""
SELECT v.i, {_STORED_TS} FROM unnest(%s::int4[], %s::text[], %s::int8[], %s::int8[], %s::text[], %s::text[],
                                     %s::float8[], %s::float8[], %s::float4[])
    AS v(i, d, s, t, seal_id, event, lat, lon, bat)
WHERE NOT EXISTS (
    SELECT 1 FROM seal_events e WHERE e.device_id = v.d AND e.seq = v.s AND e.ts = {_MS.format("v.t")}
    AND e.seal_id = v.seal_id AND e.event = v.event AND e.lat IS NOT DISTINCT FROM v.lat
    AND e.lon IS NOT DISTINCT FROM v.lon AND e.bat IS NOT DISTINCT FROM v.bat)
ORDER BY v.i
"""
# Row columns compared (batch.py's order): everything but device, seq and received time.
_BODY = {"pos": slice(2, 9), "seal": slice(2, 8)}
_SQL = {"pos": _FIXES, "seal": _SEALS}


def find(cur: psycopg.Cursor[Any], batch: Batch, acks: AckTracker) -> list[Refusal]:
    """The replayed fixes and seal events of ``batch`` (``acks`` loaded for its devices)."""
    out: list[Refusal] = []
    first: dict[tuple[str, int], tuple[RecordKind, int]] = {}
    tables: tuple[tuple[RecordKind, list[Any]], ...] = (("pos", batch.fixes), ("seal", batch.seals))
    candidates: dict[RecordKind, list[int]] = {"pos": [], "seal": []}
    for kind, rows in tables:
        for index, row in enumerate(rows):
            key = (row[0], row[1])
            earlier = first.setdefault(key, (kind, index))
            if earlier != (kind, index):
                then = (batch.fixes if earlier[0] == "pos" else batch.seals)[earlier[1]]
                if earlier[0] != kind or then[_BODY[kind]] != row[_BODY[kind]]:
                    out.append(Refusal(kind, index, f"replayed record: {kind} seq {key[1]} ts {row[2]} comes "
                                                    f"twice in one batch with different contents (first ts "
                                                    f"{then[2]})", "replay"))
                    continue
            # The same record again shares its first copy's verdict (same seq): stored once, or refused.
            if acks.seen(key[0], key[1]):
                candidates[kind].append(index)
    for kind, rows in tables:
        if candidates[kind]:
            out += _stored(cur, kind, rows, candidates[kind], acks)
    return out


def _stored(cur: psycopg.Cursor[Any], kind: RecordKind, rows: list[Any], indexes: list[int],
            acks: AckTracker) -> list[Refusal]:
    """Refusals for the candidate rows not stored as exactly this record."""
    picked = [rows[i] for i in indexes]
    columns = [list(c) for c in zip(*(r[:_BODY[kind].stop] for r in picked), strict=True)]
    refused = cur.execute(_SQL[kind], (indexes, *columns)).fetchall()
    out = []
    for index, stored_ts in refused:
        device_id, seq, ts = rows[index][:3]
        if stored_ts is not None:
            reason = (f"replayed record: {kind} seq {seq} ts {ts} of device {device_id}; seq {seq} is already "
                      f"stored with ts {stored_ts} and other contents")
        else:
            reason = (f"replayed record: {kind} seq {seq} ts {ts} of device {device_id}; the counter went back "
                      f"to a seq already used (acknowledged up to {acks.watermark(device_id)}, or refused before)")
        out.append(Refusal(kind, index, reason, "replay"))
    return out
