"""Retention: drop old record chunks, delete old dead letters, prune the engine's
checkpoints. Scheduled on every machine if need be: an advisory lock lets one run
at a time, and a run finished less than ``min_interval_h`` ago makes the next a no-op."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from ingest import checkpoints

LOCK_KEY = 7710011  # pg_advisory_lock key of retention (ingest's leader holds 7710010)
_DELETE_SLICE = 10_000
# dead_letters is a plain table (by received_at, the index dead_letters_received);
# a hypertable would need the time column in its unique digest key.
_DELETE_OLD_DEAD_LETTERS = f"""
DELETE FROM dead_letters WHERE id IN (
    SELECT id FROM dead_letters WHERE received_at < now() - %s * interval '1 day' LIMIT {_DELETE_SLICE})
"""
_RECENT = """
SELECT 1 FROM retention_runs WHERE finished_at > now() - make_interval(secs => %s * 3600.0) LIMIT 1
"""


def run(conn: psycopg.Connection, keep_days: int, min_interval_h: float, say: Callable[[str], None]) -> bool:
    """One retention run on an autocommit connection; False if another machine's run
    holds the lock or finished within ``min_interval_h`` hours (nothing done)."""
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        say("another retention run is in progress: nothing to do")
        return False
    try:
        if min_interval_h > 0 and conn.execute(_RECENT, (min_interval_h,)).fetchone():
            say(f"a retention run finished less than {min_interval_h} h ago: nothing to do")
            return False
        run_id = conn.execute("INSERT INTO retention_runs (keep_days) VALUES (%s) RETURNING id",
                              (keep_days,)).fetchone()[0]  # type: ignore[index]
        _drop(conn, keep_days, say)
        conn.execute("UPDATE retention_runs SET finished_at = now() WHERE id = %s", (run_id,))
        return True
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _drop(conn: psycopg.Connection, keep_days: int, say: Callable[[str], None]) -> None:
    for table in ("fixes", "seal_events", "device_status"):
        dropped = conn.execute("SELECT drop_chunks(%s::regclass, older_than => %s * interval '1 day')",
                               (table, keep_days)).fetchall()
        say(f"{table}: dropped {len(dropped)} chunks older than {keep_days} days")
    deleted = 0
    while True:  # in slices: no long transaction, no lock held over the whole table
        cur = conn.execute(_DELETE_OLD_DEAD_LETTERS, (keep_days,))
        deleted += cur.rowcount
        if cur.rowcount < _DELETE_SLICE:
            break
    say(f"dead_letters: deleted {deleted} received more than {keep_days} days ago")
    with conn.cursor() as cur:
        pruned = checkpoints.prune(cur)
    say(f"geofence_checkpoints: deleted {pruned} (finished trips; older ones thinned to one an hour)")
