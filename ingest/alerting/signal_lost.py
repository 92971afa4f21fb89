"""``signal_lost``: an in-transit shipment's tracker without a position report (fix),
or one of its e-seals without a seal event or status, for longer than the shipment's
expected reporting interval, on the database's clock.

The interval is the risk profile's ``report_interval_s`` scaled by
``CTT_SIGNAL_LOST_S`` / 900 s (so a medium-risk shipment keeps today's threshold,
and a test's short ``CTT_SIGNAL_LOST_S`` shortens every level alike). Trackers
shared by several shipments (one truck) use the shortest interval among them.

A status message or a Last Will is not a position: a connected tracker whose GPS
is jammed still raises it (gps_jamming says more). The condition is measured from
the later of the device's newest record time and the shipment's going in transit;
only a record newer than the threshold ends it (at that record's time): a fix for a
tracker, a seal event or status for a seal.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.alerting.changes import MS, RETURNING, changed
from ingest.batch import Batch
from protocol.alerts import AlertChange

# report_interval_s of a medium-risk shipment: CTT_SIGNAL_LOST_S scales every level by this.
MEDIUM_INTERVAL_S = 900.0

# Every watched device of an in-transit shipment: the tracker (its newest fix) and each
# e-seal (its newest seal event or status); positions are the truck's.
_WATCHED = """
SELECT s.id AS shipment_id, d.device_id, greatest(d.heard, s.status_changed_at) AS since, lp.lat, lp.lon,
       min(p.report_interval_s) OVER (PARTITION BY d.device_id) * %(scale)s AS threshold_s
FROM shipments s
JOIN risk_profiles p ON p.level = s.risk_level
LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
CROSS JOIN LATERAL (
    SELECT s.tracker_id, lp.ts
    UNION ALL
    SELECT ss.seal_id, greatest(
        (SELECT dv.state_ts FROM devices dv WHERE dv.device_id = ss.seal_id),
        (SELECT e.ts FROM seal_events e WHERE e.device_id = ss.seal_id ORDER BY e.ts DESC LIMIT 1))
    FROM shipment_seals ss WHERE ss.shipment_id = s.id
) d(device_id, heard)
WHERE s.status = 'in_transit'
"""
_RAISE = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'signal_lost', w.shipment_id, w.device_id, w.since, now(), w.lat, w.lon, 'medium'
    FROM ({_WATCHED}) w
    WHERE w.since <= now() - make_interval(secs => w.threshold_s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""
_OPEN = "SELECT DISTINCT device_id FROM alerts WHERE type = 'signal_lost' AND ended_at IS NULL"
_END = f"""
WITH changed AS (
    UPDATE alerts a SET ended_at = greatest(a.started_at, {MS.format("v.ms")}), updated_at = now()
    FROM unnest(%(ids)s::text[], %(ms)s::int8[]) AS v(device_id, ms), shipments s, risk_profiles p
    WHERE a.device_id = v.device_id AND a.type = 'signal_lost' AND a.ended_at IS NULL
      AND s.id = a.shipment_id AND p.level = s.risk_level AND {{who}}
      AND {MS.format("v.ms")} > now() - make_interval(secs => p.report_interval_s * %(scale)s)
    RETURNING a.*
) {RETURNING}
"""
_END_TRACKERS = _END.format(who="a.device_id = s.tracker_id")
_END_SEALS = _END.format(who="a.device_id <> s.tracker_id")


def scale(signal_lost_s: float) -> float:
    """What multiplies a risk profile's report_interval_s (CTT_SIGNAL_LOST_S / 900 s)."""
    return signal_lost_s / MEDIUM_INTERVAL_S


def raise_lost(cur: psycopg.Cursor[Any], signal_lost_s: float) -> list[AlertChange]:
    """Open ``signal_lost`` for every watched device not heard from recently enough."""
    return changed(cur, "opened", _RAISE, {"scale": scale(signal_lost_s)})


def end_lost(cur: psycopg.Cursor[Any], newest_fix_ms: dict[str, int], signal_lost_s: float) -> list[AlertChange]:
    """End ``signal_lost`` of trackers whose newest new fix (epoch ms) is recent again."""
    return _end(cur, _END_TRACKERS, newest_fix_ms, signal_lost_s)


def end_seals_lost(cur: psycopg.Cursor[Any], batch: Batch, signal_lost_s: float) -> list[AlertChange]:
    """End ``signal_lost`` of e-seals that sent a seal event or a status in ``batch`` (a Last
    Will is the broker's word that the seal went silent, not the seal's)."""
    newest: dict[str, int] = {}
    heard = [(r[0], r[2]) for r in batch.seals] + [(r[0], r[1]) for r in batch.statuses if r[2] != "lost"]
    for device_id, ts in heard:
        newest[device_id] = max(ts, newest.get(device_id, ts))
    return _end(cur, _END_SEALS, newest, signal_lost_s)


def _end(cur: psycopg.Cursor[Any], sql: str, newest_ms: dict[str, int], signal_lost_s: float) -> list[AlertChange]:
    if not newest_ms:
        return []
    # Few devices have lost their signal: only theirs go into the update.
    ids = sorted(d for (d,) in cur.execute(_OPEN).fetchall() if d in newest_ms)
    if not ids:
        return []
    params = {"ids": ids, "ms": [newest_ms[i] for i in ids], "scale": scale(signal_lost_s)}
    return changed(cur, "ended", sql, params)
