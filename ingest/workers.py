"""The ingest workers' register (``ingest_workers``): heartbeats, and whether
every worker has drained its broker backlog.

A tracker's silence may be its fixes still queued in the broker for any worker
(a shared subscription spreads a device over the group), so the leader raises
``signal_lost`` only when every worker seen lately says it has drained. A worker
silent for ``expiry_s`` no longer counts: it is gone, not lagging.
"""

from __future__ import annotations

from typing import Any

import psycopg

_HEARTBEAT = """
INSERT INTO ingest_workers (worker_id, started_at, heartbeat_at, drained, leader)
VALUES (%s, to_timestamp(%s), now(), %s, %s)
ON CONFLICT (worker_id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = now(),
    drained = excluded.drained, leader = excluded.leader
"""
# Workers seen within expiry whose last word is not a fresh "drained".
_LAGGING = """
SELECT worker_id FROM ingest_workers
WHERE worker_id <> %s AND heartbeat_at > now() - make_interval(secs => %s)
  AND NOT (drained AND heartbeat_at > now() - make_interval(secs => %s))
ORDER BY worker_id
"""


def heartbeat(cur: psycopg.Cursor[Any], worker: str, started_s: float, drained: bool, leader: bool) -> None:
    """Record that ``worker`` (started at epoch ``started_s``) is alive, and its state."""
    cur.execute(_HEARTBEAT, (worker, started_s, drained, leader))


def lagging(cur: psycopg.Cursor[Any], me: str, expiry_s: float, fresh_s: float) -> list[str]:
    """The other workers that may still hold backlog: seen within ``expiry_s`` seconds
    and not reported drained within ``fresh_s``."""
    return [w for (w,) in cur.execute(_LAGGING, (me, expiry_s, fresh_s)).fetchall()]


def retire(cur: psycopg.Cursor[Any], worker: str) -> None:
    """Strike ``worker`` off: it has left the group and drained its session."""
    cur.execute("DELETE FROM ingest_workers WHERE worker_id = %s", (worker,))
