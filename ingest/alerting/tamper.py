"""device_tamper: ingest refused a record of a device serving an in-transit shipment as
unsigned, wrongly signed or replayed (ingest/refusals.py). One open alert per device
and shipment; the first refusal's reason is in its ``detail``; officers resolve it."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.alerting.changes import MS, RETURNING, changed
from ingest.batch import Batch
from ingest.registry import Registry
from protocol.alerts import SEVERITY, AlertChange

_OPEN = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity, detail)
    VALUES ('device_tamper', %(shipment)s, %(device)s, {MS.format("%(ts)s::int8")}, {MS.format("%(ts)s::int8")},
            %(severity)s, %(detail)s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""


def refused_records(cur: psycopg.Cursor[Any], batch: Batch, registry: Registry) -> list[AlertChange]:
    """Open device_tamper for each device of an in-transit shipment with a refused record in ``batch``."""
    out: list[AlertChange] = []
    seen: set[str] = set()
    for device_id, ts, reason in sorted(batch.tampered, key=lambda t: t[1]):  # the earliest refusal opens it
        shipment = registry.trackers.get(device_id) or registry.seals.get(device_id)
        if shipment is None or device_id in seen:
            continue
        seen.add(device_id)
        params = {"shipment": shipment.id, "device": device_id, "ts": ts, "severity": SEVERITY["device_tamper"],
                  "detail": Jsonb({"reason": reason})}
        out += changed(cur, "opened", _OPEN, params)
    return out
