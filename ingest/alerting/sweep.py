"""Wall-clock rules, run periodically: signal lost, transit overdue, device battery, and the
end of the conditions of shipments that are no longer in transit (an arrived
truck is not deviating any more)."""

from __future__ import annotations

from typing import Any

import psycopg

from geofence.rules import Rules
from ingest.alerting import device_battery
from ingest.alerting.changes import RETURNING, changed
from ingest.alerting.signal_lost import raise_lost
from protocol.alerts import AlertChange

_OVERDUE = """
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'transit_overdue', s.id, s.tracker_id, s.deadline, now(), lp.lat, lp.lon, 'medium'
    FROM shipments s LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    WHERE s.status = 'in_transit' AND s.deadline <= now()
      AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.shipment_id = s.id AND a.type = 'transit_overdue')
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) """ + RETURNING
_FINISHED = """
WITH changed AS (
    UPDATE alerts a SET ended_at = greatest(a.started_at, coalesce(s.arrived_at, s.closed_at, now())),
                        updated_at = now()
    FROM shipments s
    WHERE s.id = a.shipment_id AND s.status IN ('arrived', 'closed') AND a.ended_at IS NULL
      AND a.type <> 'seal_breach'
    RETURNING a.*
) """ + RETURNING


def sweep(cur: psycopg.Cursor[Any], rules: Rules, drained: bool, battery: bool = True) -> list[AlertChange]:
    """The wall-clock rules. ``signal_lost`` waits until ingest has drained its
    backlog (see Pipeline.drained): until then a tracker's silence may only be
    its fixes still queued in the broker. ``battery``: forecast batteries this time
    (every ``battery_sweep_s``, not every sweep)."""
    out = raise_lost(cur, rules.signal_lost_s) if drained else []
    out += changed(cur, "opened", _OVERDUE, ())
    out += changed(cur, "ended", _FINISHED, ())
    if battery:
        out += device_battery.evaluate(cur, rules.battery_trend_h, rules.battery_margin_h)
    return out
