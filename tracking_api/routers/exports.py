"""``/exports/alerts|tracks|shipments``: a time range of rows as a CSV or GeoJSON
file, streamed from a server-side cursor (``services/exports.py``); and
``/shipments/{id}/report.pdf``, the shipment report an officer attaches to a case
file (``tracking_api.report``). An officer gets the rows and reports of the
shipments touching their region only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from tracking_api import report
from tracking_api.deps import Caller, Conn, Pool, Settings
from tracking_api.schemas.alerts import ALERT_STATUSES, ALERT_TYPES, AlertStatus, AlertType, one_of
from tracking_api.schemas.errors import UNAUTHORIZED, error, validation
from tracking_api.schemas.exports import (
    ALERT_COLUMNS,
    FORMATS,
    LANGS,
    MEDIA_TYPES,
    PDF,
    PDF_RESPONSE,
    SHIPMENT_COLUMNS,
    TRACK_COLUMNS,
    Format,
    Lang,
    file_response,
)
from tracking_api.schemas.geography import OFFICE_CODE, REGION_CODE
from tracking_api.schemas.shipments import DEVICE_ID, Status
from tracking_api.services import exports
from tracking_api.services.export_files import csv_file, geojson_file

router = APIRouter(tags=["exports"])

_BIGINT_MAX = 2**63 - 1
_BAD_QUERY = validation("A missing or bad parameter: from/to missing, without a time zone, from not before to, "
                        "a range over CTT_EXPORT_MAX_DAYS, an unknown format or filter value", ["query", "to"],
                        "the range 2026-01-01T00:00:00Z to 2026-03-01T00:00:00Z is longer than 31 days "
                        "(CTT_EXPORT_MAX_DAYS): export it in parts")
_RESPONSES = {**UNAUTHORIZED, **_BAD_QUERY}

From = Annotated[AwareDatetime, Query(alias="from", description="Start, inclusive (RFC 3339 with an offset)")]
To = Annotated[AwareDatetime, Query(alias="to", description="End, exclusive (RFC 3339); at most "
                                                            "CTT_EXPORT_MAX_DAYS (31) days after from")]
FileFormat = Annotated[Format, one_of("format", FORMATS), Query(alias="format", description="csv or geojson")]
ShipmentFilter = Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Only this shipment (id)")]


@router.get("/exports/alerts", summary="Alerts of a time range, as CSV or GeoJSON", response_class=Response,
            responses={**_RESPONSES, **file_response("id,type,shipment,...\r\n42,seal_breach,7,...\r\n")})
async def export_alerts(
    pool: Pool, caller: Caller, settings: Settings, start: From, end: To, fmt: FileFormat = "csv",
    type: Annotated[AlertType | None, one_of("type", ALERT_TYPES), Query(description="Alert type")] = None,
    status: Annotated[AlertStatus | None, one_of("status", ALERT_STATUSES),
                      Query(description="Workflow status")] = None,
    shipment: ShipmentFilter = None,
    country: Annotated[str | None, Query(pattern="^[A-Z]{3}$", description="Whose ground (ISO 3166-1 alpha-3)")]
    = None,
    region: Annotated[str | None, Query(pattern=REGION_CODE, description="Only shipments touching this region")]
    = None,
) -> Response:
    """The alerts that started in ``[from, to)``, oldest first: the one alert object per row
    (CSV: one column per field; GeoJSON: a Point at its position with the object as properties)."""
    span = exports.window(start, end, settings.export_max_days)
    export = exports.alerts(caller, span, type=type, status=status, shipment=shipment, country=country,
                            region=region)
    return _file(pool, export, span, fmt, ALERT_COLUMNS)


@router.get("/exports/tracks", summary="Shipments' tracks of a time range, as CSV or GeoJSON",
            response_class=Response,
            responses={**_RESPONSES, **file_response("shipment,reference,device,ts,lon,lat,spd,hdg,country\r\n"
                                                     "7,26KE4795554000003,trk-0042,2026-11-23T06:00:05Z,39.6682,"
                                                     "-4.0435,61.5,310.0,KEN\r\n")})
async def export_tracks(
    pool: Pool, caller: Caller, settings: Settings, start: From, end: To, fmt: FileFormat = "csv",
    shipment: ShipmentFilter = None,
    device: Annotated[str | None, Query(pattern=DEVICE_ID, description="Only the shipments this tracker served")]
    = None,
) -> Response:
    """Every fix in ``[from, to)`` of the shipments' trackers while in transit (departure to arrival),
    by shipment then fix time; without a filter, the whole fleet (streamed). GeoJSON: one Point
    per fix (``GET /devices/{id}/track`` gives a device's LineString)."""
    span = exports.window(start, end, settings.export_max_days)
    return _file(pool, exports.tracks(caller, span, shipment, device), span, fmt, TRACK_COLUMNS)


@router.get("/exports/shipments", summary="Shipments open during a time range, as CSV or GeoJSON",
            response_class=Response,
            responses={**_RESPONSES, **file_response("id,reference,status,...\r\n7,26KE4795554000003,arrived,"
                                                     "...\r\n")})
async def export_shipments(
    pool: Pool, caller: Caller, settings: Settings, start: From, end: To, fmt: FileFormat = "csv",
    status: Annotated[Status | None, Query(description="Only shipments in this status")] = None,
    office: Annotated[str | None, Query(pattern=OFFICE_CODE, description="Only shipments with this office on "
                                                                         "their itinerary")] = None,
) -> Response:
    """Shipments registered before ``to`` and not closed before ``from``, newest first: the
    shipment object of ``GET /shipments`` (CSV: its plain fields; GeoJSON: no geometry, the whole
    object as properties)."""
    span = exports.window(start, end, settings.export_max_days)
    return _file(pool, exports.shipments(caller, span, status, office), span, fmt, SHIPMENT_COLUMNS)


def _file(pool: Pool, export: exports.Export, span: exports.Window, fmt: Format,
          columns: Sequence[str]) -> StreamingResponse:
    name = f"ctt-{export.kind}-{span.label()}.{'csv' if fmt == 'csv' else 'geojson'}"
    return StreamingResponse(_stream(pool, export, fmt, columns), media_type=MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _stream(pool: Pool, export: exports.Export, fmt: Format, columns: Sequence[str]) -> AsyncIterator[bytes]:
    # Its own connection, held while the body is sent (the request's is returned when the route returns).
    async with pool.connection() as conn:
        records = exports.chunks(conn, export)  # type: ignore[arg-type]  # the pool makes dict-row connections
        pieces = csv_file(columns, records) if fmt == "csv" else geojson_file(export.kind, records)
        async for piece in pieces:
            yield piece


@router.get("/shipments/{shipment_id}/report.pdf", summary="The shipment report (PDF)", response_class=Response,
            responses={**UNAUTHORIZED, **PDF_RESPONSE,
                       **error(404, "No such shipment, or not in the officer's region", "shipment 99 does not exist"),
                       **validation("Unknown language", ["query", "lang"], "lang 'de' is not one of en, fr")})
async def shipment_report(
    conn: Conn, caller: Caller,
    shipment_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX, description="Shipment id")],
    lang: Annotated[Lang, one_of("lang", LANGS), Query(description="Language of the labels")] = "en",
) -> Response:
    """Header (reference, vehicle, operator, risk, status, who generated it and when), itinerary,
    timeline, a map of the track with the route, the offices' zones, the countries and numbered
    alerts, the alerts, seal events and the officers' actions with their audit hashes."""
    body = await report.shipment_report(conn, caller, shipment_id, lang)
    return Response(body, media_type=PDF,
                    headers={"Content-Disposition": f'attachment; filename="shipment-{shipment_id}-report.pdf"'})
