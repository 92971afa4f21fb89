"""Seal rules: a breach opens on an opening event away from the destination
office. Only an officer ends it (resolve): an ``armed`` or ``closed`` event after
it is stored and shown, but the device alone cannot close the alert. A breach
after an officer resolved the last one opens a new alert (ending the resolved one)."""

from __future__ import annotations

from typing import Any

import psycopg

from geofence import engine
from ingest.alerting.apply import INSERT, insert_params
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from ingest.batch import Batch, SealRow
from ingest.registry import Registry
from protocol.alerts import AlertChange

_TRACKER_AT = f"""
SELECT lon, lat FROM fixes
WHERE device_id = %s AND ts <= {MS.format("%s::int8")} AND ts > {MS.format("%s::int8")} - interval '30 minutes'
ORDER BY ts DESC LIMIT 1
"""
# An unresolved breach of this seal since before ``ts``: the same breach, reported again.
_BREACH_COVERED = f"""
SELECT 1 FROM alerts WHERE shipment_id = %s AND device_id = %s AND type = 'seal_breach' AND status <> 'resolved'
AND started_at <= {MS.format("%s::int8")} AND (ended_at IS NULL OR ended_at >= {MS.format("%s::int8")})
"""
# A breach officers resolved is over: a new breach ends it, so that the new one can open.
_END_RESOLVED = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {MS.format("%s::int8")}), updated_at = now()
    WHERE shipment_id = %s AND device_id = %s AND type = 'seal_breach' AND ended_at IS NULL AND status = 'resolved'
    RETURNING *
) {RETURNING}
"""


def seal_events(cur: psycopg.Cursor[Any], batch: Batch, new_seals: set[tuple[str, int]],
                registry: Registry) -> list[AlertChange]:
    """Breaches opened by the seal events this batch newly stored, in fix-time order."""
    out: list[AlertChange] = []
    rows = sorted(zip(batch.seals, batch.seal_backlog, strict=True), key=_record_time)
    for (device_id, seq, ts, _seal, event, lat, lon, _bat, _rcv), backlog in rows:
        shipment = registry.seals.get(device_id)
        if shipment is None or (device_id, seq) not in new_seals:
            continue
        binding = shipment.binding
        if binding is None or ts < binding.departed_ms:
            continue
        if event in engine.REARM_EVENTS:
            continue  # recorded; an officer's resolve ends the breach, not the device
        if lon is None or lat is None:
            lon, lat = _tracker_at(cur, shipment.tracker_id, ts)
        if not engine.is_breach(registry.network, binding, event, lon, lat):
            continue
        if cur.execute(_BREACH_COVERED, (shipment.id, device_id, ts, ts)).fetchone():
            continue  # the same breach, reported again before an officer resolved it
        out += changed(cur, "ended", _END_RESOLVED, (ts, shipment.id, device_id))
        breach = Interval("seal_breach", ts, None, ts, lon, lat, backlog)
        out += changed(cur, "opened", INSERT, insert_params(breach, shipment.id, device_id, source_seq=seq))
    return out


def _tracker_at(cur: psycopg.Cursor[Any], tracker_id: str, ts: int) -> tuple[float | None, float | None]:
    """The tracker's last fix within 30 minutes before ``ts`` (a seal event without a position)."""
    found = cur.execute(_TRACKER_AT, (tracker_id, ts, ts)).fetchone()
    return (found[0], found[1]) if found else (None, None)


def _record_time(item: tuple[SealRow, bool]) -> int:
    (_device, _seq, ts, *_rest), _backlog = item
    return ts
