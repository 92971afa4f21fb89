"""Checking the hash-chained audit log (``schema/003_api.sql``).

Each row's ``hash`` is ``audit_row_hash(prev_hash, row)`` and its ``prev_hash``
is the previous row's ``hash`` (empty for the first row). The database
recomputes both here, with the same function the insert trigger used, so the
check cannot drift from how the chain is built.

What the chain cannot show: rows removed from its end (the remaining chain is
intact). Keep the reported head (last id and hash) somewhere else to catch that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import IsolationLevel

CONTENT_CHANGED = "content changed"
CHAIN_BROKEN = "chain broken"

_COUNT = "SELECT count(*) FROM audit_log"
_WALK = """
SELECT id, prev_hash, hash, audit_row_hash(prev_hash, a) AS recomputed, lag(hash) OVER (ORDER BY id) AS previous
FROM audit_log a ORDER BY id
"""
_BATCH = 5000

# (rows checked, rows in the log): called at the start, every ``every`` rows and at the end.
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class AuditReport:
    rows: int  # rows checked: all of them when intact, up to and including the broken one otherwise
    total: int
    broken_id: int | None = None
    reason: str | None = None  # CONTENT_CHANGED or CHAIN_BROKEN
    head_id: int | None = None  # last row of an intact chain
    head_hash: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_id is None

    def summary(self) -> str:
        if self.broken_id is None:
            return f"audit chain intact: {self.rows} rows"
        explanation = ("its hash does not match its content: the row was edited"
                       if self.reason == CONTENT_CHANGED else
                       "its prev_hash is not the previous row's hash: a row before it was deleted or inserted")
        return f"audit chain broken at row {self.broken_id}: {self.reason} ({explanation})"


def verify(database_url: str, progress: ProgressHook | None = None, every: int = _BATCH) -> AuditReport:
    """Walk the log in id order and stop at the first broken row."""
    with psycopg.connect(database_url) as conn:
        # One snapshot for the count and the walk; rows appended meanwhile are left for the next run.
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute(_COUNT).fetchone()
        total = int(row[0]) if row else 0
        if progress:
            progress(0, total)
        checked = 0
        head: tuple[int, bytes] | None = None
        # A server-side cursor: a long log is streamed in batches, never loaded at once.
        with conn.cursor(name="ctt_audit_verify") as cur:
            cur.itersize = _BATCH
            cur.execute(_WALK)
            for row_id, prev_hash, stored, recomputed, previous in cur:
                checked += 1
                # Content first: an edited row is named itself; the row after an edit
                # that also rewrote the hash is then the first whose link fails.
                if bytes(stored) != bytes(recomputed):
                    return AuditReport(checked, total, row_id, CONTENT_CHANGED)
                expected_prev = b"" if previous is None else bytes(previous)
                if bytes(prev_hash) != expected_prev:
                    return AuditReport(checked, total, row_id, CHAIN_BROKEN)
                head = (row_id, bytes(stored))
                if progress and checked % every == 0:
                    progress(checked, total)
        if progress:
            progress(checked, total)
    return AuditReport(checked, total, head_id=head[0] if head else None,
                       head_hash=head[1].hex() if head else None)
