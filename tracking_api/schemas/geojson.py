"""GeoJSON (RFC 7946): geometry the API accepts, and Feature responses.

Positions are ``[lon, lat]`` in WGS84 degrees, exactly two finite numbers
(altitude is refused rather than silently dropped: the geofence is 2-D).
Request geometry is checked strictly, because the geofence engine leaves out
a route or zone it cannot build (and would then raise nothing on it): lines
need two distinct positions, polygon rings must be closed and the polygon
valid (no self-intersection). Winding order is not checked (RFC 7946 §3.1.6
asks parsers not to reject on it). Response geometry mirrors what is stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar

import shapely
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, model_validator
from shapely.geometry import shape

# Positions per geometry (all rings of a polygon, all polygons of a multipolygon): enough for a
# country's outline at customs-map scale, and a bound on the validation and geofence cost of one request.
MAX_VERTICES = 10_000


def _position(position: list[float]) -> list[float]:
    lon, lat = position
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"position [{lon}, {lat}]: coordinates must be finite numbers")
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon} is outside -180..180 (a position is [lon, lat])")
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat} is outside -90..90 (a position is [lon, lat])")
    return position


def _ring(ring: list[list[float]]) -> list[list[float]]:
    if ring[0] != ring[-1]:
        raise ValueError(f"linear ring is not closed: its last position {ring[-1]} must equal its first {ring[0]}")
    return ring


def _line(line: list[list[float]]) -> list[list[float]]:
    if all(p == line[0] for p in line):
        raise ValueError("a LineString needs at least 2 distinct positions")
    return line


Position = Annotated[
    list[StrictFloat],
    Field(min_length=2, max_length=2, description="[lon, lat], WGS84 degrees: lon -180..180, lat -90..90"),
    AfterValidator(_position)]
LinearRing = Annotated[
    list[Position], Field(min_length=4, description="Closed ring: at least 4 positions, the last equal to the first"),
    AfterValidator(_ring)]
PolygonCoordinates = Annotated[
    list[LinearRing], Field(min_length=1, description="Exterior ring, then holes")]


class _Geometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bbox: list[float] | None = Field(default=None, description="Optional (RFC 7946 §5); not stored, it follows "
                                                              "from the coordinates")

    def to_json(self) -> dict[str, Any]:
        """The geometry as stored: type and coordinates (no bbox)."""
        return self.model_dump(include={"type", "coordinates"})

    def _check_vertices(self) -> None:
        count = shapely.get_num_coordinates(shape(self.to_json()))
        if count > MAX_VERTICES:
            raise ValueError(f"{self.to_json()['type']} has {count} positions: at most {MAX_VERTICES} per geometry")

    def _check_valid(self) -> None:
        self._check_vertices()  # before the validity check, whose cost grows with the positions
        reason = shapely.is_valid_reason(shape(self.to_json()))
        if reason != "Valid Geometry":
            raise ValueError(f"{self.to_json()['type']} is not a valid geometry: {reason}")


class LineString(_Geometry):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "LineString", "coordinates": [[39.6682, -4.0435], [37.4667, -2.0833], [36.8219, -1.2921]]}]})

    type: Literal["LineString"]
    coordinates: Annotated[list[Position], Field(min_length=2), AfterValidator(_line)]

    @model_validator(mode="after")
    def _bounded(self) -> LineString:
        self._check_vertices()
        return self


class Polygon(_Geometry):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "Polygon", "coordinates": [[[39.66, -4.05], [39.68, -4.05], [39.68, -4.03], [39.66, -4.03],
                                              [39.66, -4.05]]]}]})

    type: Literal["Polygon"]
    coordinates: PolygonCoordinates

    @model_validator(mode="after")
    def _valid(self) -> Polygon:
        self._check_valid()
        return self


class MultiPolygon(_Geometry):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "MultiPolygon", "coordinates": [[[[39.0, -4.5], [40.0, -4.5], [40.0, -3.5], [39.0, -3.5],
                                                   [39.0, -4.5]]]]}]})

    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[PolygonCoordinates], Field(min_length=1)]

    @model_validator(mode="after")
    def _valid(self) -> MultiPolygon:
        self._check_valid()
        return self


# Responses: the stored shape, not re-checked (a stored geometry is always returned).

class LineStringGeometry(BaseModel):
    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(description="[lon, lat] positions")


class PolygonGeometry(BaseModel):
    type: Literal["Polygon"]
    coordinates: list[list[list[float]]] = Field(description="Rings of [lon, lat] positions, exterior first")


class MultiPolygonGeometry(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[list[float]]]] = Field(description="Polygons, each as rings of [lon, lat]")


GeometryT = TypeVar("GeometryT")
PropertiesT = TypeVar("PropertiesT")


class Feature(BaseModel, Generic[GeometryT, PropertiesT]):
    type: Literal["Feature"] = "Feature"
    id: int | str
    geometry: GeometryT
    properties: PropertiesT


FeatureT = TypeVar("FeatureT", bound=Feature[Any, Any])
CollectionT = TypeVar("CollectionT", bound="FeatureCollection[Any]")


class FeatureCollection(BaseModel, Generic[FeatureT]):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FeatureT]


def feature(model: type[FeatureT], row: Mapping[str, Any], properties: Iterable[str], id_key: str = "id",
            geometry_key: str = "geometry") -> FeatureT:
    """A Feature from a database row: its id, its jsonb geometry (already a dict) and the ``properties`` columns."""
    return model.model_validate({"id": row[id_key], "geometry": row[geometry_key],
                                 "properties": {key: row[key] for key in properties}})


def feature_collection(model: type[CollectionT], features: Iterable[Feature[Any, Any]]) -> CollectionT:
    return model.model_validate({"features": list(features)})
