"""The officers' workflow (acknowledge, resolve) happens in the API; its
changes reach the alert topic through ``alert_events``, read here in commit
order (``seq``).

The relay resumes from a persisted cursor (``relay_cursors``), not from the
newest event at start: acts made while ingest was down are published after it
restarts. At least once: the stored cursor only passes events the broker has
acknowledged (PUBACK), so a crash repeats some, never skips one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import psycopg

from ingest.alerting.changes import dict_rows
from protocol.alerts import AlertChange, alert_change

NAME = "workflow"
_CURSOR = "SELECT seq FROM relay_cursors WHERE name = %s"
_SAVE = """
INSERT INTO relay_cursors (name, seq, updated_at) VALUES (%s, %s, now())
ON CONFLICT (name) DO UPDATE SET seq = greatest(relay_cursors.seq, excluded.seq), updated_at = now()
"""
_EVENTS = """
SELECT e.seq AS event_seq, e.event AS event_kind, v.* FROM alert_events e JOIN alert_view v ON v.id = e.alert_id
WHERE e.seq > %s AND e.event IN ('acknowledged', 'resolved') ORDER BY e.seq
"""


class Delivery(Protocol):
    """A publication handed to the MQTT client (paho's MQTTMessageInfo)."""

    def is_published(self) -> bool: ...


class Read(NamedTuple):
    """Events read in one poll: the changes to publish (with their seqs) and the seq read up to."""

    changes: list[AlertChange]
    seqs: list[int]
    read_to: int


class Pending(NamedTuple):
    seq: int
    delivery: Delivery


class Relay:
    """Reads the officers' actions after the last one relayed."""

    def __init__(self) -> None:
        self._read: int | None = None  # read up to (this run); None: from the stored cursor
        self._saved: int | None = None
        self._pending: list[Pending] = []  # published, not yet acknowledged by the broker

    def poll(self, cur: psycopg.Cursor[Any]) -> Read:
        """Save how far the broker has acknowledged, then read the events after the last one read."""
        if self._read is None:
            row = cur.execute(_CURSOR, (NAME,)).fetchone()
            self._read = self._saved = int(row[0]) if row else 0
        self._save(cur)
        rows = dict_rows(cur, _EVENTS, (self._read,))
        seqs = [int(r["event_seq"]) for r in rows]
        return Read([alert_change(r["event_kind"], r) for r in rows], seqs, max([self._read, *seqs]))

    def handed(self, read: Read, deliveries: Sequence[Delivery]) -> None:
        """After commit: ``read``'s changes went to the MQTT client as ``deliveries``."""
        self._pending += [Pending(s, d) for s, d in zip(read.seqs, deliveries, strict=True)]
        self._read = max(self._read or 0, read.read_to)

    def _save(self, cur: psycopg.Cursor[Any]) -> None:
        while self._pending and self._pending[0].delivery.is_published():
            self._pending.pop(0)
        assert self._read is not None
        done = self._pending[0].seq - 1 if self._pending else self._read
        if self._saved is None or done > self._saved:
            cur.execute(_SAVE, (NAME, done))
            self._saved = done
