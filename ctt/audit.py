"""Checking the hash-chained audit log (``schema/003_api.sql``).

Each row's ``hash`` is ``audit_row_hash(prev_hash, row)`` and its ``prev_hash``
is the previous row's ``hash`` (empty for the first row). The database
recomputes both here, with the same function the insert trigger used, so the
check cannot drift from how the chain is built.

Ids are numbered under the chain's lock (schema/012): they start at 1 and have
no gaps, so a row deleted with the chain recomputed after it still shows.

What the chain cannot show by itself: an insider who rewrites rows and
recomputes the whole chain, or removes rows from its end. Signed checkpoints
(``ctt.audit_anchor``, kept outside the database) catch both: each names a row
and the hash it had when signed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import IsolationLevel

from ctt.audit_anchor import Checkpoint

CONTENT_CHANGED = "content changed"
CHAIN_BROKEN = "chain broken"
ID_GAP = "id gap"
CHECKPOINT_MISMATCH = "checkpoint mismatch"
CHECKPOINT_MISSING = "checkpoint beyond the log"
_EXPLANATIONS = {
    CONTENT_CHANGED: "its hash does not match its content: the row was edited",
    CHAIN_BROKEN: "its prev_hash is not the previous row's hash: a row before it was deleted or inserted",
    ID_GAP: "its id does not follow the previous row's: a row before it was deleted",
    CHECKPOINT_MISMATCH: "its hash is not the one signed: rows up to it were rewritten and the chain recomputed",
    CHECKPOINT_MISSING: "the signed row is no longer in the log: rows were removed from its end",
}

_COUNT = "SELECT count(*) FROM audit_log"
_WALK = """
SELECT id, prev_hash, hash, audit_row_hash(prev_hash, a) AS recomputed, lag(hash) OVER (ORDER BY id) AS previous,
       coalesce(lag(id) OVER (ORDER BY id), 0) AS previous_id
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
    reason: str | None = None  # one of _EXPLANATIONS' keys
    head_id: int | None = None  # last row of an intact chain
    head_hash: str | None = None
    checkpoints: int = 0  # signed checkpoints that matched
    checkpoint_id: int | None = None  # the first that did not

    @property
    def intact(self) -> bool:
        return self.broken_id is None

    def summary(self) -> str:
        if self.broken_id is None:
            anchored = {0: ", no signed checkpoint", 1: ", 1 signed checkpoint matches"}.get(
                self.checkpoints, f", {self.checkpoints} signed checkpoints match")
            return f"audit chain intact: {self.rows} rows{anchored}"
        where = (f"checkpoint {self.checkpoint_id} (row {self.broken_id})" if self.checkpoint_id is not None
                 else f"row {self.broken_id}")
        return f"audit chain broken at {where}: {self.reason} ({_EXPLANATIONS[self.reason or CHAIN_BROKEN]})"


def verify(database_url: str, progress: ProgressHook | None = None, every: int = _BATCH,
           checkpoints: Sequence[Checkpoint] = ()) -> AuditReport:
    """Walk the log in id order and stop at the first broken row or signed checkpoint that does not match.

    ``checkpoints`` come from the exported file (``ctt.audit_anchor.read_checkpoints``), signatures checked."""
    signed = {c.head_id: c for c in sorted(checkpoints, key=lambda c: c.id, reverse=True)}
    matched = 0
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
            for row_id, prev_hash, stored, recomputed, previous, previous_id in cur:
                checked += 1
                reason = _row_fault(row_id, bytes(prev_hash), bytes(stored), bytes(recomputed),
                                    None if previous is None else bytes(previous), previous_id)
                if reason:
                    return AuditReport(checked, total, row_id, reason, checkpoints=matched)
                checkpoint = signed.get(row_id)
                if checkpoint is not None:
                    if checkpoint.head_hash != bytes(stored).hex():
                        return AuditReport(checked, total, row_id, CHECKPOINT_MISMATCH, checkpoints=matched,
                                           checkpoint_id=checkpoint.id)
                    matched += 1
                head = (row_id, bytes(stored))
                if progress and checked % every == 0:
                    progress(checked, total)
        if progress:
            progress(checked, total)
    beyond = [c for c in signed.values() if head is None or c.head_id > head[0]]
    if beyond:
        first = min(beyond, key=lambda c: c.id)
        return AuditReport(checked, total, first.head_id, CHECKPOINT_MISSING, checkpoints=matched,
                           checkpoint_id=first.id)
    return AuditReport(checked, total, head_id=head[0] if head else None,
                       head_hash=head[1].hex() if head else None, checkpoints=matched)


def _row_fault(row_id: int, prev_hash: bytes, stored: bytes, recomputed: bytes, previous: bytes | None,
               previous_id: int) -> str | None:
    # Content first: an edited row is named itself; the row after an edit
    # that also rewrote the hash is then the first whose link fails.
    if stored != recomputed:
        return CONTENT_CHANGED
    if prev_hash != (previous or b""):
        return CHAIN_BROKEN
    if row_id != previous_id + 1:
        return ID_GAP
    return None
