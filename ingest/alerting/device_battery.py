"""``device_battery``: the battery of a registered or in-transit shipment's device (its tracker
or one of its e-seals) will not last until the shipment's deadline at the observed drain.

The forecast is the database's ``battery_trend`` (schema/031: least squares of ``bat`` over
the last ``CTT_BATTERY_TREND_H`` hours of fixes, seal events and statuses; the API shows the
same). It opens when the fitted line reaches 0 % before the deadline plus
``CTT_BATTERY_MARGIN_H``, and ends when it reaches 0 % only after the deadline plus twice the
margin (hysteresis: a forecast hovering at the threshold does not page again and again), or
when the shipment is no longer active (arrival ends it in the sweep like every condition).
A device without a trend (fewer than 3 readings, under 15 minutes) keeps its state. Wall
clock throughout; run by the leader's sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from ingest.alerting.changes import RETURNING, changed
from protocol.alerts import AlertChange

Verdict = Literal["open", "end"] | None

# Every device of an active shipment with a trend; the deadline; the truck's position.
_FORECAST = """
SELECT s.id, d.device_id, s.deadline, t.bat, t.drain_per_h, t.empty_at, s.deadline <= now() AS past
FROM shipments s
CROSS JOIN LATERAL (SELECT s.tracker_id UNION ALL
                    SELECT ss.seal_id FROM shipment_seals ss WHERE ss.shipment_id = s.id AND ss.active) d(device_id)
CROSS JOIN LATERAL battery_trend(d.device_id, now() - %(window)s) t
WHERE s.status IN ('registered', 'in_transit') AND t.drain_per_h IS NOT NULL
"""
_OPEN = "SELECT shipment_id, device_id FROM alerts WHERE type = 'device_battery' AND ended_at IS NULL"
_RAISE = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity, detail)
    SELECT 'device_battery', v.shipment_id, v.device_id, now(), now(), lp.lat, lp.lon, 'medium',
           jsonb_build_object('battery', v.bat, 'drain_per_h', round(v.drain::numeric, 2),
                              'hours_left',
                              round(greatest(0, extract(epoch FROM v.empty_at - now()) / 3600)::numeric, 1),
                              'deadline', to_char(s.deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    FROM unnest(%(shipments)s::int8[], %(devices)s::text[], %(bats)s::float8[], %(drains)s::float8[],
                %(empty)s::timestamptz[]) AS v(shipment_id, device_id, bat, drain, empty_at)
    JOIN shipments s ON s.id = v.shipment_id
    LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""
_END = f"""
WITH changed AS (
    UPDATE alerts a SET ended_at = greatest(a.started_at, now()), updated_at = now()
    FROM unnest(%(shipments)s::int8[], %(devices)s::text[]) AS v(shipment_id, device_id)
    WHERE a.shipment_id = v.shipment_id AND a.device_id = v.device_id AND a.type = 'device_battery'
      AND a.ended_at IS NULL
    RETURNING a.*
) {RETURNING}
"""
# Open on a shipment that is no longer active (cancelled; arrived and closed: sweep._FINISHED).
_END_INACTIVE = f"""
WITH changed AS (
    UPDATE alerts a SET ended_at = greatest(a.started_at, now()), updated_at = now()
    FROM shipments s
    WHERE s.id = a.shipment_id AND a.type = 'device_battery' AND a.ended_at IS NULL
      AND s.status NOT IN ('registered', 'in_transit')
    RETURNING a.*
) {RETURNING}
"""


@dataclass(frozen=True)
class Forecast:
    """One device of one shipment: where its fitted battery line reaches 0 % (None: not draining)."""

    shipment_id: int
    device_id: str
    deadline: datetime
    bat: float | None
    drain_per_h: float
    empty_at: datetime | None
    past_deadline: bool


def verdict(forecast: Forecast, margin: timedelta, is_open: bool) -> Verdict:
    """Open when the battery empties before deadline + margin; end when it lasts past
    deadline + 2 x margin; otherwise (in between, or a deadline already past) no change."""
    def lasts(margins: int) -> bool:
        return forecast.empty_at is None or forecast.empty_at >= forecast.deadline + margins * margin

    if not is_open and not forecast.past_deadline and not lasts(1):
        return "open"
    if is_open and lasts(2):
        return "end"
    return None


def evaluate(cur: psycopg.Cursor[Any], trend_h: float, margin_h: float) -> list[AlertChange]:
    """Open and end ``device_battery`` from every active shipment's devices' forecasts."""
    rows = cur.execute(_FORECAST, {"window": timedelta(hours=trend_h)}).fetchall()
    forecasts = [Forecast(*row) for row in rows]
    is_open = {(s, d) for s, d in cur.execute(_OPEN).fetchall()}
    margin = timedelta(hours=margin_h)
    opening = [f for f in forecasts if verdict(f, margin, (f.shipment_id, f.device_id) in is_open) == "open"]
    ending = [f for f in forecasts if verdict(f, margin, (f.shipment_id, f.device_id) in is_open) == "end"]
    out: list[AlertChange] = []
    if opening:
        out += changed(cur, "opened", _RAISE, {
            "shipments": [f.shipment_id for f in opening], "devices": [f.device_id for f in opening],
            "bats": [f.bat for f in opening], "drains": [f.drain_per_h for f in opening],
            "empty": [f.empty_at for f in opening]})
    if ending:
        out += changed(cur, "ended", _END, {"shipments": [f.shipment_id for f in ending],
                                            "devices": [f.device_id for f in ending]})
    if is_open:
        out += changed(cur, "ended", _END_INACTIVE, ())
    return out
