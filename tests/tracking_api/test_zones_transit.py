"""Zones and regions of issue 13 through the API, against the real database:
border posts (with office codes, countries and dwell limits), weighbridges and
inspection areas; regions with their country; hostile bodies."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import query
from tests.tracking_api.geo_support import API, auth, created, line, office_code, somewhere, square, unique
from tests.tracking_api.transit_support import make_corridor, make_office


def _zone(client: TestClient, **body: Any) -> Any:
    lon, lat = somewhere()
    return client.post(f"{API}/zones", json={"name": unique("zone "), "geometry": square(lon, lat)} | body,
                       headers=auth("operator"))


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


def test_border_post_with_country_and_dwell_limit(client: TestClient, database_url: str) -> None:
    code = office_code()
    post = created(_zone(client, kind="border_post", office_code=code, country="UGA", dwell_limit_s=14400))
    props = post["properties"]
    assert (props["kind"], props["office_code"], props["country"], props["dwell_limit_s"]) == (
        "border_post", code, "UGA", 14400.0)
    assert client.get(f"{API}/zones/{post['id']}", headers=auth("integrator")).json() == post
    listed = client.get(f"{API}/zones", params={"kind": "border_post"}, headers=auth("operator")).json()
    assert post in listed["features"] and {f["properties"]["kind"] for f in listed["features"]} == {"border_post"}
    (detail,) = query(database_url, "SELECT detail FROM audit_log WHERE action = 'zone.created' AND object_id = %s",
                      (str(post["id"]),))[0]
    assert detail == {"name": props["name"], "kind": "border_post", "office_code": code, "country": "UGA",
                      "dwell_limit_s": 14400.0}


@pytest.mark.parametrize("kind", ["weighbridge", "inspection", "stop"])
def test_zones_without_office_code(client: TestClient, kind: str) -> None:
    zone = created(_zone(client, kind=kind, country="KEN"))
    assert zone["properties"] | {"name": None, "created_at": None} == {
        "name": None, "kind": kind, "office_code": None, "country": "KEN", "dwell_limit_s": None, "created_at": None}


def test_v1_zone_has_no_country_nor_limit(client: TestClient) -> None:
    zone = created(_zone(client, kind="office", office_code=office_code()))
    assert (zone["properties"]["country"], zone["properties"]["dwell_limit_s"]) == (None, None)


@pytest.mark.parametrize(("body", "loc_end", "message"), [
    ({"kind": "border_post"}, ["body"], "office_code is required when kind is 'border_post'"),
    ({"kind": "weighbridge", "office_code": "KEWB1"}, ["body"], "office_code must be omitted when kind is "
                                                                "'weighbridge'"),
    ({"kind": "inspection", "office_code": "KEIN1"}, ["body"], "office_code must be omitted when kind is "
                                                               "'inspection'"),
    ({"kind": "office", "office_code": "KEOF1", "dwell_limit_s": 3600}, ["body"],
     "dwell_limit_s applies to border_post zones only, not to kind 'office'"),
    ({"kind": "border_post", "office_code": "KEBP1", "dwell_limit_s": 0}, ["body", "dwell_limit_s"],
     "greater than 0"),
    ({"kind": "border_post", "office_code": "KEBP1", "dwell_limit_s": 7 * 86400 + 1}, ["body", "dwell_limit_s"],
     "less than or equal to 604800"),
    ({"kind": "border_post", "office_code": "KEBP1", "dwell_limit_s": "3h"}, ["body", "dwell_limit_s"],
     "valid number"),
    ({"kind": "stop", "country": "KE"}, ["body", "country"], "should match pattern"),
    ({"kind": "stop", "country": "ken"}, ["body", "country"], "should match pattern"),
    ({"kind": "stop", "country": "KENY"}, ["body", "country"], "should match pattern"),
    ({"kind": "stop", "country": 404}, ["body", "country"], "valid string"),
    ({"kind": "customs"}, ["body", "kind"], "'border_post'"),
])
def test_bad_zone_bodies_are_422(client: TestClient, body: dict[str, Any], loc_end: list[Any],
                                 message: str) -> None:
    issues = _issues(_zone(client, **body))
    assert any(i["loc"][-len(loc_end):] == loc_end and message in i["msg"] for i in issues), issues


def test_the_largest_dwell_limit_is_accepted(client: TestClient) -> None:
    created(_zone(client, kind="border_post", office_code=office_code(), dwell_limit_s=7 * 86400))


def test_a_nan_dwell_limit_is_422(client: TestClient) -> None:
    lon, lat = somewhere()
    # Python's JSON parser reads NaN; the schema must refuse it.
    body = json.dumps({"name": "nan", "kind": "border_post", "office_code": office_code(), "dwell_limit_s": math.nan,
                       "geometry": square(lon, lat)})
    response = client.post(f"{API}/zones", content=body, headers=auth("operator") | {
        "Content-Type": "application/json"})
    assert _issues(response)[0]["loc"] == ["body", "dwell_limit_s"]


def test_a_route_lists_only_stop_zones(client: TestClient) -> None:
    lon, lat = somewhere()
    post = created(_zone(client, kind="border_post", office_code=office_code()))
    bridge = created(_zone(client, kind="weighbridge"))
    issues = _issues(client.post(f"{API}/routes", json={
        "name": "r", "geometry": line((lon, lat), (lon + 1, lat)), "stop_zones": [post["id"], bridge["id"]]},
        headers=auth("operator")))
    assert [i["msg"] for i in issues] == [f"zone {post['id']} is a border post, not a stop zone",
                                          f"zone {bridge['id']} is a weighbridge, not a stop zone"]


def test_a_border_post_is_an_office_of_transit(client: TestClient) -> None:
    corridor = make_corridor(client)
    w = corridor.world
    post = make_office(client, w.lon + 0.5, w.lat + 0.01, kind="border_post", country="UGA")
    shipment = created(client.post(f"{API}/shipments", json=corridor.shipment(offices_of_transit=[post]),
                                   headers=auth("operator")))
    assert [(o["office_code"], o["country"]) for o in shipment["itinerary"]][1] == (post, "UGA")


# Regions

def test_region_with_country(client: TestClient, database_url: str) -> None:
    lon, lat = somewhere()
    code = unique("R-")
    region = created(client.post(f"{API}/regions", json={"code": code, "name": "Malaba", "country": "UGA",
                                                         "geometry": square(lon, lat)}, headers=auth("admin")))
    assert region["properties"]["country"] == "UGA"
    assert client.get(f"{API}/regions/{code}", headers=auth("integrator")).json() == region
    assert query(database_url, "SELECT country FROM regions WHERE code = %s", (code,)) == [("UGA",)]
    v1 = created(client.post(f"{API}/regions", json={"code": unique("R-"), "name": "x", "geometry": square(
        lon + 1, lat)}, headers=auth("admin")))
    assert v1["properties"]["country"] is None
    for bad in ("UG", "uga", 1):
        issues = _issues(client.post(f"{API}/regions", json={"code": unique("R-"), "name": "x", "country": bad,
                                                             "geometry": square(lon, lat)}, headers=auth("admin")))
        assert issues[0]["loc"] == ["body", "country"]
