"""Suspect late records: a late fix (older than the newest fix the engine has
evaluated for its tracker) whose seq and ts disagree with the device's stored
history. It is stored and evaluated like any other; ``suspect_records`` marks
it for whoever judges the alerts it changed.

Reasons, computed in one statement for a batch's late fixes:

- ``seq_jump``: its seq is more than ``seq_jump`` beyond the device's highest
  other stored seq (a counter cannot have run that far ahead);
- ``closed_stretch``: its ts falls between two stored fixes of the device
  whose seqs are consecutive, so no record can legitimately lie between them
  (neighbours looked for within an hour either side);
- ``order``: its ts disagrees with seq order relative to its stored seq
  neighbours (the fix numbered just below it is newer, or the one just above
  it older).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import psycopg

from geofence.state import DeviceState
from ingest import metrics
from ingest.alerting.live import Fresh

_FLAG = """
WITH r AS (
    SELECT device_id, seq, to_timestamp(ts_ms / 1000.0) AS ts
    FROM unnest(%(device)s::text[], %(seq)s::int8[], %(ts)s::int8[]) AS r(device_id, seq, ts_ms)
), n AS (
    SELECT r.*, top.seq AS top_seq, below.ts AS below_ts, above.ts AS above_ts,
           before.seq AS before_seq, after.seq AS after_seq
    FROM r
    LEFT JOIN LATERAL (SELECT f.seq FROM fixes f WHERE f.device_id = r.device_id AND f.seq <> r.seq
                       ORDER BY f.seq DESC LIMIT 1) top ON true
    LEFT JOIN LATERAL (SELECT f.ts FROM fixes f WHERE f.device_id = r.device_id AND f.seq < r.seq
                       ORDER BY f.seq DESC LIMIT 1) below ON true
    LEFT JOIN LATERAL (SELECT f.ts FROM fixes f WHERE f.device_id = r.device_id AND f.seq > r.seq
                       ORDER BY f.seq LIMIT 1) above ON true
    LEFT JOIN LATERAL (SELECT f.seq FROM fixes f WHERE f.device_id = r.device_id AND f.seq <> r.seq
                       AND f.ts < r.ts AND f.ts >= r.ts - interval '1 hour' ORDER BY f.ts DESC LIMIT 1) before ON true
    LEFT JOIN LATERAL (SELECT f.seq FROM fixes f WHERE f.device_id = r.device_id AND f.seq <> r.seq
                       AND f.ts > r.ts AND f.ts <= r.ts + interval '1 hour' ORDER BY f.ts LIMIT 1) after ON true
), found AS (
    SELECT device_id, seq, ts, 'seq_jump' AS reason FROM n WHERE seq > top_seq + %(jump)s
    UNION ALL
    SELECT device_id, seq, ts, 'closed_stretch' FROM n WHERE after_seq = before_seq + 1
    UNION ALL
    SELECT device_id, seq, ts, 'order' FROM n WHERE below_ts > ts OR above_ts < ts
)
INSERT INTO suspect_records (device_id, seq, ts, reason)
SELECT device_id, seq, ts, reason FROM found
ON CONFLICT DO NOTHING
RETURNING reason
"""


class Late(NamedTuple):
    device_id: str
    seq: int
    ts: int  # epoch ms


def late_fixes(fresh: Fresh, states: Mapping[str, DeviceState]) -> list[Late]:
    """The batch's new fixes older than the newest fix evaluated for their tracker."""
    last = np.array([_last(states.get(d)) for d in fresh.ids], dtype=np.int64)
    counts = fresh.tracks.counts
    tracker = np.repeat(np.arange(len(fresh.ids)), counts)
    rows = np.flatnonzero((fresh.tracks.t <= last[tracker]) & (last[tracker] >= 0)).tolist()
    t, seq, which = fresh.tracks.t.tolist(), fresh.seq.tolist(), tracker.tolist()
    return [Late(fresh.ids[which[i]], seq[i], t[i]) for i in rows]


def _last(state: DeviceState | None) -> int:
    return -1 if state is None else state.last_ts


def flag(cur: psycopg.Cursor[Any], late: list[Late], seq_jump: int) -> None:
    """Record which of ``late`` are suspect, and why (see the module docstring)."""
    if not late:
        return
    params = {"device": [r.device_id for r in late], "seq": [r.seq for r in late], "ts": [r.ts for r in late],
              "jump": seq_jump}
    for (reason,) in cur.execute(_FLAG, params).fetchall():
        metrics.SUSPECT_RECORDS.labels(reason).inc()
