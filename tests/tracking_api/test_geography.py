"""Routes, zones and regions through the API, against the real database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import query
from tests.tracking_api.geo_support import API, auth, created, line, make_zone, office_code, somewhere, square, unique


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


def _route_body(**overrides: Any) -> dict[str, Any]:
    lon, lat = somewhere()
    return {"name": unique("route "), "geometry": line((lon, lat), (lon + 0.2, lat + 0.1))} | overrides


# Routes

def test_route_is_created_and_read_as_a_feature(client: TestClient, database_url: str) -> None:
    lon, lat = somewhere()
    stops = [make_zone(client, lon + d, lat, kind="stop")["id"] for d in (0.1, 0.2)]
    geometry = line((lon, lat), (lon + 0.1, lat + 0.001), (lon + 0.3, lat))
    response = client.post(f"{API}/routes", json={"name": "A109", "geometry": geometry, "corridor_m": 250.5,
                                                  "stop_zones": stops}, headers=auth("admin"))
    route = created(response)
    assert route["type"] == "Feature"
    assert route["geometry"] == geometry
    assert route["properties"] | {"created_at": None} == {"name": "A109", "corridor_m": 250.5, "stop_zones": stops,
                                                          "created_at": None}
    assert response.headers["location"].endswith(f"{API}/routes/{route['id']}")

    for role in ("admin", "operator", "officer", "integrator"):
        read = client.get(f"{API}/routes/{route['id']}", headers=auth(role, region="XX"))
        assert read.status_code == 200 and read.json() == route
    collection = client.get(f"{API}/routes", headers=auth("integrator")).json()
    assert collection["type"] == "FeatureCollection"
    assert route in collection["features"]
    assert query(database_url, "SELECT action, role FROM audit_log WHERE object_type = 'route' AND object_id = %s",
                 (str(route["id"]),)) == [("route.created", "admin")]


def test_route_corridor_defaults_to_500_m(client: TestClient) -> None:
    route = created(client.post(f"{API}/routes", json=_route_body(), headers=auth("operator")))
    assert route["properties"]["corridor_m"] == 500
    assert route["properties"]["stop_zones"] == []


@pytest.mark.parametrize("role", ["officer", "integrator"])
def test_only_admins_and_operators_register_routes(client: TestClient, role: str) -> None:
    response = client.post(f"{API}/routes", json=_route_body(), headers=auth(role, region="XX"))
    assert response.status_code == 403
    assert "admin, operator" in response.json()["detail"]


def test_a_token_is_required(client: TestClient) -> None:
    assert client.get(f"{API}/routes").status_code == 401
    assert client.post(f"{API}/routes", json=_route_body()).status_code == 401


@pytest.mark.parametrize(("overrides", "loc_end", "message"), [
    ({"geometry": line((200.0, 1.0), (1.0, 2.0))}, ["coordinates", 0], "longitude 200.0 is outside -180..180"),
    ({"geometry": line((1.0, 1.0), (1.0, -95.5))}, ["coordinates", 1], "latitude -95.5 is outside -90..90"),
    ({"geometry": line((1.0, 1.0))}, ["geometry", "coordinates"], "at least 2 items"),
    ({"geometry": line((1.0, 1.0), (1.0, 1.0), (1.0, 1.0))}, ["geometry", "coordinates"],
     "at least 2 distinct positions"),
    ({"geometry": {"type": "LineString", "coordinates": [[1.0, 1.0, 5.0], [2.0, 2.0, 5.0]]}},
     ["coordinates", 0], "at most 2 items"),
    ({"geometry": {"type": "LineString", "coordinates": [["1.0", 1.0], [2.0, 2.0]]}},
     ["coordinates", 0, 0], "valid number"),
    ({"geometry": {"type": "Point", "coordinates": [1.0, 1.0]}}, ["geometry", "type"], "'LineString'"),
    ({"corridor_m": 0}, ["body", "corridor_m"], "greater than 0"),
    ({"corridor_m": -5}, ["body", "corridor_m"], "greater than 0"),
    ({"colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
    ({"geometry": line((1.0, 1.0), (2.0, 2.0)) | {"crs": "EPSG:4326"}}, ["geometry", "crs"],
     "Extra inputs are not permitted"),
    ({"stop_zones": [1, 1]}, ["body", "stop_zones"], "zone 1 is listed twice"),
])
def test_bad_route_bodies_are_422_naming_the_field(client: TestClient, overrides: dict[str, Any],
                                                   loc_end: list[Any], message: str) -> None:
    issues = _issues(client.post(f"{API}/routes", json=_route_body(**overrides), headers=auth("operator")))
    assert any(i["loc"][-len(loc_end):] == loc_end and message in i["msg"] for i in issues), issues


def test_non_finite_coordinates_are_422(client: TestClient) -> None:
    # Python's JSON parser reads NaN and Infinity; they are not numbers in GeoJSON.
    body = '{"name": "x", "geometry": {"type": "LineString", "coordinates": [[NaN, 1.0], [2.0, Infinity]]}}'
    issues = _issues(client.post(f"{API}/routes", content=body, headers=auth("operator") | {
        "Content-Type": "application/json"}))
    assert all("must be finite" in i["msg"] for i in issues) and len(issues) == 2, issues


def test_stop_zones_must_be_existing_stop_zones(client: TestClient) -> None:
    lon, lat = somewhere()
    stop = make_zone(client, lon, lat, kind="stop")["id"]
    office = make_zone(client, lon + 0.1, lat)["id"]
    missing = 2**62
    issues = _issues(client.post(f"{API}/routes", json=_route_body(stop_zones=[stop, missing, office]),
                                 headers=auth("operator")))
    assert issues == [
        {"loc": ["body", "stop_zones", 1], "msg": f"zone {missing} does not exist", "type": "value_error"},
        {"loc": ["body", "stop_zones", 2], "msg": f"zone {office} is an office zone, not a stop zone",
         "type": "value_error"}]


def test_unknown_route_is_404(client: TestClient) -> None:
    response = client.get(f"{API}/routes/{2**62}", headers=auth("operator"))
    assert response.status_code == 404
    assert str(2**62) in response.json()["detail"]


# Zones

def test_zones_are_created_and_listed_by_kind(client: TestClient) -> None:
    lon, lat = somewhere()
    code = office_code()
    response = client.post(f"{API}/zones", json={"name": "Port office", "kind": "office", "office_code": code,
                                                 "geometry": square(lon, lat)}, headers=auth("admin"))
    office = created(response)
    assert office["geometry"] == square(lon, lat)
    assert office["properties"]["office_code"] == code and office["properties"]["kind"] == "office"
    assert response.headers["location"].endswith(f"{API}/zones/{office['id']}")
    stop = make_zone(client, lon + 0.1, lat, kind="stop")
    assert stop["properties"]["office_code"] is None

    offices = client.get(f"{API}/zones", params={"kind": "office"}, headers=auth("officer", region="XX")).json()
    assert office in offices["features"] and stop not in offices["features"]
    stops = client.get(f"{API}/zones", params={"kind": "stop"}, headers=auth("integrator")).json()
    assert stop in stops["features"] and office not in stops["features"]
    everything = client.get(f"{API}/zones", headers=auth("integrator")).json()["features"]
    assert office in everything and stop in everything
    assert client.get(f"{API}/zones/{office['id']}", headers=auth("integrator")).json() == office
    assert client.get(f"{API}/zones/{2**62}", headers=auth("integrator")).status_code == 404
    assert _issues(client.get(f"{API}/zones", params={"kind": "depot"}, headers=auth("admin")))[0]["loc"] == [
        "query", "kind"]


def test_duplicate_office_code_is_409(client: TestClient) -> None:
    lon, lat = somewhere()
    first = make_zone(client, lon, lat)
    code = first["properties"]["office_code"]
    response = client.post(f"{API}/zones", json={"name": "again", "kind": "office", "office_code": code,
                                                 "geometry": square(lon, lat)}, headers=auth("operator"))
    assert response.status_code == 409
    assert response.json()["detail"] == f"office_code {code!r} is already used by zone {first['id']}"


@pytest.mark.parametrize("role", ["officer", "integrator"])
def test_only_admins_and_operators_register_zones(client: TestClient, role: str) -> None:
    lon, lat = somewhere()
    response = client.post(f"{API}/zones", json={"name": "z", "kind": "stop", "geometry": square(lon, lat)},
                           headers=auth(role, region="XX"))
    assert response.status_code == 403


_OPEN = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
_BOWTIE = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]


@pytest.mark.parametrize(("overrides", "loc_end", "message"), [
    ({"office_code": None}, ["body"], "office_code is required when kind is 'office'"),
    ({"kind": "stop"}, ["body"], "office_code must be omitted when kind is 'stop'"),
    ({"kind": "depot"}, ["body", "kind"], "'office', 'stop', 'border_post', 'weighbridge' or 'inspection'"),
    ({"office_code": "kemba"}, ["body", "office_code"], "should match pattern"),
    ({"office_code": "K"}, ["body", "office_code"], "should match pattern"),
    ({"geometry": {"type": "Polygon", "coordinates": [[*_OPEN, [0.5, 0.5]]]}}, ["coordinates", 0],
     "linear ring is not closed: its last position [0.5, 0.5] must equal its first [0.0, 0.0]"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]]}}, ["coordinates", 0],
     "at least 4 items"),
    ({"geometry": {"type": "Polygon", "coordinates": []}}, ["geometry", "coordinates"], "at least 1 item"),
    ({"geometry": {"type": "Polygon", "coordinates": [_BOWTIE]}}, ["body", "geometry"], "Self-intersection"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[181.0, 0.0], [1.0, 0.0], [1.0, 1.0], [181.0, 0.0]]]}},
     ["coordinates", 0, 0], "longitude 181.0 is outside -180..180"),
    ({"geometry": {"type": "MultiPolygon", "coordinates": [[[*_OPEN, [0.0, 0.0]]]]}}, ["geometry", "type"],
     "'Polygon'"),
    ({"note": "x"}, ["body", "note"], "Extra inputs are not permitted"),
])
def test_bad_zone_bodies_are_422_naming_the_field(client: TestClient, overrides: dict[str, Any],
                                                  loc_end: list[Any], message: str) -> None:
    lon, lat = somewhere()
    body = {"name": "z", "kind": "office", "office_code": office_code(), "geometry": square(lon, lat)} | overrides
    issues = _issues(client.post(f"{API}/zones", json=body, headers=auth("operator")))
    assert any(i["loc"][-len(loc_end):] == loc_end and message in i["msg"] for i in issues), issues


def test_bbox_is_accepted_and_not_stored(client: TestClient) -> None:
    lon, lat = somewhere()
    geometry = square(lon, lat)
    zone = created(client.post(f"{API}/zones", json={"name": "z", "kind": "stop", "geometry": geometry | {
        "bbox": [lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01]}}, headers=auth("operator")))
    assert zone["geometry"] == geometry


# Regions

def test_regions_polygon_and_multipolygon(client: TestClient) -> None:
    lon, lat = somewhere()
    code = unique("R-")
    polygon = created(client.post(f"{API}/regions", json={"code": code, "name": "District",
                                                          "geometry": square(lon, lat, 0.5)}, headers=auth("admin")))
    assert polygon["id"] == code and polygon["properties"]["name"] == "District"
    multi_geometry = {"type": "MultiPolygon", "coordinates": [square(lon, lat, 0.1)["coordinates"],
                                                              square(lon + 1, lat, 0.1)["coordinates"]]}
    multi = created(client.post(f"{API}/regions", json={"code": unique("R-"), "name": "Two parts",
                                                        "geometry": multi_geometry}, headers=auth("admin")))
    assert multi["geometry"] == multi_geometry
    regions = client.get(f"{API}/regions", headers=auth("officer", region=code)).json()["features"]
    assert polygon in regions and multi in regions
    assert client.get(f"{API}/regions/{code}", headers=auth("integrator")).json() == polygon
    assert client.get(f"{API}/regions/nope-{code}", headers=auth("integrator")).status_code == 404


def test_duplicate_region_is_409(client: TestClient) -> None:
    lon, lat = somewhere()
    body = {"code": unique("R-"), "name": "District", "geometry": square(lon, lat)}
    created(client.post(f"{API}/regions", json=body, headers=auth("admin")))
    again = client.post(f"{API}/regions", json=body, headers=auth("admin"))
    assert again.status_code == 409
    assert again.json()["detail"] == f"region {body['code']!r} already exists"


@pytest.mark.parametrize("role", ["operator", "officer", "integrator"])
def test_only_admins_register_regions(client: TestClient, role: str) -> None:
    lon, lat = somewhere()
    response = client.post(f"{API}/regions", json={"code": unique("R-"), "name": "x", "geometry": square(lon, lat)},
                           headers=auth(role, region="XX"))
    assert response.status_code == 403


@pytest.mark.parametrize(("overrides", "loc_end", "message"), [
    ({"code": "bad code!"}, ["body", "code"], "should match pattern"),
    ({"geometry": {"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]}}, ["body", "geometry"],
     "does not match any of the expected tags"),
    ({"geometry": {"type": "MultiPolygon", "coordinates": [[_OPEN]]}}, ["coordinates", 0, 0],
     "linear ring is not closed"),
    ({"extra": 1}, ["body", "extra"], "Extra inputs are not permitted"),
])
def test_bad_region_bodies_are_422_naming_the_field(client: TestClient, overrides: dict[str, Any],
                                                    loc_end: list[Any], message: str) -> None:
    lon, lat = somewhere()
    body = {"code": unique("R-"), "name": "x", "geometry": square(lon, lat)} | overrides
    issues = _issues(client.post(f"{API}/regions", json=body, headers=auth("admin")))
    assert any(i["loc"][-len(loc_end):] == loc_end and message in i["msg"] for i in issues), issues


def test_openapi_documents_every_geography_operation(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    for path in ("/routes", "/routes/{route_id}", "/zones", "/zones/{zone_id}", "/regions", "/regions/{code}"):
        for method, operation in spec["paths"][f"{API}{path}"].items():
            assert operation["summary"], (method, path)
            assert "401" in operation["responses"], (method, path)
            if method == "post":
                assert {"201", "403", "422"} <= set(operation["responses"]), path
                schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
                assert spec["components"]["schemas"][schema]["examples"], schema
                assert spec["components"]["schemas"][schema]["additionalProperties"] is False, schema
