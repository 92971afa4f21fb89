"""Where trucks are and were: a device's track, and the latest positions of
in-transit shipments, as GeoJSON (RFC 7946, [lon, lat])."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from psycopg import sql
from pydantic import BaseModel, Field

from protocol import topics
from tracking_api.access import REGION_SCOPED, visible
from tracking_api.deps import Caller, Conn, LiveHub, Settings
from tracking_api.schemas.geojson import LineStringGeometry

router = APIRouter(tags=["tracks"])

DEVICE_ID = f"^{topics.DEVICE_ID}$"
NOMINAL_INTERVAL_S = 15  # a tracker's usual reporting interval: the raw track of a range this fine is small


class TrackProperties(BaseModel):
    device: str
    start: datetime
    end: datetime
    points: int = Field(description="Positions in the line")
    downsampled: bool = Field(description="True when the range was long: one position per bucket")
    bucket_s: int | None = Field(description="Bucket width when downsampled (first fix of each bucket)")
    times: list[datetime] = Field(description="Fix time of each position, in line order")


class TrackFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: LineStringGeometry | None = Field(description="Null when the range holds fewer than two fixes")
    properties: TrackProperties

    model_config = {"json_schema_extra": {"examples": [{
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[39.6682, -4.0435], [39.6601, -4.0391]]},
        "properties": {"device": "trk-0042", "start": "2026-11-23T06:00:00Z", "end": "2026-11-23T07:00:00Z",
                       "points": 2, "downsampled": False, "bucket_s": None,
                       "times": ["2026-11-23T06:00:05Z", "2026-11-23T06:00:20Z"]}}]}}


class PositionProperties(BaseModel):
    shipment: int
    reference: str
    device: str
    ts: datetime
    spd: float | None
    hdg: float | None
    state: str | None = Field(description="Device connection state: online, offline, lost")
    open_alerts: list[str] = Field(description="Types of the shipment's open conditions")


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(description="[lon, lat]")


class PositionFeature(BaseModel):
    type: str = "Feature"
    id: int
    geometry: PointGeometry
    properties: PositionProperties


class PositionCollection(BaseModel):
    type: str = "FeatureCollection"
    features: list[PositionFeature]

    model_config = {"json_schema_extra": {"examples": [{"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [37.4667, -2.0833]},
        "properties": {"shipment": 7, "reference": "26KE0000000000001", "device": "trk-0042",
                       "ts": "2026-11-23T07:00:05Z", "spd": 61.5, "hdg": 310.0, "state": "online",
                       "open_alerts": ["route_deviation"]}}]}]}}


# The shipments ``s`` the device served (as tracker or as one of its seals).
_SERVED_BY_DEVICE = sql.SQL("""(s.tracker_id = %(device)s
       OR EXISTS (SELECT 1 FROM shipment_seals ss WHERE ss.shipment_id = s.id AND ss.seal_id = %(device)s))""")
_DEVICE_VISIBLE = sql.SQL("SELECT EXISTS (SELECT 1 FROM shipments s WHERE {served} AND {visible})")
# A region-scoped caller sees a fix only while the device served a shipment visible to them:
# from its departure to its arrival (or close), not the device's other journeys.
_IN_VISIBLE_STRETCH = sql.SQL("""
  AND EXISTS (SELECT 1 FROM shipments s
              WHERE {served} AND {visible} AND s.departed_at IS NOT NULL AND ts >= s.departed_at
                AND ts < coalesce(s.arrived_at, s.closed_at, 'infinity'))""")
_RAW = sql.SQL("""
SELECT ts, lon, lat FROM fixes WHERE device_id = %(device)s AND ts >= %(start)s AND ts < %(end)s{scope}
ORDER BY ts, seq LIMIT %(limit)s
""")
_BUCKETED = sql.SQL("""
SELECT min(ts) AS ts, first(lon, ts) AS lon, first(lat, ts) AS lat FROM fixes
WHERE device_id = %(device)s AND ts >= %(start)s AND ts < %(end)s{scope}
GROUP BY time_bucket(%(bucket)s, ts) ORDER BY 1 LIMIT %(limit)s
""")
# The whole FeatureCollection is built by PostgreSQL: 10,000 trucks in one
# round trip and no per-feature Python objects.
_LATEST = sql.SQL("""
WITH open AS (
    SELECT shipment_id, array_agg(DISTINCT type ORDER BY type) AS types FROM alerts
    WHERE ended_at IS NULL AND status <> 'resolved' GROUP BY shipment_id
)
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', s.id,
    'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array(lp.lon, lp.lat)),
    'properties', json_build_object(
        'shipment', s.id, 'reference', s.reference, 'device', s.tracker_id, 'ts', lp.ts, 'spd', lp.spd,
        'hdg', lp.hdg, 'state', d.state, 'open_alerts', coalesce(o.types, '{{}}'))
) ORDER BY s.id), '[]'))::text AS body
FROM shipments s
JOIN latest_positions lp ON lp.device_id = s.tracker_id
LEFT JOIN devices d ON d.device_id = s.tracker_id
LEFT JOIN open o ON o.shipment_id = s.id
WHERE s.status = 'in_transit' AND {visible}
""")


@router.get("/devices/{device_id}/track", response_model=TrackFeature, summary="A device's track as GeoJSON",
            responses={404: {"description": "No such device, or not on a shipment the caller may see"},
                       422: {"description": "Bad range: start after end, longer than 400 days, or holding "
                                            "more than CTT_TRACK_MAX_ROWS (50,000) positions"}})
async def track(
    conn: Conn, caller: Caller, settings: Settings,
    device_id: Annotated[str, Path(pattern=DEVICE_ID, description="Tracker or e-seal id")],
    start: Annotated[datetime | None, Query(alias="from", description="Start (ISO 8601); default end - 24 h")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="End, exclusive (ISO 8601); default now")] = None,
    max_points: Annotated[int, Query(ge=2, le=20_000, description="Above this, one position per bucket")] = 5_000,
) -> TrackFeature:
    """Fixes of ``device_id`` in ``[from, to)``, by fix time. A range holding more
    than ``max_points`` nominal 15 s fixes is downsampled with ``time_bucket`` to
    the first fix of each bucket, and the response says so. A device reporting much faster
    than every 15 s can still fill a raw range past ``CTT_TRACK_MAX_ROWS``: that is a 422,
    never a truncated track. An officer gets only the
    stretches when the device served a shipment of their region (departure to arrival
    or close)."""
    end = _aware(end) if end else datetime.now(UTC)
    start = _aware(start) if start else end - timedelta(days=1)
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"from ({start.isoformat()}) must be before to")
    if end - start > timedelta(days=400):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a track covers at most 400 days")
    await _check_device(conn, caller, device_id)
    span_s = (end - start).total_seconds()
    bucket_s = math.ceil(span_s / max_points) if span_s / NOMINAL_INTERVAL_S > max_points else None
    # One row past the limit tells a range that holds too many from one that holds just enough.
    params: dict[str, Any] = {"device": device_id, "start": start, "end": end, "limit": settings.track_max_rows + 1}
    if bucket_s:
        params["bucket"] = timedelta(seconds=bucket_s)
    query = (_BUCKETED if bucket_s else _RAW).format(scope=_scope(caller))
    rows = await (await conn.execute(query, params)).fetchall()
    if len(rows) > settings.track_max_rows:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the range holds more than {settings.track_max_rows} positions (CTT_TRACK_MAX_ROWS): "
                            "ask for a shorter range, or a lower max_points (coarser buckets)")
    coordinates = [[r["lon"], r["lat"]] for r in rows]
    return TrackFeature(
        geometry=LineStringGeometry(type="LineString", coordinates=coordinates) if len(coordinates) >= 2 else None,
        properties=TrackProperties(device=device_id, start=start, end=end, points=len(rows),
                                   downsampled=bucket_s is not None, bucket_s=bucket_s,
                                   times=[r["ts"] for r in rows]),
    )


@router.get("/positions/latest", response_model=PositionCollection,
            summary="Latest position of every in-transit shipment's tracker")
async def latest(hub: LiveHub, conn: Conn, caller: Caller) -> Response:
    """One Point per in-transit shipment the caller may see, with its open conditions.

    Served from the live stream's in-memory copy, kept current by the database's
    notifications; from SQL while the stream's listener is (re)starting."""
    if hub.ready.is_set():
        return Response(hub.latest(caller), media_type="application/json")
    row = await (await conn.execute(_LATEST.format(visible=visible(caller)))).fetchone()
    assert row is not None
    return Response(row["body"], media_type="application/json")


async def _check_device(conn: Conn, caller: Caller, device_id: str) -> None:
    if caller.role in REGION_SCOPED:
        query = _DEVICE_VISIBLE.format(served=_SERVED_BY_DEVICE, visible=visible(caller))
        row = await (await conn.execute(query, {"device": device_id})).fetchone()
        if not row or not row["exists"]:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} is on no shipment of your region")


def _scope(caller: Caller) -> sql.Composable:
    """The fixes ``caller`` may see of a device: all of them, or an officer's stretches."""
    if caller.role not in REGION_SCOPED:
        return sql.SQL("")
    return _IN_VISIBLE_STRETCH.format(served=_SERVED_BY_DEVICE, visible=visible(caller))


def _aware(value: datetime) -> datetime:
    """Naive times are UTC (the contract's clock)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
