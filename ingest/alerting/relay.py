"""The officers' workflow (acknowledge, resolve) happens in the API; its
changes reach the alert topic through the numbered ``alert_events``, read here
in commit order (``seq``)."""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.alerting.changes import dict_rows
from protocol.alerts import AlertChange, alert_change

_START = "SELECT coalesce(max(seq), 0) FROM alert_events"
_EVENTS = """
SELECT e.seq AS event_seq, e.event AS event_kind, v.* FROM alert_events e JOIN alert_view v ON v.id = e.alert_id
WHERE e.seq > %s AND e.event IN ('acknowledged', 'resolved') ORDER BY e.seq
"""


class Relay:
    """Reads the officers' actions after the last one relayed."""

    def __init__(self) -> None:
        self._seq: int | None = None

    def poll(self, cur: psycopg.Cursor[Any]) -> list[AlertChange]:
        """Officers' acknowledgements and resolutions since the last call (none before the first)."""
        if self._seq is None:
            row = cur.execute(_START).fetchone()
            self._seq = int(row[0]) if row else 0
            return []
        rows = dict_rows(cur, _EVENTS, (self._seq,))
        if rows:
            self._seq = int(rows[-1]["event_seq"])
        return [alert_change(row["event_kind"], row) for row in rows]
