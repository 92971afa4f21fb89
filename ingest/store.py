"""TimescaleDB writes for ingest (the only psycopg import in ``ingest``).

One batch is one transaction: binary COPY into temporary staging tables, then
``INSERT ... ON CONFLICT DO NOTHING`` into the hypertables, so a redelivered
message is stored once. Device ack watermarks are saved in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import psycopg
import structlog

from ingest import metrics, replays, seal_numbers, signatures
from ingest.acks import AckPlan, AckTracker
from ingest.batch import Batch
from ingest.countries import CountryCache
from ingest.messages import Reject
from ingest.refusals import refuse
from ingest.session import Session

log = structlog.get_logger("ingest.store")
T = TypeVar("T")
# Runs in the batch's transaction after the records are written, with the
# (device_id, seq) keys of the fixes and seal events this batch newly stored, and the
# devices another worker wrote since this one last did (their cached state is stale).
Hook = Callable[[psycopg.Cursor[Any], set[tuple[str, int]], set[tuple[str, int]], frozenset[str]], T]

# The exception classes of an unreachable database or network, for jobs that
# simply postpone themselves; a batch write decides with ``is_transient``.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)

# SQLSTATEs after which the same transaction may succeed when retried: the server
# shutting down or starting (57P01-57P03), too many connections (53300), a lost
# serialization race or deadlock (40001, 40P01), read-only after a failover (25006).
# Class 08 (connection exceptions) too. Every other SQLSTATE, including the rest of
# class 53 (out of memory, too many locks in one transaction), refuses the data.
_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01", "25006"})


# Whatever the database or its driver raises.
DATABASE_ERRORS: tuple[type[Exception], ...] = (psycopg.Error,)


def describe(exc: BaseException) -> str:
    """An exception as a dead letter's reason: its type, its message, and the
    SQLSTATE when the database gave one."""
    text = f"{type(exc).__name__}: {str(exc).strip()}"
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    return f"{text} (SQLSTATE {state})" if state else text


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same write may succeed. An error without a SQLSTATE is
    transient only if it is about the connection (connecting, a dropped socket)."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, TRANSIENT_ERRORS)
    return state.startswith("08") or state in _TRANSIENT_STATES

_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS stage_fixes (
    device_id text, seq int8, ts_ms int8, lat float8, lon float8,
    spd float4, hdg float4, acc float4, bat float4, received_ms int8, country text
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS stage_latest (LIKE stage_fixes) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS stage_seals (
    device_id text, seq int8, ts_ms int8, seal_id text, event text,
    lat float8, lon float8, bat float4, received_ms int8
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS stage_status (
    device_id text, ts_ms int8, state text, fw text, bat float4, buffered int4, received_ms int8
) ON COMMIT DELETE ROWS;
"""
_FIX_TYPES = ["text", "int8", "int8", "float8", "float8", "float4", "float4", "float4", "float4", "int8", "text"]
_SEAL_TYPES = ["text", "int8", "int8", "text", "text", "float8", "float8", "float4", "int8"]
_STATUS_TYPES = ["text", "int8", "text", "text", "float4", "int4", "int8"]

_MS = "to_timestamp({} / 1000.0)"

_INSERT_FIXES = f"""
INSERT INTO fixes (device_id, seq, ts, lat, lon, spd, hdg, acc, bat, received_at, country)
SELECT device_id, seq, {_MS.format("ts_ms")}, lat, lon, spd, hdg, acc, bat, {_MS.format("received_ms")}, country
FROM stage_fixes ON CONFLICT DO NOTHING
"""
_RETURN_KEYS = " RETURNING device_id, seq"
_UPSERT_LATEST = f"""
INSERT INTO latest_positions (device_id, seq, ts, lat, lon, spd, hdg, acc, bat, received_at, country)
SELECT device_id, seq, {_MS.format("ts_ms")}, lat, lon, spd, hdg, acc, bat, {_MS.format("received_ms")}, country
FROM stage_latest
ON CONFLICT (device_id) DO UPDATE SET
    seq = excluded.seq, ts = excluded.ts, lat = excluded.lat, lon = excluded.lon, spd = excluded.spd,
    hdg = excluded.hdg, acc = excluded.acc, bat = excluded.bat, received_at = excluded.received_at,
    country = excluded.country
WHERE (latest_positions.ts, latest_positions.seq) < (excluded.ts, excluded.seq)
"""
_INSERT_SEALS = f"""
INSERT INTO seal_events (device_id, seq, ts, seal_id, event, lat, lon, bat, received_at)
SELECT device_id, seq, {_MS.format("ts_ms")}, seal_id, event, lat, lon, bat, {_MS.format("received_ms")}
FROM stage_seals ON CONFLICT DO NOTHING
"""
_INSERT_STATUS = f"""
INSERT INTO device_status (device_id, ts, state, fw, bat, buffered, received_at)
SELECT device_id, {_MS.format("ts_ms")}, state, fw, bat, buffered, {_MS.format("received_ms")}
FROM stage_status ON CONFLICT DO NOTHING
"""
# The device's current state is the status received last (a Last Will carries
# the fix time of the connect it was registered with, older than later statuses).
_CURRENT_STATE = f"""
UPDATE devices d SET state = s.state, state_ts = {_MS.format("s.ts_ms")}, fw = coalesce(s.fw, d.fw),
       bat = coalesce(s.bat, d.bat), buffered = s.buffered
FROM (SELECT DISTINCT ON (device_id) * FROM stage_status ORDER BY device_id, received_ms DESC, ts_ms DESC) s
WHERE d.device_id = s.device_id
"""
# The batch's first statement: each device's row, locked in device id order (concurrent
# workers cannot deadlock) until commit, so one device's batches commit one at a time
# whichever workers the broker gave them to. The version tells whose cache is current.
_LOCK_DEVICES = f"""
INSERT INTO devices (device_id, first_seen, last_seen)
SELECT id, {_MS.format("ms")}, {_MS.format("ms")}
FROM unnest(%s::text[], %s::int8[]) WITH ORDINALITY AS v(id, ms, n) ORDER BY n
ON CONFLICT (device_id) DO UPDATE SET last_seen = greatest(devices.last_seen, excluded.last_seen),
    version = devices.version + 1
RETURNING device_id, version
"""
_SAVE_ACKS = """
UPDATE devices SET acked_seq = v.seq
FROM unnest(%s::text[], %s::int8[]) AS v(id, seq)
WHERE devices.device_id = v.id AND devices.acked_seq < v.seq
"""
_INSERT_DEAD = f"""
INSERT INTO dead_letters (received_at, topic, device_id, seq, payload, payload_length, payload_sha256, reason, digest)
VALUES ({_MS.format("%s")}, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (digest) DO NOTHING
"""
_LOAD_WATERMARKS = "SELECT device_id, acked_seq FROM devices WHERE device_id = ANY(%s)"
_LOAD_STORED_ABOVE = """
SELECT t.device_id, t.seq FROM devices d
JOIN LATERAL (
    SELECT device_id, seq FROM fixes WHERE device_id = d.device_id AND seq > d.acked_seq
    UNION ALL SELECT device_id, seq FROM seal_events WHERE device_id = d.device_id AND seq > d.acked_seq
    UNION ALL SELECT device_id, seq FROM dead_letters WHERE device_id = d.device_id AND seq > d.acked_seq
) t ON true
WHERE d.device_id = ANY(%s)
"""


class Store:
    """A single connection that writes batches; reconnects on demand.

    Several workers may write the same device (docs/scaling.md): each batch locks its
    devices' rows first and bumps their version. ``_versions`` holds, per device, the
    version this worker's cached ack and engine state belong to (as of its last commit)."""

    def __init__(self, database_url: str, dead_letter_max_bytes: int = 4096) -> None:
        self._session = Session(database_url, "ctt-ingest", _STAGING.encode())
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self._keys = signatures.KeyCache()
        self._countries = CountryCache()
        self._versions: dict[str, int] = {}

    @property
    def countries(self) -> CountryCache:
        """The countries' index this store finds fixes' countries with: the engine shares it
        (one build of the outlines per process, not one per user)."""
        return self._countries

    def close(self) -> None:
        self._session.close()

    def transact(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run ``work`` in one transaction of the writer connection and commit."""
        return self._session.transact(work)

    def write(self, batch: Batch, acks: AckTracker, hook: Hook[T] | None = None) -> tuple[dict[str, int], T | None]:
        """Commit ``batch``; return the ack of every device of the batch (id -> seq: its
        records 0 … seq are durably stored; devices with none left out) and what ``hook``
        returned (None if it failed: the records commit anyway).

        Every device is answered, not only those whose ack moved: the ack of an earlier
        commit may never have gone out (its worker died after the commit; a redelivery or a
        resend of what is stored is then the only sign), or went out before a higher one.

        Raises what the database or driver raised (``is_transient`` tells whether a
        retry may succeed); nothing is committed then.
        """
        def work(cur: psycopg.Cursor[Any]) -> tuple[AckPlan, dict[str, int], T | None, dict[str, int]]:
            versions, stale = self._lock_devices(cur, batch)
            acks.forget(stale)
            self._load_acks(cur, batch, acks)
            # Signatures, replays, unknown seal numbers: refused records become dead letters (acks count them).
            refuse(batch, signatures.check(batch, self._keys.keys(cur, batch.last_seen)))
            refuse(batch, replays.find(cur, batch, acks))
            refuse(batch, seal_numbers.unclaimed(cur, batch))  # events of no shipment's seal
            new_fixes, new_seals = self._write_records(cur, batch, returning=hook is not None)
            extra = None if hook is None else _guarded(cur, hook, new_fixes, new_seals, stale)
            plan = acks.plan(batch.seqs)
            acked = {d: state.watermark for d, state in plan.states.items() if state.watermark >= 0}
            self._save_acks(cur, acked)
            return plan, acked, extra, versions

        plan, acked, extra, versions = self.transact(work)
        acks.apply(plan)
        self._versions.update(versions)
        return acked, extra

    def _lock_devices(self, cur: psycopg.Cursor[Any], batch: Batch) -> tuple[dict[str, int], frozenset[str]]:
        """Lock the batch's devices (creating new ones); their new versions, and those
        whose cache is stale: another worker wrote them since this one last did."""
        if not batch.last_seen:
            return {}, frozenset()
        ids = sorted(batch.last_seen)
        rows = cur.execute(_LOCK_DEVICES, (ids, [batch.last_seen[i] for i in ids])).fetchall()
        versions = dict(rows)
        stale = frozenset(d for d, v in versions.items() if self._versions.get(d) != v - 1)
        return versions, stale

    def _write_records(self, cur: psycopg.Cursor, batch: Batch,
                       returning: bool) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        new_fixes: set[tuple[str, int]] = set()
        new_seals: set[tuple[str, int]] = set()
        if batch.fixes:
            countries = self._countries.of_fixes(cur, [r[4] for r in batch.fixes], [r[3] for r in batch.fixes])
            _copy(cur, "stage_fixes", _FIX_TYPES, [(*r, c) for r, c in zip(batch.fixes, countries, strict=True)])
            cur.execute(_INSERT_FIXES + _RETURN_KEYS if returning else _INSERT_FIXES)
            if returning:
                new_fixes.update(cur.fetchall())
            country_of = {(r[0], r[1]): c for r, c in zip(batch.fixes, countries, strict=True)}
            _copy(cur, "stage_latest", _FIX_TYPES,
                  [(*r, country_of[r[0], r[1]]) for r in (batch.latest[d] for d in sorted(batch.latest))])
            cur.execute(_UPSERT_LATEST)
            # Wakes the API's live stream at commit (one notification per transaction).
            cur.execute("SELECT pg_notify('ctt_positions', '')")
        if batch.seals:
            _copy(cur, "stage_seals", _SEAL_TYPES, batch.seals)
            cur.execute(_INSERT_SEALS + _RETURN_KEYS if returning else _INSERT_SEALS)
            if returning:
                new_seals.update(cur.fetchall())
        if batch.statuses:
            _copy(cur, "stage_status", _STATUS_TYPES, batch.statuses)
            cur.execute(_INSERT_STATUS)
            cur.execute(_CURRENT_STATE)
        if batch.rejects:
            cur.executemany(_INSERT_DEAD, [self._dead_letter(r, ms) for r, ms in batch.rejects])
        return new_fixes, new_seals

    def _dead_letter(self, r: Reject, received_ms: int) -> tuple[object, ...]:
        """A reject as a dead_letters row: the payload cut to its first
        ``dead_letter_max_bytes`` bytes, with the full length and SHA-256."""
        kept = r.payload[: self._dead_letter_max_bytes]
        return (received_ms, _text(r.topic), r.device_id, r.seq, kept, len(r.payload),
                hashlib.sha256(r.payload).digest(), _text(r.reason), r.digest)

    def _load_acks(self, cur: psycopg.Cursor, batch: Batch, acks: AckTracker) -> None:
        unknown = acks.unknown(batch.seqs)
        if not unknown:
            return
        watermarks = dict.fromkeys(unknown, -1)
        watermarks.update(cur.execute(_LOAD_WATERMARKS, (unknown,)).fetchall())
        above: dict[str, list[int]] = defaultdict(list)
        for device_id, seq in cur.execute(_LOAD_STORED_ABOVE, (unknown,)).fetchall():
            above[device_id].append(seq)
        for device_id in unknown:
            acks.load(device_id, watermarks[device_id], above[device_id])

    def _save_acks(self, cur: psycopg.Cursor, acked: dict[str, int]) -> None:
        """Keep each device's ack (never lowering it: the update is guarded)."""
        if acked:
            ids = sorted(acked)
            cur.execute(_SAVE_ACKS, (ids, [acked[i] for i in ids]))


_MARK_BEHIND = "UPDATE geofence_state SET behind = true WHERE device_id = ANY(%s) AND NOT behind"
_BEHIND = "SELECT device_id FROM geofence_state WHERE device_id = ANY(%s) AND behind"


def mark_unevaluated(cur: psycopg.Cursor[Any], device_ids: Collection[str]) -> None:
    """These trackers' stored fixes were not all evaluated: whichever worker next handles
    one replays it from its saved state (``behind``)."""
    if device_ids:
        cur.execute(_MARK_BEHIND, (sorted(device_ids),))


def unevaluated(cur: psycopg.Cursor[Any], device_ids: Collection[str]) -> set[str]:
    """Those of ``device_ids`` marked by ``mark_unevaluated`` and not evaluated since."""
    if not device_ids:
        return set()
    return {d for (d,) in cur.execute(_BEHIND, (list(device_ids),)).fetchall()}


def _guarded(cur: psycopg.Cursor[Any], hook: Hook[T], new_fixes: set[tuple[str, int]],
             new_seals: set[tuple[str, int]], stale: frozenset[str]) -> T | None:
    """Run ``hook`` in a savepoint: if it fails for any reason but the database
    going away, its writes are undone and the records still commit."""
    try:
        with cur.connection.transaction():
            return hook(cur, new_fixes, new_seals, stale)
    except Exception as exc:
        if is_transient(exc):
            raise
        metrics.GEOFENCE_ERRORS.inc()
        log.exception("geofence evaluation failed; records kept, trackers will be replayed")
        mark_unevaluated(cur, {device_id for device_id, _seq in new_fixes})
        return None


def _text(value: str) -> str:
    """``value`` as PostgreSQL text: no NUL, no lone surrogate (either would make
    the database refuse the dead letter that records why a message was refused)."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _copy(cur: psycopg.Cursor, table: str, types: list[str], rows: list) -> None:  # type: ignore[type-arg]
    with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
