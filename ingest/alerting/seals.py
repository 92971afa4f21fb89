"""Seal rules, on the seal events this batch newly stored, in fix-time order.

- ``armed``: with a declared seal number (when the shipment declares any) inside the
  office of departure zone, or re-armed inside an itinerary office zone right after the
  authorised inspection opening there: a ``seal_armed`` milestone. Otherwise an
  instantaneous ``seal_mismatch`` (detail: seal number, reason).
- An opening (``opened``, ``tampered``, ``cut``) once the shipment departed is a breach,
  except inside the destination zone at or after release, and except an ``opened`` or
  ``cut`` inside an itinerary office zone with an unused authorised inspection there (an
  ``inspection_opening`` milestone; the inspection is used up). Only an officer ends a
  breach (resolve): a re-arming is stored and shown, not trusted; a breach after an
  officer resolved the last one opens a new alert (ending the resolved one).

Shipments are looked up per batch (``ingest.seal_numbers``): arming happens while a
shipment is still ``registered``, and release after it ``arrived``; the engine's
registry holds in-transit shipments only. Zone containment is the engine's kernel
(``geofence.kernels.in_polygon`` on the registry's network, which holds every zone),
so a seal and a tracker are inside the same zone on the same test.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geofence import engine, kernels
from geofence.geometry import Network
from ingest.alerting import detailed
from ingest.alerting.apply import INSERT, insert_params
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from ingest.batch import Batch, SealRow
from ingest.registry import Registry
from ingest.seal_numbers import Office, SealShipment, claims, shipments
from protocol.alerts import AlertChange

# What an officer does to inspect: open the seal or cut its cable. Tampering is never an inspection.
INSPECTION_EVENTS = frozenset({"opened", "cut"})
# An inspection authorised a little after the opening it covers still covers it (clocks, typing).
INSPECTION_SLACK_MS = 300_000

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
# Its country: the office's, else where the shipment's tracker was last seen.
_MILESTONE = f"""
INSERT INTO shipment_events (shipment_id, device_id, kind, office_code, at, lon, lat, late, detail, country)
SELECT v.*, coalesce((SELECT z.country FROM zones z WHERE z.office_code = v.office_code),
                     (SELECT lp.country FROM shipments s JOIN latest_positions lp ON lp.device_id = s.tracker_id
                      WHERE s.id = v.shipment_id))
FROM (VALUES (%s::int8, %s::text, %s::text, %s::text, {MS.format("%s::int8")}, %s::float8, %s::float8, %s::bool,
              %s::jsonb)) AS v(shipment_id, device_id, kind, office_code, at, lon, lat, late, detail)
ON CONFLICT DO NOTHING
"""
# The oldest unused inspection at this office that covers an opening at ``ts``: used up by it.
_USE_INSPECTION = f"""
UPDATE inspections SET used_at = {MS.format("%(ts)s::int8")}, used_device = %(device)s, used_seq = %(seq)s
WHERE id = (
    SELECT id FROM inspections
    WHERE shipment_id = %(shipment)s AND office_code = %(office)s AND used_at IS NULL
      AND authorised_at <= {MS.format("%(ts)s::int8")} + make_interval(secs => %(slack_s)s)
    ORDER BY authorised_at, id LIMIT 1 FOR UPDATE
)
RETURNING id
"""
# An inspection opening of this seal at this office not yet followed by its re-arming there.
_REARMABLE = f"""
SELECT i.id FROM inspections i
WHERE i.shipment_id = %(shipment)s AND i.office_code = %(office)s AND i.used_device = %(device)s
  AND i.used_at <= {MS.format("%(ts)s::int8")}
  AND NOT EXISTS (SELECT 1 FROM shipment_events e
                  WHERE e.shipment_id = i.shipment_id AND e.kind = 'seal_armed' AND e.device_id = i.used_device
                    AND e.office_code = i.office_code AND e.at >= i.used_at)
ORDER BY i.used_at DESC LIMIT 1
"""


def seal_events(cur: psycopg.Cursor[Any], batch: Batch, new_seals: set[tuple[str, int]],
                registry: Registry) -> list[AlertChange]:
    """Milestones written and alerts opened by the seal events this batch newly stored."""
    rows = sorted((item for item in zip(batch.seals, batch.seal_backlog, strict=True)
                   if (item[0][0], item[0][1]) in new_seals), key=_record_time)
    if not rows:
        return []
    found = claims(cur, (row[0] for row, _ in rows), (row[3] for row, _ in rows))
    ships = shipments(cur, [*found.by_device.values(), *found.by_number.values()])
    out: list[AlertChange] = []
    for row, backlog in rows:
        device_id, _seq, ts, seal_number, event, lat, lon, _bat, _rcv = row
        ship = ships.get(found.shipment_of(device_id, seal_number) or -1)
        if ship is None:
            continue  # its shipment closed since the store looked (the event is stored, nothing to check)
        if lon is None or lat is None:
            lon, lat = _tracker_at(cur, ship.tracker_id, ts)
        seal = _Seal(row, lon, lat, backlog)
        if event == "armed":
            out += _armed(cur, registry.network, ship, seal)
        elif event in engine.BREACH_EVENTS and ship.departed_ms is not None and ts >= ship.departed_ms:
            out += _opening(cur, registry.network, ship, seal)
    return out


class _Seal:
    """One seal event with the position that decides it (its own, else the tracker's)."""

    def __init__(self, row: SealRow, lon: float | None, lat: float | None, backlog: bool) -> None:
        self.device_id, self.seq, self.ts, self.number, self.event = row[0], row[1], row[2], row[3], row[4]
        self.lon, self.lat, self.backlog = lon, lat, backlog

    def interval(self, alert_type: str, ended: bool) -> Interval:
        return Interval(alert_type, self.ts, self.ts if ended else None, self.ts, self.lon, self.lat, self.backlog)


def _armed(cur: psycopg.Cursor[Any], network: Network, ship: SealShipment, seal: _Seal) -> list[AlertChange]:
    """A ``seal_armed`` milestone, or a ``seal_mismatch`` saying why not."""
    if ship.declared and seal.number not in ship.declared:
        return _mismatch(cur, ship, seal, f"seal number {seal.number} is not declared on the shipment")
    if seal.lon is None or seal.lat is None:
        return _mismatch(cur, ship, seal, "armed where no position is known (neither the seal's nor the tracker's)")
    if inside(network, ship.departure.zone_id, seal.lon, seal.lat):
        _milestone(cur, ship, seal, "seal_armed", ship.departure, {"seal_number": seal.number})
        return []
    for office in _offices_at(network, ship, seal):
        params = {"shipment": ship.id, "office": office.code, "device": seal.device_id, "ts": seal.ts}
        inspection = cur.execute(_REARMABLE, params).fetchone()
        if inspection is not None:
            detail = {"seal_number": seal.number, "inspection": inspection[0]}
            _milestone(cur, ship, seal, "seal_armed", office, detail)
            return []
    return _mismatch(cur, ship, seal, f"armed outside the office of departure {ship.departure.code}")


def _opening(cur: psycopg.Cursor[Any], network: Network, ship: SealShipment, seal: _Seal) -> list[AlertChange]:
    """Nothing (released at destination), an inspection opening, or a breach."""
    if seal.lon is not None and seal.lat is not None:
        released = ship.released_ms is not None and seal.ts >= ship.released_ms
        if released and inside(network, ship.destination.zone_id, seal.lon, seal.lat):
            return []
        if seal.event in INSPECTION_EVENTS:
            for office in _offices_at(network, ship, seal):
                params = {"shipment": ship.id, "office": office.code, "device": seal.device_id, "seq": seal.seq,
                          "ts": seal.ts, "slack_s": INSPECTION_SLACK_MS / 1000}
                used = cur.execute(_USE_INSPECTION, params).fetchone()
                if used is not None:
                    detail = {"seal_number": seal.number, "inspection": used[0], "event": seal.event}
                    _milestone(cur, ship, seal, "inspection_opening", office, detail)
                    return []
    return _breach(cur, ship, seal)


def _breach(cur: psycopg.Cursor[Any], ship: SealShipment, seal: _Seal) -> list[AlertChange]:
    if cur.execute(_BREACH_COVERED, (ship.id, seal.device_id, seal.ts, seal.ts)).fetchone():
        return []  # the same breach, reported again before an officer resolved it
    out = changed(cur, "ended", _END_RESOLVED, (seal.ts, ship.id, seal.device_id))
    params = insert_params(seal.interval("seal_breach", ended=False), ship.id, seal.device_id, source_seq=seal.seq)
    return out + changed(cur, "opened", INSERT, params)


def _mismatch(cur: psycopg.Cursor[Any], ship: SealShipment, seal: _Seal, reason: str) -> list[AlertChange]:
    detail = {"seal_number": seal.number, "reason": reason}
    return detailed.insert(cur, seal.interval("seal_mismatch", ended=True), ship.id, seal.device_id, detail,
                           source_seq=seal.seq)


def _milestone(cur: psycopg.Cursor[Any], ship: SealShipment, seal: _Seal, kind: str, office: Office,
               detail: dict[str, Any]) -> None:
    cur.execute(_MILESTONE, (ship.id, seal.device_id, kind, office.code, seal.ts, seal.lon, seal.lat, seal.backlog,
                             Jsonb({"position": office.position, **detail})))


def _offices_at(network: Network, ship: SealShipment, seal: _Seal) -> list[Office]:
    """The itinerary's offices whose zone holds the seal's position."""
    assert seal.lon is not None and seal.lat is not None
    return [o for o in ship.offices if inside(network, o.zone_id, seal.lon, seal.lat)]


def inside(network: Network, zone_id: int | None, lon: float, lat: float) -> bool:
    """Whether zone ``zone_id`` (a database id) holds (lon, lat) degrees; False for a zone
    the network lacks (missing, or left out as unbuildable)."""
    z = network.zone_index.get(zone_id, -1) if zone_id is not None else -1
    if z < 0:
        return False
    return bool(kernels.in_polygon(z, lon, lat, network.zone_ring_off, network.ring_off, network.vx, network.vy))


def _tracker_at(cur: psycopg.Cursor[Any], tracker_id: str, ts: int) -> tuple[float | None, float | None]:
    """The tracker's last fix within 30 minutes before ``ts`` (a seal event without a position)."""
    found = cur.execute(_TRACKER_AT, (tracker_id, ts, ts)).fetchone()
    return (found[0], found[1]) if found else (None, None)


def _record_time(item: tuple[SealRow, bool]) -> int:
    (_device, _seq, ts, *_rest), _backlog = item
    return ts
