"""Geofence checkpoints in the database (schema/010): load around late fixes,
save, replace a replay's window, prune. Set-based: one statement per batch for
all its trackers.

Times cross the boundary as epoch milliseconds, as fix times do elsewhere in
ingest; states as msgpack (geofence.state.dumps).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
import psycopg

from geofence.replay import Checkpoint, due
from geofence.state import DeviceState, dumps, loads
from ingest.staged import Staging

_MS = "to_timestamp({} / 1000.0)"
_EPOCH_MS = "(extract(epoch FROM {}) * 1000)::int8"
# For each (tracker, shipment, earliest late fix): the newest checkpoint before
# that fix, and every later one up to the horizon (NULL: all of them).
_AROUND = f"""
SELECT v.k, {_EPOCH_MS.format("c.last_ts")}, c.state
FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::int8[])
     WITH ORDINALITY AS v(device_id, shipment_id, ms, until_ms, k)
JOIN geofence_checkpoints c ON c.device_id = v.device_id AND c.shipment_id = v.shipment_id
WHERE c.last_ts >= coalesce(
        (SELECT max(p.last_ts) FROM geofence_checkpoints p
         WHERE p.device_id = v.device_id AND p.shipment_id = v.shipment_id AND p.last_ts < {_MS.format("v.ms")}),
        {_MS.format("v.ms")})
  AND (v.until_ms IS NULL OR c.last_ts <= {_MS.format("v.until_ms")})
ORDER BY v.k, c.last_ts
"""
_STAGED = Staging("stage_geofence_checkpoints", (
    ("device_id", "text"), ("shipment_id", "int8"), ("last_ts", "int8"), ("state", "bytea")))
_UPSERT = f"""
INSERT INTO geofence_checkpoints (device_id, shipment_id, last_ts, state)
SELECT device_id, shipment_id, {_MS.format("last_ts")}, state FROM {_STAGED.table}
ON CONFLICT (device_id, shipment_id, last_ts) DO UPDATE SET state = excluded.state
"""
# A replay's window: the checkpoints it did not recompute go (deleted and
# upserted rows never overlap).
_CLEAR = f"""
DELETE FROM geofence_checkpoints c
WHERE c.device_id = %s AND c.shipment_id = %s
  AND c.last_ts BETWEEN {_MS.format("%s::int8")} AND {_MS.format("%s::int8")}
  AND {_EPOCH_MS.format("c.last_ts")} <> ALL(%s::int8[])
"""
# Finished shipments need none; a trip's old checkpoints are thinned to one per
# sparse interval (a backlog that old is rare, and the replay still starts
# near it).
_PRUNE_FINISHED = """
DELETE FROM geofence_checkpoints c USING shipments s
WHERE s.id = c.shipment_id AND s.status <> 'in_transit'
"""
_THIN = """
DELETE FROM geofence_checkpoints c USING (
    SELECT device_id, shipment_id, last_ts,
           row_number() OVER (PARTITION BY device_id, shipment_id,
                                           date_bin(make_interval(secs => %s), last_ts, 'epoch'::timestamptz)
                              ORDER BY last_ts) AS k,
           max(last_ts) OVER (PARTITION BY device_id, shipment_id) AS newest
    FROM geofence_checkpoints
) o
WHERE c.device_id = o.device_id AND c.shipment_id = o.shipment_id AND c.last_ts = o.last_ts
  AND o.k > 1 AND o.last_ts < o.newest - make_interval(secs => %s)
"""


class Around(NamedTuple):
    """Where a tracker's replay starts (None: departure) and the checkpoints after it."""

    start: Checkpoint | None
    later: list[Checkpoint]


class Request(NamedTuple):
    device_id: str
    shipment_id: int
    earliest_ms: int  # the earliest late fix
    until_ms: int | None = None  # load later checkpoints up to this fix time (None: all)


class Saved(NamedTuple):
    device_id: str
    shipment_id: int
    checkpoint: Checkpoint


class Window(NamedTuple):
    """A replay's window: its stored checkpoints are replaced by ``checkpoints``."""

    device_id: str
    shipment_id: int
    from_ms: int
    to_ms: int
    checkpoints: Sequence[Checkpoint]


def load(cur: psycopg.Cursor[Any], requests: Sequence[Request]) -> list[Around]:
    """The checkpoints around each request's late fixes (in the order of
    ``requests``), in one query. A checkpoint that does not decode is left out:
    when it was the nearest, the replay starts from departure and replaces it."""
    if not requests:
        return []
    rows = cur.execute(_AROUND, ([r.device_id for r in requests], [r.shipment_id for r in requests],
                                 [r.earliest_ms for r in requests], [r.until_ms for r in requests])).fetchall()
    found: dict[int, list[Checkpoint]] = defaultdict(list)
    for k, last_ms, blob in rows:
        try:
            found[int(k) - 1].append(Checkpoint(int(last_ms), loads(bytes(blob))))
        except msgspec.DecodeError:
            continue
    out = []
    for k, r in enumerate(requests):
        points = found.get(k, [])
        start = points[0] if points and points[0].last_ts < r.earliest_ms else None
        out.append(Around(start, points[1:] if start is not None else points))
    return out


def save(cur: psycopg.Cursor[Any], rows: Sequence[Saved]) -> None:
    """Insert or overwrite checkpoints, in one statement."""
    if rows:
        _STAGED.run(cur, ((r.device_id, r.shipment_id, r.checkpoint.last_ts, dumps(r.checkpoint.state)) for r in rows),
                    _UPSERT)


def save_due(cur: psycopg.Cursor[Any], before: Mapping[str, DeviceState], after: Mapping[str, DeviceState]) -> None:
    """After live evaluation: a checkpoint for each tracker whose new state entered a
    new slot of fix time since its state ``before`` (geofence.replay.due), in one statement."""
    rows = [Saved(d, s.shipment_id, Checkpoint(s.last_ts, s)) for d, s in after.items()
            if due(_last(before.get(d), s.shipment_id), s)]
    save(cur, sorted(rows, key=lambda r: r.device_id))


def _last(state: DeviceState | None, shipment_id: int) -> int | None:
    return state.last_ts if state is not None and state.shipment_id == shipment_id and state.last_ts >= 0 else None


def replace(cur: psycopg.Cursor[Any], windows: Sequence[Window]) -> None:
    """Replace the checkpoints inside each replay window by the recomputed ones."""
    for w in windows:  # ragged keep-lists do not fit one int8[][]: one delete per replayed tracker
        cur.execute(_CLEAR, (w.device_id, w.shipment_id, w.from_ms, w.to_ms,
                                 [c.last_ts for c in w.checkpoints]))
    save(cur, [Saved(w.device_id, w.shipment_id, c) for w in windows for c in w.checkpoints])


def prune(cur: psycopg.Cursor[Any], dense_s: float = 24 * 3600.0, sparse_s: float = 3600.0) -> int:
    """Drop the checkpoints of finished shipments, and thin those older than
    ``dense_s`` before a trip's newest to one per ``sparse_s``; returns rows deleted."""
    deleted = cur.execute(_PRUNE_FINISHED).rowcount
    return deleted + cur.execute(_THIN, (sparse_s, dense_s)).rowcount
