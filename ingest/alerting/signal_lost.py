"""``signal_lost``: no position report (fix) from an in-transit tracker for
``signal_lost_s``, on the database's clock.

A status message or a Last Will is not a position: a connected tracker whose
GPS is jammed still raises it. The condition is measured from the later of the
tracker's newest fix time and the shipment's going in transit; only a fix
newer than the threshold ends it (at that fix's time).
"""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.alerting.changes import MS, RETURNING, changed
from protocol.alerts import AlertChange

_RAISE = """
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'signal_lost', s.id, s.tracker_id, q.since, now(), lp.lat, lp.lon, 'medium'
    FROM shipments s
    LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    CROSS JOIN LATERAL (SELECT greatest(lp.ts, s.status_changed_at) AS since) q
    WHERE s.status = 'in_transit' AND q.since <= now() - make_interval(secs => %s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) """ + RETURNING
_OPEN = "SELECT DISTINCT device_id FROM alerts WHERE type = 'signal_lost' AND ended_at IS NULL"
_END = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {MS.format("v.ms")}), updated_at = now()
    FROM unnest(%s::text[], %s::int8[]) AS v(device_id, ms)
    WHERE alerts.device_id = v.device_id AND alerts.type = 'signal_lost' AND alerts.ended_at IS NULL
      AND {MS.format("v.ms")} > now() - make_interval(secs => %s)
    RETURNING alerts.*
) {RETURNING}
"""


def raise_lost(cur: psycopg.Cursor[Any], signal_lost_s: float) -> list[AlertChange]:
    """Open ``signal_lost`` for every in-transit tracker without a recent enough fix."""
    return changed(cur, "opened", _RAISE, (signal_lost_s,))


def end_lost(cur: psycopg.Cursor[Any], newest_fix_ms: dict[str, int], signal_lost_s: float) -> list[AlertChange]:
    """End ``signal_lost`` of trackers whose newest new fix (epoch ms) is recent again."""
    if not newest_fix_ms:
        return []
    # Few trackers have lost their signal: only theirs go into the update.
    ids = sorted(d for (d,) in cur.execute(_OPEN).fetchall() if d in newest_fix_ms)
    if not ids:
        return []
    return changed(cur, "ended", _END, (ids, [newest_fix_ms[i] for i in ids], signal_lost_s))
