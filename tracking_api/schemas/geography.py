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
COUNTRY = r"^[A-Z]{3}$"
Name = Annotated[str, Field(min_length=1, max_length=200)]
ZoneKind = Literal["office", "stop", "border_post", "weighbridge", "inspection"]
# The kinds with an office code: the offices an itinerary names (schema/022's zones_office_code_check).
OFFICE_KINDS: tuple[ZoneKind, ...] = ("office", "border_post")
# A border post's own dwell limit may not exceed a week (the engine's default is 3 h).
MAX_DWELL_LIMIT_S = 7 * 86_400
Country = Annotated[str, Field(pattern=COUNTRY, description="ISO 3166-1 alpha-3 country code, e.g. KEN")]

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
        {"name": "Mombasa port office", "kind": "office", "office_code": "KEMBA", "country": "KEN",
         "geometry": _SQUARE},
        {"name": "Malaba border post (Kenya side)", "kind": "border_post", "office_code": "KEMAL", "country": "KEN",
         "dwell_limit_s": 14400, "geometry": _SQUARE},
        {"name": "Mariakani weighbridge", "kind": "weighbridge", "country": "KEN", "geometry": _SQUARE},
        {"name": "Mtito Andei rest area", "kind": "stop", "geometry": _SQUARE}]})

    name: Name
    kind: ZoneKind = Field(description=(
        "office: a customs office (departure, destination, transit); border_post: an office of transit at a "
        "frontier; weighbridge, inspection: where every truck may stop; stop: an authorised stop (rest area) on "
        "the routes that list it"))
    office_code: str | None = Field(default=None, pattern=OFFICE_CODE,
                                    description="Customs office code, unique; required iff kind is office or "
                                                "border_post")
    country: Country | None = Field(default=None, description="Whose ground the zone is on (alpha-3)")
    dwell_limit_s: float | None = Field(default=None, gt=0, le=MAX_DWELL_LIMIT_S, allow_inf_nan=False, description=(
        "border_post only: seconds a medium-risk truck may stay inside before border_dwell (default 3 h; the "
        "risk profile scales it)"))
    geometry: Polygon

    @model_validator(mode="after")
    def _office_code_iff_office(self) -> ZoneIn:
        if self.kind in OFFICE_KINDS and self.office_code is None:
            raise ValueError(f"office_code is required when kind is {self.kind!r}")
        if self.kind not in OFFICE_KINDS and self.office_code is not None:
            raise ValueError(f"office_code must be omitted when kind is {self.kind!r}")
        if self.dwell_limit_s is not None and self.kind != "border_post":
            raise ValueError(f"dwell_limit_s applies to border_post zones only, not to kind {self.kind!r}")
        return self


class ZoneProperties(BaseModel):
    name: str
    kind: ZoneKind
    office_code: str | None
    country: str | None
    dwell_limit_s: float | None = Field(description="border_post: its own border_dwell limit, seconds; null: 3 h")
    created_at: datetime


class ZoneFeature(Feature[PolygonGeometry, ZoneProperties]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "Feature", "id": 3, "geometry": _SQUARE,
         "properties": {"name": "Malaba border post (Kenya side)", "kind": "border_post", "office_code": "KEMAL",
                        "country": "KEN", "dwell_limit_s": 14400.0, "created_at": _CREATED}}]})


class ZoneCollection(FeatureCollection[ZoneFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "FeatureCollection", "features": _examples(ZoneFeature)}]})


# Regions

class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "KE-MSA", "name": "Mombasa customs district", "country": "KEN", "geometry": _SQUARE}]})

    code: str = Field(pattern=REGION_CODE, description="Unique; an officer's token names it")
    name: Name
    country: Country | None = Field(default=None, description=(
        "The administration's country (alpha-3): its officers see alerts on their own ground first"))
    geometry: Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class RegionProperties(BaseModel):
    code: str
    name: str
    country: str | None
    created_at: datetime


class RegionFeature(Feature[PolygonGeometry | MultiPolygonGeometry, RegionProperties]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "Feature", "id": "KE-MSA", "geometry": _SQUARE,
         "properties": {"code": "KE-MSA", "name": "Mombasa customs district", "country": "KEN",
                        "created_at": _CREATED}}]})


class RegionCollection(FeatureCollection[RegionFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "FeatureCollection", "features": _examples(RegionFeature)}]})
