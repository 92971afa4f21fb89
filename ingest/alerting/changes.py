"""Statements that change alerts, and the changed alerts as every consumer sees them.

Every statement that changes alerts ends in ``SELECT id FROM changed``; the
changed rows are then read from ``alert_view`` (protocol.alerts.Alert), which
a later statement of the same transaction sees as the modifying one left it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from geofence.state import DeviceState
from protocol.alerts import AlertChange, alert_change

if TYPE_CHECKING:  # relay.py reads rows with this module's helpers
    from ingest.alerting.relay import Read

# Epoch milliseconds as timestamptz, in SQL.
MS = "to_timestamp({} / 1000.0)"
RETURNING = "SELECT id FROM changed ORDER BY id"
_VIEW = "SELECT * FROM alert_view WHERE id = ANY(%s) ORDER BY id"


@dataclass
class Outcome:
    """What one batch or job did, to publish and adopt once its transaction commits."""

    changes: list[AlertChange] = field(default_factory=list)
    states: dict[str, DeviceState] = field(default_factory=dict)
    # Trackers whose evaluation failed in this batch: retried next batch from their saved state.
    failed: set[str] = field(default_factory=set)
    # The officers' actions among ``changes`` (workflow relay), with how far it read.
    relayed: Read | None = None


def changed_rows(cur: psycopg.Cursor[Any], sql: str, params: tuple[Any, ...] | dict[str, Any]) -> list[dict[str, Any]]:
    """Run a statement that changes alerts and read the changed alerts (``alert_view`` rows)."""
    ids = [row[0] for row in cur.execute(sql, params).fetchall()]
    if not ids:
        return []
    return dict_rows(cur, _VIEW, (ids,))


def changed(cur: psycopg.Cursor[Any], event: str, sql: str,
            params: tuple[Any, ...] | dict[str, Any]) -> list[AlertChange]:
    """``changed_rows`` as change messages of ``event``."""
    return [alert_change(event, row) for row in changed_rows(cur, sql, params)]


def dict_rows(cur: psycopg.Cursor[Any], sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows as column -> value (the writer connection returns tuples)."""
    cur.execute(sql, params)
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
