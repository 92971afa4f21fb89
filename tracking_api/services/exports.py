"""Exports of alerts, tracks and shipments over a time range, read through a
server-side (named) cursor a chunk at a time: a month of a whole fleet's fixes
never sits in the API's memory, only ``CHUNK_ROWS`` of them.

The queries here are also the shipment report's (``tracking_api.report``): its
alerts and track are the rows an export of the shipment gives. An officer gets
only the rows of shipments touching their region (``access.visible``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row

from protocol.alerts import alert
from tracking_api.access import visible
from tracking_api.auth import Principal
from tracking_api.progress import route_lengths
from tracking_api.schemas.errors import invalid
from tracking_api.services import shipments as shipment_service

Conn = AsyncConnection[DictRow]
Kind = Literal["alerts", "tracks", "shipments"]
# Rows per FETCH from the server-side cursor: what the API holds of an export at a time.
CHUNK_ROWS = 1000


@dataclass(frozen=True)
class Window:
    """``[start, end)``, both aware; an export's required time range."""

    start: datetime
    end: datetime

    def label(self) -> str:
        """For file names: ``20261101T000000Z-20261201T000000Z``."""
        return "-".join(t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for t in (self.start, self.end))


def window(start: datetime, end: datetime, max_days: int) -> Window:
    """The range in UTC, checked: both representable in UTC (422 naming the field), ``from`` before
    ``to``, at most ``max_days`` days long (422 naming ``to``)."""
    start, end = _in_utc("from", start), _in_utc("to", end)
    if start >= end:
        raise invalid((("query", "to"), f"to ({rfc3339(end)}) must be after from ({rfc3339(start)})"))
    if end - start > timedelta(days=max_days):
        raise invalid((("query", "to"), f"the range {rfc3339(start)} to {rfc3339(end)} is longer than "
                                        f"{max_days} days (CTT_EXPORT_MAX_DAYS): export it in parts"))
    return Window(start, end)


def _in_utc(name: str, value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+00:01 is before year 1 in UTC
        raise invalid((("query", name), f"{name} {value.isoformat()} is out of range in UTC")) from None


@dataclass(frozen=True)
class Export:
    """One export's query (named parameters) and what its rows are."""

    kind: Kind
    query: sql.Composed
    params: dict[str, Any] = field(default_factory=dict)


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(conditions)


_ALERTS = sql.SQL("SELECT a.* FROM alert_view a WHERE {where} ORDER BY a.started_at, a.id")
_IN_REGION = sql.SQL("EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = {} AND sr.region_code = "
                     "%(region)s)")


def alerts(caller: Principal, span: Window | None, **filters: Any) -> Export:
    """The alerts (the one alert object) that started in ``span`` (None: any time), oldest first.
    ``filters``: type, status, shipment, country (alpha-3), region (a region code), None = any."""
    conditions = [visible(caller, sql.SQL("a.shipment"))]
    params = {k: v for k, v in filters.items() if v is not None}
    for name in ("type", "status", "shipment", "country"):
        if name in params:
            conditions.append(sql.SQL("a.{} = {}").format(sql.Identifier(name), sql.Placeholder(name)))
    if "region" in params:
        conditions.append(_IN_REGION.format(sql.SQL("a.shipment")))
    if span is not None:
        conditions.append(sql.SQL("a.started_at >= %(start)s AND a.started_at < %(end)s"))
        params |= {"start": span.start, "end": span.end}
    return Export("alerts", _ALERTS.format(where=_where(conditions)), params)


# A shipment's track: its tracker's fixes from departure to arrival (or close), as
# GET /devices/{id}/track serves an officer. A consolidated truck's fixes are in each of its shipments.
_TRACKS = sql.SQL("""
SELECT s.id AS shipment, s.reference, f.device_id AS device, f.ts, f.lon, f.lat, f.spd, f.hdg, f.country
FROM shipments s
JOIN fixes f ON f.device_id = s.tracker_id AND f.ts >= s.departed_at
            AND f.ts < coalesce(s.arrived_at, s.closed_at, 'infinity'){span}
WHERE s.departed_at IS NOT NULL AND {where}
ORDER BY s.id, f.ts, f.seq
""")


def tracks(caller: Principal, span: Window | None, shipment: int | None = None, device: str | None = None) -> Export:
    """Every fix of the shipments' trackers while in transit, in ``span`` (None: all), by shipment then time."""
    conditions = [visible(caller)]
    params: dict[str, Any] = {}
    if shipment is not None:
        conditions.append(sql.SQL("s.id = %(shipment)s"))
        params["shipment"] = shipment
    if device is not None:
        conditions.append(sql.SQL("s.tracker_id = %(device)s"))
        params["device"] = device
    span_sql = sql.SQL("")
    if span is not None:
        # Also on the shipments: only those in transit during the range are joined at all.
        conditions.append(sql.SQL("s.departed_at < %(end)s AND coalesce(s.arrived_at, s.closed_at, 'infinity') "
                                  "> %(start)s"))
        span_sql = sql.SQL(" AND f.ts >= %(start)s AND f.ts < %(end)s")
        params |= {"start": span.start, "end": span.end}
    return Export("tracks", _TRACKS.format(span=span_sql, where=_where(conditions)), params)


def shipments(caller: Principal, span: Window, status: str | None = None, office: str | None = None) -> Export:
    """The shipments (the API's shipment object) open at some time in ``span``: registered before
    its end and not closed before its start; newest first, as ``GET /shipments``."""
    conditions = [visible(caller), sql.SQL("s.created_at < %(end)s AND coalesce(s.closed_at, 'infinity') >= "
                                           "%(start)s")]
    params: dict[str, Any] = {"start": span.start, "end": span.end}
    if status is not None:
        conditions.append(sql.SQL("s.status = %(status)s"))
        params["status"] = status
    if office is not None:
        conditions.append(sql.SQL("EXISTS (SELECT 1 FROM shipment_offices o WHERE o.shipment_id = s.id "
                                  "AND o.office_code = %(office)s)"))
        params["office"] = office
    query = shipment_service.SELECT.format(where=_where(conditions), limit=sql.SQL("ALL"))
    return Export("shipments", query, params)


async def chunks(conn: Conn, export: Export, size: int = CHUNK_ROWS) -> AsyncIterator[list[dict[str, Any]]]:
    """The export's records (see ``records``) ``size`` rows at a time, from a server-side cursor
    in a transaction of ``conn`` (a savepoint if one is open)."""
    async with conn.transaction(), conn.cursor(name=f"ctt_export_{export.kind}", row_factory=dict_row) as cur:
        await cur.execute(export.query, export.params)
        while rows := await cur.fetchmany(size):
            yield await records(conn, export.kind, rows)


async def records(conn: Conn, kind: Kind, rows: list[DictRow]) -> list[dict[str, Any]]:
    """Rows as the API's objects, plain values with times in UTC: alerts the one alert object,
    shipments the shipment object (progress from the route's length), tracks the fix columns."""
    if kind == "alerts":
        return [_utc({f: getattr(a, f) for f in a.__struct_fields__}) for a in map(alert, rows)]
    if kind == "shipments":
        lengths = await route_lengths(conn, {r["route_id"] for r in rows})
        return [_utc(shipment_service.shipment(r, lengths).model_dump()) for r in rows]
    return [_utc(dict(r)) for r in rows]


def _utc(value: Any) -> Any:
    """``value`` with every datetime in it in UTC (the session's time zone is the server's)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, Mapping):
        return {k: _utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utc(v) for v in value]
    return value


def rfc3339(value: datetime) -> str:
    """``2026-11-23T06:21:10.836000Z``: UTC with ``Z``, as the alert object's encoding."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
