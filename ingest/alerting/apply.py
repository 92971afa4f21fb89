"""Carry out reconciliation operations on one tracker's alerts (see reconcile.py).

A truck may carry several shipments on one tracker (a consolidated load): the
engine evaluates the tracker under one of them and every alert it raises is
inserted for each shipment on the truck (``TRUCK``); the database groups them
under one ``incident`` (schema/022). A change to one of them (new times, an
ending, a withdrawal) is made to the whole incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geofence.engine import ENGINE_ALERT_TYPES
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Contest, End, Insert, Interval, Operation, Stored, Update, Withdraw
from protocol.alerts import SEVERITY, AlertChange

# The engine's alert types: a replay after late data reconciles these.
CONDITION_TYPES: tuple[str, ...] = ENGINE_ALERT_TYPES
# Who changes alerts on its own, in the audit log.
ACTOR = "ctt-ingest"

STORED = """
SELECT id, type, (extract(epoch FROM started_at) * 1000)::int8 AS started_ms,
       (extract(epoch FROM ended_at) * 1000)::int8 AS ended_ms, status, contested_reason IS NOT NULL AS contested
FROM alerts
WHERE shipment_id = %s AND device_id = %s AND type = ANY(%s) AND NOT (detail ? 'withdrawn')
ORDER BY started_at, id
"""
# The shipments on the truck of shipment {sid} whose tracker is {device}: itself, and the other
# in-transit shipments with that tracker and vehicle (a seal's device is no tracker: itself only).
TRUCK = """(SELECT t.id FROM shipments t WHERE t.id = {sid} OR (t.tracker_id = {device} AND t.status = 'in_transit'
            AND t.vehicle = (SELECT v.vehicle FROM shipments v WHERE v.id = {sid})))"""
# The alerts of the incident alert {id} belongs to (itself when it is alone).
INCIDENT = "(SELECT i.incident FROM alerts i WHERE i.id = {id})"
INSERT = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lon, lat, severity, late,
                        source_seq, country, detail)
    SELECT %(type)s, t.id, %(device)s, {MS.format("%(started)s::int8")}, {MS.format("%(ended)s::int8")},
           {MS.format("%(crossed)s::int8")}, %(lon)s, %(lat)s, %(severity)s, %(late)s, %(source_seq)s, %(country)s,
           %(detail)s
    FROM shipments t WHERE t.id IN {TRUCK.format(sid="%(shipment)s", device="%(device)s")}
    ORDER BY t.id <> %(shipment)s, t.id
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {RETURNING}
"""
_UPDATE = f"""
WITH changed AS (
    UPDATE alerts SET started_at = {MS.format("%(started)s::int8")}, ended_at = {MS.format("%(ended)s::int8")},
                      crossed_at = {MS.format("%(crossed)s::int8")}, lon = %(lon)s, lat = %(lat)s, updated_at = now()
    WHERE incident = {INCIDENT.format(id="%(id)s")}
    RETURNING *
) {RETURNING}
"""
_WITHDRAW = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = started_at, updated_at = now(), detail = detail || '{{"withdrawn": true}}'::jsonb
    WHERE incident = {INCIDENT.format(id="%(id)s")}
    RETURNING *
) {RETURNING}
"""
# Kept, ended if it was open (so a new alert of its type can open), and audited in the same statement.
_CONTEST = f"""
WITH changed AS (
    UPDATE alerts SET contested_reason = %(reason)s, ended_at = coalesce(ended_at, started_at), updated_at = now()
    WHERE incident = {INCIDENT.format(id="%(id)s")} AND contested_reason IS NULL
    RETURNING *
), audited AS (
    INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)
    SELECT '{ACTOR}', 'system', 'alert.contested', 'alert', id::text,
           jsonb_build_object('reason', %(reason)s, 'type', type, 'shipment', shipment_id, 'device', device_id,
                              'status', status)
    FROM changed
) {RETURNING}
"""


def stored(cur: psycopg.Cursor[Any], shipment_id: int, device_id: str) -> list[Stored]:
    """The tracker's condition alerts of this shipment, as reconcile takes them."""
    rows = cur.execute(STORED, (shipment_id, device_id, list(CONDITION_TYPES))).fetchall()
    return [Stored(*row) for row in rows]


def apply(cur: psycopg.Cursor[Any], shipment_id: int, device_id: str,
          operations: Sequence[Operation]) -> list[AlertChange]:
    """Run ``operations`` in order; the changes to publish after commit."""
    out: list[AlertChange] = []
    for op in operations:
        match op:
            case Insert(interval):
                out += changed(cur, "opened", INSERT, insert_params(interval, shipment_id, device_id))
            case Update(alert_id, interval):
                out += changed(cur, "updated", _UPDATE, _times(alert_id, interval))
            case End(alert_id, interval):
                out += changed(cur, "ended", _UPDATE, _times(alert_id, interval))
            case Withdraw(alert_id):
                out += changed(cur, "withdrawn", _WITHDRAW, {"id": alert_id})
            case Contest(alert_id, reason):
                out += changed(cur, "contested", _CONTEST, {"id": alert_id, "reason": reason})
    return out


def insert_params(interval: Interval, shipment_id: int, device_id: str,
                  source_seq: int | None = None) -> dict[str, Any]:
    """``INSERT``'s parameters: the alert for ``shipment_id`` and every other shipment on its truck."""
    return {"type": interval.type, "shipment": shipment_id, "device": device_id, "started": interval.started_ms,
            "ended": interval.ended_ms, "crossed": interval.crossed_ms, "lon": interval.lon, "lat": interval.lat,
            "severity": SEVERITY[interval.type], "late": interval.late, "source_seq": source_seq,
            "country": interval.country, "detail": Jsonb(dict(interval.detail or {}))}


def _times(alert_id: int, interval: Interval) -> dict[str, Any]:
    return {"id": alert_id, "started": interval.started_ms, "ended": interval.ended_ms,
            "crossed": interval.crossed_ms, "lon": interval.lon, "lat": interval.lat}
