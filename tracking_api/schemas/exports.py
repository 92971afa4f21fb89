"""Exports as the API documents them: formats, columns, media types, and the
OpenAPI entries of the streamed files and the shipment report (a PDF)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from protocol.alerts import Alert

Format = Literal["csv", "geojson"]
FORMATS: tuple[Format, ...] = get_args(Format)
Lang = Literal["en", "fr"]
LANGS: tuple[Lang, ...] = get_args(Lang)

MEDIA_TYPES: dict[Format, str] = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}
PDF = "application/pdf"

# CSV columns, in order; GeoJSON properties carry the same values (shipments: the whole object).
ALERT_COLUMNS: tuple[str, ...] = tuple(Alert.__struct_fields__)
TRACK_COLUMNS: tuple[str, ...] = ("shipment", "reference", "device", "ts", "lon", "lat", "spd", "hdg", "country")
SHIPMENT_COLUMNS: tuple[str, ...] = (
    "id", "reference", "status", "route_id", "tracker_id", "seal_ids", "containers", "office_of_departure",
    "offices_of_transit", "office_of_destination", "deadline", "created_at", "created_by", "departed_at",
    "arrived_at", "released_at", "closed_at", "vehicle", "operator", "regions", "country")

_GEOJSON_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": {
        "type": "object", "required": ["type", "geometry", "properties"],
        "properties": {"type": {"const": "Feature"}, "properties": {"type": "object"}}}}}}


def file_response(example_csv: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of an export: CSV or GeoJSON, as an attachment."""
    return {200: {"description": "The rows as a file (Content-Disposition: attachment), streamed",
                  "content": {"text/csv": {"schema": {"type": "string"}, "example": example_csv},
                              "application/geo+json": {"schema": _GEOJSON_SCHEMA}}}}


PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The shipment report, a PDF (Content-Disposition: attachment)",
          "content": {PDF: {"schema": {"type": "string", "format": "binary"}, "example": "%PDF-1.7 ..."}}}}
