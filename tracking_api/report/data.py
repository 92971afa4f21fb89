"""What the shipment report shows, gathered with the functions the API's routes
use: the shipment and its timeline (``services.shipments``), its alerts and track
(the export queries, ``services.exports``), its route and office zones
(``GET /routes/{id}``, ``GET /zones/{id}``) and the countries
(``GET /countries``). Only the audit entries and the raw seal events, which no
route serves, are read here.

A long track is thinned while it streams in (the first fix of each time bucket,
plus the fix at each alert), so memory follows MAP_POINTS, not the trip.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from tracking_api.auth import Principal
from tracking_api.report.map_image import Extent, Position, extent
from tracking_api.routers import countries as countries_route
from tracking_api.routers import geography
from tracking_api.schemas.geography import ZoneFeature
from tracking_api.schemas.shipments import Shipment, TimelineItem
from tracking_api.services import exports, photos
from tracking_api.services import shipments as shipment_service

Conn = AsyncConnection[DictRow]
MAP_POINTS = 2_000  # track positions drawn at most
TABLE_ROWS = 200  # rows per table at most; a line says how many more there are

_AUDIT = """
SELECT id, at, actor, role, action, object_type, object_id, encode(hash, 'hex') AS hash, count(*) OVER () AS total
FROM audit_log
WHERE (object_type = 'shipment' AND object_id = %(shipment)s::text)
   OR (object_type = 'alert' AND object_id IN (SELECT id::text FROM alerts WHERE shipment_id = %(shipment)s))
ORDER BY id LIMIT %(limit)s
"""
_SEAL_EVENTS = """
SELECT ts, device_id, seal_id, event, lat, lon, bat, count(*) OVER () AS total FROM seal_events
WHERE (device_id = ANY(%(seals)s) OR seal_id = ANY(%(seals)s)) AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts, device_id, seq LIMIT %(limit)s
"""
SEAL_KINDS = ("seal_armed", "inspection_opening", "inspection_authorised")


@dataclass
class ReportData:
    shipment: Shipment
    timeline: list[TimelineItem]
    alerts: list[dict[str, Any]]  # the one alert object, oldest first; at most TABLE_ROWS
    alerts_total: int
    track: list[Position]  # thinned to about MAP_POINTS
    track_fixes: int  # fixes in the whole track
    route: list[Position]
    zones: list[ZoneFeature]
    countries: list[dict[str, Any]]  # GeoJSON Features with outlines, in the map's extent
    extent: Extent
    audit: list[dict[str, Any]]
    audit_total: int
    seal_events: list[dict[str, Any]]
    seal_events_total: int = 0
    # Photos from the roadside with their thumbnails, oldest first (tracking_api.services.photos).
    photos: list[dict[str, Any]] = field(default_factory=list)


async def gather(conn: Conn, caller: Principal, shipment_id: int) -> ReportData:
    """Everything the report shows (``NotFoundError`` for a shipment ``caller`` may not see)."""
    shipment = await shipment_service.get(conn, caller, shipment_id)
    timeline = (await shipment_service.timeline(conn, caller, shipment_id)).items
    alerts, alerts_total = await _alerts(conn, caller, shipment_id)
    track, fixes = await _track(conn, caller, shipment, [a["crossed_at"] for a in alerts])
    route = await geography.get_route(shipment.route_id, conn, caller)
    zones = [await geography.get_zone(o.zone_id, conn, caller) for o in shipment.itinerary]
    route_points = [(p[0], p[1]) for p in route.geometry.coordinates]
    zone_points = [(p[0], p[1]) for z in zones for ring in z.geometry.coordinates for p in ring]
    marks = [(a["lon"], a["lat"]) for a in alerts if a["lon"] is not None and a["lat"] is not None]
    box = extent([*track, *route_points, *zone_points, *marks])
    audit = await _audit(conn, shipment_id)
    seal_events = await _seal_events(conn, shipment)
    return ReportData(
        shipment=shipment, timeline=timeline, alerts=alerts, alerts_total=alerts_total, track=track,
        track_fixes=fixes, route=route_points, zones=zones, countries=await _countries(conn, caller, box),
        extent=box, audit=audit, audit_total=audit[0]["total"] if audit else 0,
        seal_events=seal_events, seal_events_total=seal_events[0]["total"] if seal_events else 0,
        photos=await photos.of_shipment(conn, caller, shipment_id))


async def _alerts(conn: Conn, caller: Principal, shipment_id: int) -> tuple[list[dict[str, Any]], int]:
    kept: list[dict[str, Any]] = []
    total = 0
    async for chunk in exports.chunks(conn, exports.alerts(caller, None, shipment=shipment_id)):
        kept.extend(chunk[:TABLE_ROWS - len(kept)])
        total += len(chunk)
    return kept, total


async def _track(conn: Conn, caller: Principal, shipment: Shipment,
                 alert_times: list[datetime]) -> tuple[list[Position], int]:
    """The shipment's track thinned to about MAP_POINTS positions: the first fix of each of
    MAP_POINTS time buckets over the trip, and the first fix at or after each alert's crossing."""
    if shipment.departed_at is None:
        return [], 0
    start = shipment.departed_at
    end = shipment.arrived_at or shipment.closed_at or datetime.now(UTC)
    bucket_s = max((end - start).total_seconds() / MAP_POINTS, 1e-3)
    pending = sorted(alert_times)
    kept: list[Position] = []
    last_bucket = -1
    fixes = 0
    async for chunk in exports.chunks(conn, exports.tracks(caller, None, shipment=shipment.id)):
        for fix in chunk:
            fixes += 1
            bucket = int((fix["ts"] - start).total_seconds() // bucket_s)
            at_alert = bisect.bisect_right(pending, fix["ts"]) > 0
            if bucket != last_bucket or at_alert:
                kept.append((fix["lon"], fix["lat"]))
                last_bucket = bucket
            if at_alert:
                del pending[:bisect.bisect_right(pending, fix["ts"])]
    return kept, fixes


async def _countries(conn: Conn, caller: Principal, box: Extent) -> list[dict[str, Any]]:
    """The countries whose box meets the map's, with their outlines (two calls of GET /countries)."""
    boxes = json.loads(bytes((await countries_route.list_countries(conn, caller, geometry=False)).body))
    w, s, e, n = box
    codes = [f["id"] for f in boxes["features"]
             if f["bbox"] and f["bbox"][0] <= e and f["bbox"][2] >= w and f["bbox"][1] <= n and f["bbox"][3] >= s]
    if not codes:
        return []
    outlines = json.loads(bytes((await countries_route.list_countries(conn, caller, geometry=True,
                                                                      code=codes)).body))
    features: list[dict[str, Any]] = outlines["features"]
    return features


async def _audit(conn: Conn, shipment_id: int) -> list[dict[str, Any]]:
    """The audit entries of the shipment and of its alerts (all of them, not only those shown)."""
    params = {"shipment": shipment_id, "limit": TABLE_ROWS}
    return [dict(r) for r in await (await conn.execute(_AUDIT, params)).fetchall()]


async def _seal_events(conn: Conn, shipment: Shipment) -> list[dict[str, Any]]:
    """The raw e-seal events of its seals during its life."""
    params = {"seals": shipment.seal_ids, "start": shipment.created_at,
              "end": shipment.closed_at or datetime.max.replace(tzinfo=UTC), "limit": TABLE_ROWS}
    return [dict(r) for r in await (await conn.execute(_SEAL_EVENTS, params)).fetchall()]
