"""Alerts inserted with a ``detail`` (why: a seal number and reason, a battery level):
apply.INSERT plus that one column, so that every other column is set the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.alerting.apply import insert_params
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from protocol.alerts import AlertChange

_INSERT = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lon, lat, severity, late,
                        source_seq, detail)
    VALUES (%(type)s, %(shipment)s, %(device)s, {MS.format("%(started)s::int8")}, {MS.format("%(ended)s::int8")},
            {MS.format("%(crossed)s::int8")}, %(lon)s, %(lat)s, %(severity)s, %(late)s, %(source_seq)s, %(detail)s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""


def insert(cur: psycopg.Cursor[Any], interval: Interval, shipment_id: int, device_id: str,
           detail: Mapping[str, Any], source_seq: int | None = None) -> list[AlertChange]:
    """Open ``interval`` (already ended when instantaneous) with ``detail``; nothing if one of
    its type is open for this shipment and device."""
    params = insert_params(interval, shipment_id, device_id, source_seq) | {"detail": Jsonb(dict(detail))}
    return changed(cur, "opened", _INSERT, params)
