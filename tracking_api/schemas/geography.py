"""Routes, zones and regions: request bodies and GeoJSON Feature responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PositiveInt, model_validator

from tracking_api.schemas.checks import no_repeats
from tracking_api.schemas.geojson import (
    Feature,
    FeatureCollection,
    LineString,
    LineStringGeometry,
    MultiPolygon,
    MultiPolygonGeometry,
    Polygon,
    PolygonGeometry,
)

OFFICE_CODE = r"^[A-Z0-9]{2,17}$"
REGION_CODE = r"^[A-Za-z0-9_-]{1,32}$"
Name = Annotated[str, Field(min_length=1, max_length=200)]
ZoneKind = Literal["office", "stop"]

_ROUTE_LINE: dict[str, JsonValue] = {
    "type": "LineString", "coordinates": [[39.6682, -4.0435], [37.4667, -2.0833], [36.8219, -1.2921]]}
_SQUARE: dict[str, JsonValue] = {
    "type": "Polygon",
    "coordinates": [[[39.66, -4.05], [39.68, -4.05], [39.68, -4.03], [39.66, -4.03], [39.66, -4.05]]]}
_CREATED = "2026-11-23T06:00:00Z"


# Routes


def _examples(model: type[BaseModel]) -> Any:
    """The examples declared on ``model`` (reused in its collection's example)."""
    extra = model.model_config.get("json_schema_extra")
    return extra["examples"] if isinstance(extra, dict) else []


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Mombasa - Nairobi (A109)", "geometry": _ROUTE_LINE, "corridor_m": 500, "stop_zones": [3, 4]}]})

    name: Name
    geometry: LineString
    corridor_m: float = Field(default=500, gt=0, le=100_000, allow_inf_nan=False,
                              description="Corridor half-width in metres: farther from the line is a deviation")
    stop_zones: Annotated[list[PositiveInt], no_repeats("zone")] = Field(
        default_factory=list, max_length=1000, description="Ids of zones of kind 'stop' where a stop is authorised")


class RouteProperties(BaseModel):
    name: str
    corridor_m: float
    stop_zones: list[int]
    created_at: datetime


class RouteFeature(Feature[LineStringGeometry, RouteProperties]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "Feature", "id": 1, "geometry": _ROUTE_LINE,
         "properties": {"name": "Mombasa - Nairobi (A109)", "corridor_m": 500.0, "stop_zones": [3, 4],
                        "created_at": _CREATED}}]})


class RouteCollection(FeatureCollection[RouteFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "FeatureCollection", "features": _examples(RouteFeature)}]})


# Zones

class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Mombasa port office", "kind": "office", "office_code": "KEMBA", "geometry": _SQUARE},
        {"name": "Mariakani weighbridge", "kind": "stop", "geometry": _SQUARE}]})

    name: Name
    kind: ZoneKind = Field(description="office: a customs office (departure, destination); stop: an authorised "
                                       "stop (rest area, border post)")
    office_code: str | None = Field(default=None, pattern=OFFICE_CODE,
                                    description="Customs office code, unique; required iff kind is office")
    geometry: Polygon

    @model_validator(mode="after")
    def _office_code_iff_office(self) -> ZoneIn:
        if self.kind == "office" and self.office_code is None:
            raise ValueError("office_code is required when kind is 'office'")
        if self.kind == "stop" and self.office_code is not None:
            raise ValueError("office_code must be omitted when kind is 'stop'")
        return self


class ZoneProperties(BaseModel):
    name: str
    kind: ZoneKind
    office_code: str | None
    created_at: datetime


class ZoneFeature(Feature[PolygonGeometry, ZoneProperties]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "Feature", "id": 3, "geometry": _SQUARE,
         "properties": {"name": "Mombasa port office", "kind": "office", "office_code": "KEMBA",
                        "created_at": _CREATED}}]})


class ZoneCollection(FeatureCollection[ZoneFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "FeatureCollection", "features": _examples(ZoneFeature)}]})


# Regions

class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "KE-MSA", "name": "Mombasa customs district", "geometry": _SQUARE}]})

    code: str = Field(pattern=REGION_CODE, description="Unique; an officer's token names it")
    name: Name
    geometry: Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class RegionProperties(BaseModel):
    code: str
    name: str
    created_at: datetime


class RegionFeature(Feature[PolygonGeometry | MultiPolygonGeometry, RegionProperties]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "Feature", "id": "KE-MSA", "geometry": _SQUARE,
         "properties": {"code": "KE-MSA", "name": "Mombasa customs district", "created_at": _CREATED}}]})


class RegionCollection(FeatureCollection[RegionFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "FeatureCollection", "features": _examples(RegionFeature)}]})
