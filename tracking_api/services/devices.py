"""Devices: the inventory (what each tracker and e-seal is, its battery and forecast, where
it is, what it serves, its credentials and custody) and the custody workflow: a device is
issued to a shipment at its office of departure and returned at its destination, each step
audited. An officer sees only devices of shipments touching their region; any other is
``NotFoundError``, as for tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import DictRow

from tracking_api import audit
from tracking_api.access import REGION_SCOPED, visible
from tracking_api.auth import Principal
from tracking_api.pagination import KeyValue
from tracking_api.schemas.devices import (
    Assignment,
    Battery,
    Credentials,
    Custody,
    Device,
    DeviceDetail,
    Fix,
    IssueIn,
    Kind,
    Location,
    ReturnIn,
    ShipmentRef,
    Sort,
    State,
)
from tracking_api.schemas.errors import invalid
from tracking_api.services.errors import ConflictError, NotFoundError

Conn = AsyncConnection[DictRow]
ACTIVE = ("registered", "in_transit")
CLOSED = ("closed", "cancelled")

# Every device the backend knows: heard from, or issued to a shipment (before its first message).
# Per device: its kind, the active shipment it serves (newest), its latest assignment and the
# flags read from it. %(grace)s: CTT_DEVICE_RETURN_GRACE_S as an interval.
_INVENTORY = """
SELECT k.device_id AS id,
       coalesce(CASE WHEN EXISTS (SELECT 1 FROM shipments s WHERE s.tracker_id = k.device_id) THEN 'tracker'
                     WHEN EXISTS (SELECT 1 FROM shipment_seals ss WHERE ss.seal_id = k.device_id) THEN 'seal'
                END,
                CASE c.kind WHEN 'eseal' THEN 'seal' WHEN 'tracker' THEN 'tracker' END, 'unknown') AS kind,
       d.fw, d.state, d.state_ts, d.first_seen, d.last_seen, d.bat,
       lp.ts AS fix_ts, lp.lat AS fix_lat, lp.lon AS fix_lon, lp.spd AS fix_spd, lp.country AS fix_country,
       c.device_id IS NOT NULL AS signing_key, c.must_sign, c.kind AS provisioned_as, c.updated_at AS key_since,
       cur.id AS shipment_id, cur.reference AS shipment_reference, cur.status AS shipment_status,
       cur.deadline AS shipment_deadline, cur.tracker_id AS shipment_tracker,
       a.id AS a_id, a.shipment_id AS a_shipment, a.reference AS a_reference, a.status AS a_status,
       a.issued_at AS a_issued_at, a.issued_by AS a_issued_by, a.issued_office AS a_issued_office,
       a.returned_at AS a_returned_at, a.returned_by AS a_returned_by, a.returned_office AS a_returned_office,
       a.note AS a_note,
       array_remove(ARRAY[
           CASE WHEN a.returned_at IS NULL AND a.status IN ('closed', 'cancelled') THEN 'assigned_to_closed' END,
           CASE WHEN a.returned_at IS NULL AND a.arrived_at < now() - %(grace)s THEN 'missing_after_arrival' END
       ], NULL) AS flags
FROM (SELECT device_id FROM devices UNION SELECT device_id FROM device_assignments) k
LEFT JOIN devices d ON d.device_id = k.device_id
LEFT JOIN latest_positions lp ON lp.device_id = k.device_id
LEFT JOIN device_credentials c ON c.device_id = k.device_id
LEFT JOIN LATERAL (
    SELECT s.id, s.reference, s.status, s.deadline, s.tracker_id FROM shipments s
    WHERE s.id IN (SELECT t.id FROM shipments t WHERE t.tracker_id = k.device_id AND t.status IN ('registered',
                                                                                                    'in_transit')
                   UNION ALL
                   SELECT ss.shipment_id FROM shipment_seals ss WHERE ss.seal_id = k.device_id AND ss.active)
      AND s.status IN ('registered', 'in_transit')
    ORDER BY s.id DESC LIMIT 1) cur ON true
LEFT JOIN LATERAL (
    SELECT da.*, s.reference, s.status, s.arrived_at FROM device_assignments da
    JOIN shipments s ON s.id = da.shipment_id
    WHERE da.device_id = k.device_id ORDER BY da.issued_at DESC, da.id DESC LIMIT 1) a ON true
"""
# Devices of shipments the caller may see (as tracker, seal, or by custody).
_VISIBLE = """(EXISTS (SELECT 1 FROM shipments s WHERE s.tracker_id = b.id AND {visible})
    OR EXISTS (SELECT 1 FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
               WHERE ss.seal_id = b.id AND {visible})
    OR EXISTS (SELECT 1 FROM device_assignments da JOIN shipments s ON s.id = da.shipment_id
               WHERE da.device_id = b.id AND {visible}))"""
# Sort keys as numbers (epoch seconds, %), never null: the cursor carries (key, id). A device
# never heard from is the stalest; one without a battery reading comes after every reading,
# either way ({unknown}: -1 descending, 101 ascending).
SORT_KEYS: dict[Sort, str] = {
    "last_seen": "extract(epoch FROM coalesce(last_seen, 'epoch'::timestamptz))",
    "battery": "coalesce(bat, {unknown})::numeric",
    "id": "0::numeric",
}
# The page's battery: the trend over the window, hourly means, and the current shipment's
# tracker's position for an e-seal without fixes of its own.
_PAGE = """
SELECT p.*, t.points, t.drain_per_h, t.empty_at, t.at AS bat_at,
       extract(epoch FROM t.empty_at - now()) / 3600 AS hours_left,
       coalesce((SELECT json_agg(json_build_object('at', h.at, 'bat', h.bat) ORDER BY h.at)
                 FROM (SELECT time_bucket('1 hour', r.ts) AS at, round(avg(r.bat)::numeric, 1) AS bat
                       FROM battery_readings(p.id, now() - %(window)s) r GROUP BY 1) h), '[]') AS series,
       tp.ts AS tracker_ts, tp.lat AS tracker_lat, tp.lon AS tracker_lon
FROM ({page}) p
LEFT JOIN LATERAL battery_trend(p.id, now() - %(window)s) t ON true
LEFT JOIN latest_positions tp ON tp.device_id = p.shipment_tracker AND p.fix_ts IS NULL
ORDER BY p.sort_key {direction}, p.id {direction}
"""
# The inventory's estimated cost (a lateral lookup per device) passes jit_above_cost at a few
# thousand devices: compiling took 400 ms of a 460 ms listing that runs in 60 ms without it.
_NO_JIT = "SELECT set_config('jit', 'off', true)"
_ASSIGNMENTS = """
SELECT da.id AS a_id, da.shipment_id AS a_shipment, s.reference AS a_reference, s.status AS a_status,
       da.issued_at AS a_issued_at, da.issued_by AS a_issued_by, da.issued_office AS a_issued_office,
       da.returned_at AS a_returned_at, da.returned_by AS a_returned_by, da.returned_office AS a_returned_office,
       da.note AS a_note
FROM device_assignments da JOIN shipments s ON s.id = da.shipment_id
WHERE da.device_id = %s ORDER BY da.issued_at DESC, da.id DESC LIMIT 50
"""


@dataclass(frozen=True)
class Query:
    """A listing's filters, order and page (every filter optional)."""

    kind: Kind | None = None
    state: State | None = None
    battery_below: float | None = None
    flagged: bool | None = None
    shipment: int | None = None
    q: str | None = None
    sort: Sort = "last_seen"
    descending: bool = True
    after: list[KeyValue] | None = None
    limit: int = 100


@dataclass(frozen=True)
class Settings:
    trend_window: timedelta
    return_grace: timedelta


# Reads

async def listing(conn: Conn, caller: Principal, settings: Settings,
                  query: Query) -> tuple[list[Device], list[list[KeyValue]], int]:
    """The page of devices matching ``query``, their sort keys (for the cursor), and how many
    rows were fetched (one more than ``limit`` when another page exists)."""
    conditions, params = _filters(caller, query)
    direction = sql.SQL("DESC" if query.descending else "ASC")
    if query.after is not None:
        conditions.append(sql.SQL("(b.sort_key, b.id) {} (%(after_key)s::numeric, %(after_id)s)").format(
            sql.SQL("<" if query.descending else ">")))
        params |= {"after_key": query.after[0], "after_id": query.after[1]}
    page = sql.SQL("SELECT b.* FROM (SELECT i.*, {key} AS sort_key FROM ({inventory}) i) b WHERE {where} "
                   "ORDER BY b.sort_key {direction}, b.id {direction} LIMIT %(fetch)s").format(
        key=sql.SQL(SORT_KEYS[query.sort].format(unknown=-1 if query.descending else 101)),
        inventory=sql.SQL(_INVENTORY), where=sql.SQL(" AND ").join(conditions), direction=direction)
    await conn.execute(_NO_JIT)
    rows = await (await conn.execute(sql.SQL(_PAGE).format(page=page, direction=direction),
                                     params | _common(settings) | {"fetch": query.limit + 1})).fetchall()
    shown = rows[:query.limit]
    return [device(r) for r in shown], [[str(r["sort_key"]), r["id"]] for r in shown], len(rows)


async def get(conn: Conn, caller: Principal, settings: Settings, device_id: str) -> DeviceDetail:
    """One device with its custody history; ``NotFoundError`` when unknown or not visible."""
    found = await _one(conn, caller, settings, device_id)
    if not found:
        raise NotFoundError(f"device {device_id!r} is not known, or on no shipment of your region")
    history = await (await conn.execute(_ASSIGNMENTS, (device_id,))).fetchall()
    return DeviceDetail(**found[0].model_dump(), assignments=[_assignment(r) for r in history])


async def _one(conn: Conn, caller: Principal, settings: Settings, device_id: str) -> list[Device]:
    conditions, params = _filters(caller, Query())
    conditions.append(sql.SQL("b.id = %(device)s"))
    page = sql.SQL("SELECT b.* FROM (SELECT i.*, 0 AS sort_key FROM ({inventory}) i) b WHERE {where}").format(
        inventory=sql.SQL(_INVENTORY), where=sql.SQL(" AND ").join(conditions))
    await conn.execute(_NO_JIT)
    rows = await (await conn.execute(sql.SQL(_PAGE).format(page=page, direction=sql.SQL("ASC")),
                                     params | _common(settings) | {"device": device_id})).fetchall()
    return [device(r) for r in rows]


def _common(settings: Settings) -> dict[str, Any]:
    return {"grace": settings.return_grace, "window": settings.trend_window}


def _filters(caller: Principal, query: Query) -> tuple[list[sql.Composable], dict[str, Any]]:
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if caller.role in REGION_SCOPED:
        conditions.append(sql.SQL(_VISIBLE).format(visible=visible(caller)))
    for name, clause, value in (
            ("kind", "b.kind = %(kind)s", query.kind), ("state", "b.state = %(state)s", query.state),
            ("battery_below", "b.bat < %(battery_below)s", query.battery_below),
            ("flagged", "(cardinality(b.flags) > 0) = %(flagged)s", query.flagged),
            ("q", "left(b.id, length(%(q)s)) = %(q)s", query.q),
            ("shipment", "b.id IN (SELECT tracker_id FROM shipments WHERE id = %(shipment)s UNION ALL "
                         "SELECT seal_id FROM shipment_seals WHERE shipment_id = %(shipment)s UNION ALL "
                         "SELECT device_id FROM device_assignments WHERE shipment_id = %(shipment)s)",
             query.shipment)):
        if value is not None:
            conditions.append(sql.SQL(clause))
            params[name] = value
    return conditions or [sql.SQL("true")], params


def device(row: DictRow) -> Device:
    """A row of the inventory's page as the API answers it."""
    deadline = row["shipment_deadline"]
    drain, empty_at = row["drain_per_h"], row["empty_at"]
    lasts = None if deadline is None or drain is None else (empty_at is None or empty_at >= deadline)
    hours_left = None if row["hours_left"] is None else max(0.0, float(row["hours_left"]))
    fix = None if row["fix_ts"] is None else Fix(ts=row["fix_ts"], lat=row["fix_lat"], lon=row["fix_lon"],
                                                  spd=row["fix_spd"], country=row["fix_country"])
    location = (Location(lat=fix.lat, lon=fix.lon, at=fix.ts, source="device") if fix is not None
                else Location(lat=row["tracker_lat"], lon=row["tracker_lon"], at=row["tracker_ts"], source="tracker")
                if row["tracker_ts"] is not None else None)
    assignment = None if row["a_id"] is None else _assignment(row)
    custody = Custody(state="never_issued" if assignment is None else
                      "issued" if assignment.returned_at is None else "returned", assignment=assignment)
    return Device(
        id=row["id"], kind=row["kind"], firmware=row["fw"], state=row["state"], state_at=row["state_ts"],
        first_seen=row["first_seen"], last_seen=row["last_seen"],
        battery=Battery(level=row["bat"], at=row["bat_at"], points=row["points"] or 0,
                        drain_per_h=None if drain is None else round(drain, 3), empty_at=empty_at,
                        hours_left=None if hours_left is None else round(hours_left, 2),
                        lasts_until_deadline=lasts, series=row["series"]),
        last_fix=fix, location=location,
        shipment=None if row["shipment_id"] is None else ShipmentRef(
            id=row["shipment_id"], reference=row["shipment_reference"], status=row["shipment_status"],
            deadline=deadline),
        credentials=Credentials(signing_key=row["signing_key"], must_sign=row["must_sign"],
                                provisioned_as=row["provisioned_as"], since=row["key_since"]),
        custody=custody, flags=row["flags"])


def _assignment(row: DictRow) -> Assignment:
    return Assignment(id=row["a_id"], shipment=row["a_shipment"], reference=row["a_reference"],
                      shipment_status=row["a_status"], issued_at=row["a_issued_at"], issued_by=row["a_issued_by"],
                      issued_office=row["a_issued_office"], returned_at=row["a_returned_at"],
                      returned_by=row["a_returned_by"], returned_office=row["a_returned_office"], note=row["a_note"])


# Custody

_SERVES = """
SELECT s.id, s.reference, s.status, s.office_of_departure, s.office_of_destination,
       s.tracker_id = %(device)s OR EXISTS (SELECT 1 FROM shipment_seals ss WHERE ss.shipment_id = s.id
                                            AND ss.seal_id = %(device)s) AS serves
FROM shipments s WHERE s.id = %(shipment)s AND {visible}
"""
_OUT = """
SELECT a.id, a.shipment_id, a.issued_at, s.reference, s.status, s.office_of_destination FROM device_assignments a
JOIN shipments s ON s.id = a.shipment_id
WHERE a.device_id = %s AND a.returned_at IS NULL AND {visible}
FOR UPDATE OF a
"""
_ISSUE = """
INSERT INTO device_assignments (device_id, shipment_id, issued_by, issued_office) VALUES (%s, %s, %s, %s)
RETURNING id
"""
_RETURN = """
UPDATE device_assignments SET returned_at = greatest(issued_at, now()), returned_by = %s, returned_office = %s,
                              note = %s
WHERE id = %s
"""
_OFFICE = "SELECT 1 FROM zones WHERE office_code = %s"


async def issue(conn: Conn, caller: Principal, settings: Settings, device_id: str, body: IssueIn) -> DeviceDetail:
    """Issue ``device_id`` to a registered shipment it serves (its tracker or a seal) at the
    shipment's office of departure. ``NotFoundError`` for a shipment the caller may not see;
    ``ConflictError`` when the device is out already, the shipment is not registered or the
    device serves it not; 422 naming ``office`` when that is not the office of departure."""
    async with conn.transaction():
        query = sql.SQL(_SERVES).format(visible=visible(caller))
        shipment = await (await conn.execute(query, {"device": device_id, "shipment": body.shipment})).fetchone()
        if shipment is None:
            raise NotFoundError(f"shipment {body.shipment} does not exist")
        if shipment["status"] != "registered":
            raise ConflictError(f"shipment {shipment['reference']} is {shipment['status']}: devices are issued to "
                                "a registered shipment, before departure")
        if not shipment["serves"]:
            raise ConflictError(f"device {device_id!r} is neither the tracker nor a seal of shipment "
                                f"{shipment['reference']}")
        if body.office != shipment["office_of_departure"]:
            raise invalid((("body", "office"), f"office {body.office!r} is not the office of departure "
                                               f"{shipment['office_of_departure']!r} of {shipment['reference']}"))
        try:
            async with conn.transaction():  # a savepoint: the conflict is reported, not the aborted transaction
                row = await (await conn.execute(_ISSUE, (device_id, body.shipment, caller.subject,
                                                         body.office))).fetchone()
        except errors.UniqueViolation as exc:
            held = await (await conn.execute(
                "SELECT s.reference, s.status FROM device_assignments a JOIN shipments s ON s.id = a.shipment_id "
                "WHERE a.device_id = %s AND a.returned_at IS NULL", (device_id,))).fetchone()
            where = f" to shipment {held['reference']} ({held['status']})" if held else ""
            raise ConflictError(f"device {device_id!r} is already issued{where}: return it first") from exc
        assert row is not None
        await audit.record(conn, caller, "device.issued", "device", device_id,
                           {"assignment": row["id"], "shipment": body.shipment, "reference": shipment["reference"],
                            "office": body.office})
    return await get(conn, caller, settings, device_id)


async def return_(conn: Conn, caller: Principal, settings: Settings, device_id: str, body: ReturnIn) -> DeviceDetail:
    """Return ``device_id`` at ``body.office``: the shipment's destination, or any office with a
    note saying why. ``NotFoundError`` when the caller may not see its shipment; ``ConflictError``
    when it is not out; 422 naming ``office`` (no such office) or ``note`` (elsewhere, without)."""
    async with conn.transaction():
        query = sql.SQL(_OUT).format(visible=visible(caller, sql.SQL("a.shipment_id")))
        out = await (await conn.execute(query, (device_id,))).fetchone()
        if out is None:
            await get(conn, caller, settings, device_id)  # 404 when unknown or not visible
            raise ConflictError(f"device {device_id!r} is not issued to any shipment")
        if await (await conn.execute(_OFFICE, (body.office,))).fetchone() is None:
            raise invalid((("body", "office"), f"office {body.office!r} is not the code of an office zone"))
        if body.office != out["office_of_destination"] and body.note is None:
            raise invalid((("body", "note"), f"a note is required to return device {device_id!r} at "
                                             f"{body.office!r}: shipment {out['reference']}'s destination is "
                                             f"{out['office_of_destination']!r}"))
        await conn.execute(_RETURN, (caller.subject, body.office, body.note, out["id"]))
        await audit.record(conn, caller, "device.returned", "device", device_id,
                           {"assignment": out["id"], "shipment": out["shipment_id"], "reference": out["reference"],
                            "office": body.office, "note": body.note,
                            "at_destination": body.office == out["office_of_destination"]})
    return await get(conn, caller, settings, device_id)
