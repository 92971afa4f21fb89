"""``low_battery``: a device of an in-transit shipment (its tracker or one of its
e-seals) reports ``bat`` <= 15 % on any record (fix, seal event, status), or a seal
sends a ``low_battery`` event. It ends at the first record reporting ``bat`` >= 25 %
(hysteresis: a battery hovering around 15 % does not page again and again). Fix time
throughout; opened on every in-transit shipment the device serves (one truck, several
shipments: the database groups them under one incident)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.alerting import detailed
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from ingest.batch import Batch
from protocol.alerts import AlertChange

LOW_PERCENT = 15.0
RECOVERED_PERCENT = 25.0

_OPEN = "SELECT DISTINCT device_id FROM alerts WHERE type = 'low_battery' AND ended_at IS NULL"
_SHIPMENTS = """
SELECT s.tracker_id, s.id FROM shipments s WHERE s.status = 'in_transit' AND s.tracker_id = ANY(%(ids)s)
UNION ALL
SELECT ss.seal_id, s.id FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
WHERE s.status = 'in_transit' AND ss.seal_id = ANY(%(ids)s)
"""
_END = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {MS.format("%s::int8")}), updated_at = now()
    WHERE device_id = %s AND type = 'low_battery' AND ended_at IS NULL
    RETURNING *
) {RETURNING}
"""


@dataclass(frozen=True)
class Reading:
    """One record's battery: ``bat`` percent (None for a low_battery event without one)."""

    ts: int  # epoch ms
    bat: float | None
    low_event: bool
    lon: float | None
    lat: float | None
    late: bool

    @property
    def low(self) -> bool:
        return self.low_event or (self.bat is not None and self.bat <= LOW_PERCENT)

    @property
    def recovered(self) -> bool:
        return not self.low_event and self.bat is not None and self.bat >= RECOVERED_PERCENT


def readings(batch: Batch, new_fixes: set[tuple[str, int]],
             new_seals: set[tuple[str, int]]) -> dict[str, list[Reading]]:
    """Each device's battery readings among the records ``batch`` newly stored (all its
    statuses), in fix-time order: a redelivered old reading changes nothing."""
    out: dict[str, list[Reading]] = defaultdict(list)
    for (device, seq, ts, lat, lon, _spd, _hdg, _acc, bat, _rcv), late in zip(batch.fixes, batch.fix_backlog,
                                                                              strict=True):
        if bat is not None and (device, seq) in new_fixes:
            out[device].append(Reading(ts, bat, False, lon, lat, late))
    for (device, seq, ts, _seal, event, at_lat, at_lon, bat, _rcv), late in zip(batch.seals, batch.seal_backlog,
                                                                                strict=True):
        if (bat is not None or event == "low_battery") and (device, seq) in new_seals:
            out[device].append(Reading(ts, bat, event == "low_battery", at_lon, at_lat, late))
    for device, ts, _state, _fw, bat, _buffered, _rcv in batch.statuses:
        if bat is not None:
            out[device].append(Reading(ts, bat, False, None, None, False))
    for rows in out.values():
        rows.sort(key=lambda r: r.ts)
    return out


def evaluate(cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
             new_seals: set[tuple[str, int]]) -> list[AlertChange]:
    """Open and end ``low_battery`` from this batch's records."""
    found = readings(batch, new_fixes, new_seals)
    low = {d for d, rows in found.items() if any(r.low for r in rows)}
    recovering = {d for d, rows in found.items() if any(r.recovered for r in rows)}
    if not low and not recovering:
        return []
    is_open = {d for (d,) in cur.execute(_OPEN).fetchall() if d in found} if recovering else set()
    candidates = low | is_open
    if not candidates:
        return []
    served: dict[str, list[int]] = defaultdict(list)
    for device_id, shipment_id in cur.execute(_SHIPMENTS, {"ids": sorted(candidates)}).fetchall():
        served[device_id].append(shipment_id)
    out: list[AlertChange] = []
    for device_id in sorted(candidates):
        out += _device(cur, device_id, found[device_id], served.get(device_id, []), device_id in is_open)
    return out


def _device(cur: psycopg.Cursor[Any], device_id: str, rows: list[Reading], shipments: list[int],
            is_open: bool) -> list[AlertChange]:
    out: list[AlertChange] = []
    for r in rows:
        if is_open and r.recovered:
            out += changed(cur, "ended", _END, (r.ts, device_id))
            is_open = False
        elif not is_open and r.low and shipments:
            for shipment_id in sorted(shipments):
                interval = Interval("low_battery", r.ts, None, r.ts, r.lon, r.lat, r.late)
                out += detailed.insert(cur, interval, shipment_id, device_id,
                                       {"bat": r.bat} if r.bat is not None else {"event": "low_battery"})
            is_open = True
    return out
