"""``gps_jamming``: an in-transit tracker keeps reporting its status (``online``, with no
fixes ``buffered``) while its newest fix is older than its expected reporting interval (the risk profile's
``report_interval_s``, scaled like signal_lost): statuses at both ends of that interval, so that
one status on reconnecting after the tracker was off is not taken for jamming. Started at its newest fix time (when
the positions stopped), on fix time: the status's own time decides, not the clock, so a
backlog replayed later gives the same answer. It ends at its next fix."""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.signal_lost import scale
from ingest.batch import Batch
from protocol.alerts import AlertChange

# The trackers whose newest fix is too old at their status's time; several shipments
# on one truck: each gets it, at the shortest interval among them.
_RAISE = f"""
WITH w AS (
    SELECT s.id, s.tracker_id, greatest(lp.ts, s.departed_at) AS since, lp.lat, lp.lon,
           min(p.report_interval_s) OVER (PARTITION BY s.tracker_id) * %(scale)s AS threshold_s
    FROM shipments s JOIN risk_profiles p ON p.level = s.risk_level
    LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    WHERE s.status = 'in_transit' AND s.tracker_id = ANY(%(ids)s)
), changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'gps_jamming', w.id, w.tracker_id, w.since, {MS.format("v.ms")}, w.lat, w.lon, 'high'
    FROM unnest(%(ids)s::text[], %(ms)s::int8[]) AS v(device_id, ms) JOIN w ON w.tracker_id = v.device_id
    WHERE {MS.format("v.ms")} >= w.since + make_interval(secs => w.threshold_s)
      -- Connected all along: it also reported at the start of the silence. A tracker that was
      -- off (nothing recorded) and reconnects says "online" once, a fix behind: no jamming.
      AND EXISTS (SELECT 1 FROM device_status d
                  WHERE d.device_id = v.device_id AND d.state = 'online' AND coalesce(d.buffered, 0) = 0
                    AND d.ts >= w.since AND d.ts <= {MS.format("v.ms")} - make_interval(secs => w.threshold_s))
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""
_OPEN = "SELECT DISTINCT device_id FROM alerts WHERE type = 'gps_jamming' AND ended_at IS NULL"
# Ends at the tracker's first fix after the jamming started (this batch stored it).
_END = """
WITH changed AS (
    UPDATE alerts a
    SET ended_at = (SELECT min(x.ts) FROM fixes x WHERE x.device_id = a.device_id AND x.ts > a.started_at),
        updated_at = now()
    WHERE a.device_id = ANY(%s) AND a.type = 'gps_jamming' AND a.ended_at IS NULL
      AND EXISTS (SELECT 1 FROM fixes x WHERE x.device_id = a.device_id AND x.ts > a.started_at)
    RETURNING a.*
) """ + RETURNING


def evaluate(cur: psycopg.Cursor[Any], batch: Batch, signal_lost_s: float) -> list[AlertChange]:
    """End jamming of trackers with new fixes, then open it where statuses came without fixes."""
    out: list[AlertChange] = []
    with_fixes = {row[0] for row in batch.fixes}
    if with_fixes:
        jammed = sorted(d for (d,) in cur.execute(_OPEN).fetchall() if d in with_fixes)
        if jammed:
            out += changed(cur, "ended", _END, (jammed,))
    online: dict[str, int] = {}
    for device_id, ts, state, _fw, _bat, buffered, _rcv in batch.statuses:
        # A tracker back from a coverage gap says it holds fixes (``buffered``): they are
        # on their way, not jammed (its backlog may come in a later batch than this status).
        if state == "online" and not buffered:
            online[device_id] = max(ts, online.get(device_id, ts))
    if online:
        ids = sorted(online)
        params = {"ids": ids, "ms": [online[i] for i in ids], "scale": scale(signal_lost_s)}
        out += changed(cur, "opened", _RAISE, params)
    return out
