"""A shipment's itinerary, timeline, country and risk as the API answers them,
and the handover: officers of every administration on the itinerary see it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from tests.support import execute
from tests.tracking_api.geo_support import API, auth, created, unique
from tests.tracking_api.transit_support import Corridor, make_corridor

_EVENT = ("INSERT INTO shipment_events (shipment_id, device_id, kind, office_code, country, at, lon, lat, late, "
          "detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


@pytest.fixture
def corridor(client: TestClient) -> Corridor:
    return make_corridor(client)


def _register(client: TestClient, corridor: Corridor, **overrides: Any) -> dict[str, Any]:
    return created(client.post(f"{API}/shipments", json=corridor.shipment(**overrides), headers=auth("operator")))


def _get(client: TestClient, shipment_id: int, path: str = "", **auth_args: Any) -> Any:
    return client.get(f"{API}/shipments/{shipment_id}{path}", headers=auth(**({"role": "operator"} | auth_args)))


def _milestones(database_url: str, shipment: dict[str, Any], corridor: Corridor) -> None:
    """The engine's milestones of a truck that has passed the first office of transit, written
    out of time order (as a backlog would); plus a border crossing (no office)."""
    sid, trk = shipment["id"], shipment["tracker_id"]
    dep, post = corridor.world.departure, corridor.transit[0]
    for kind, office, country, at, detail in [
        ("departed", post, "UGA", "2030-01-01T12:10:00Z", {"position": 1, "inside_s": 3000, "stationary_s": 2400}),
        ("departed", dep, "KEN", "2030-01-01T08:00:00Z", {"position": 0, "inside_s": 600, "stationary_s": 500}),
        ("arrived", post, "KEN", "2030-01-01T11:20:00Z", {"position": 1}),
        ("border_crossed", None, "UGA", "2030-01-01T11:40:00Z", {"from": "KEN", "to": "UGA"}),
        # Left and came back: the first arrival and the last departure count.
        ("departed", post, "UGA", "2030-01-01T11:50:00Z", {"position": 1, "inside_s": 1800, "stationary_s": 900}),
        ("arrived", post, "UGA", "2030-01-01T11:55:00Z", {"position": 1}),
    ]:
        execute(database_url, _EVENT, (sid, trk, kind, office, country, at, 30.0, 0.5, kind == "arrived",
                                       Jsonb(detail)))


def test_itinerary_times_come_from_the_milestones(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _register(client, corridor)
    _milestones(database_url, shipment, corridor)
    itinerary = _get(client, shipment["id"]).json()["itinerary"]
    assert [(o["office_code"], o["arrived_at"], o["departed_at"]) for o in itinerary] == [
        (corridor.world.departure, None, "2030-01-01T08:00:00Z"),
        (corridor.transit[0], "2030-01-01T11:20:00Z", "2030-01-01T12:10:00Z"),
        (corridor.transit[1], None, None), (corridor.world.destination, None, None)]


def test_timeline_in_time_order(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _register(client, corridor)
    _milestones(database_url, shipment, corridor)
    items = _get(client, shipment["id"], "/timeline").json()["items"]
    assert [(i["kind"], i["office_code"], i["position"], i["at"]) for i in items] == [
        ("departed", corridor.world.departure, 0, "2030-01-01T08:00:00Z"),
        ("arrived", corridor.transit[0], 1, "2030-01-01T11:20:00Z"),
        ("border_crossed", None, None, "2030-01-01T11:40:00Z"),
        ("departed", corridor.transit[0], 1, "2030-01-01T11:50:00Z"),
        ("arrived", corridor.transit[0], 1, "2030-01-01T11:55:00Z"),
        ("departed", corridor.transit[0], 1, "2030-01-01T12:10:00Z")]
    crossing = items[2]
    assert crossing == {"kind": "border_crossed", "office_code": None, "position": None, "country": "UGA",
                        "at": "2030-01-01T11:40:00Z", "lon": 30.0, "lat": 0.5, "late": False,
                        "detail": {"from": "KEN", "to": "UGA"}}
    assert items[1]["late"] is True
    assert _get(client, _register(client, corridor)["id"], "/timeline").json() == {"items": []}
    missing = _get(client, 2**62, "/timeline")
    assert missing.status_code == 404 and missing.json()["detail"] == f"shipment {2**62} does not exist"


def test_country_is_where_the_tracker_was_last_seen(client: TestClient, corridor: Corridor,
                                                    database_url: str) -> None:
    shipment = _register(client, corridor)
    assert shipment["country"] is None
    execute(database_url, "INSERT INTO latest_positions (device_id, seq, ts, lat, lon, received_at, country) "
            "VALUES (%s, 1, now(), 0.5, 30.0, now(), 'UGA')", (shipment["tracker_id"],))
    assert _get(client, shipment["id"]).json()["country"] == "UGA"


def test_risk_is_the_stored_assessment_with_its_level(client: TestClient, corridor: Corridor,
                                                      database_url: str) -> None:
    shipment = _register(client, corridor)
    risk = {"score": 60, "computed": "high", "reasons": [
        {"factor": "goods", "points": 40, "detail": "271019: fuel"},
        {"factor": "operator", "points": 20, "detail": "2 confirmed alerts in 6 months"}]}
    execute(database_url, "UPDATE shipments SET risk = %s, risk_level = 'high' WHERE id = %s",
            (Jsonb(risk), shipment["id"]))
    assert _get(client, shipment["id"]).json()["risk"] == risk | {"level": "high", "override": None}


# Handover: every administration on the itinerary

def _region(client: TestClient, geometry: dict[str, Any]) -> str:
    code = unique("R-")
    created(client.post(f"{API}/regions", json={"code": code, "name": "border", "geometry": geometry},
                        headers=auth("admin")))
    return code


def _around_transit_office(corridor: Corridor) -> dict[str, Any]:
    # The first office of transit spans lat + 0.007 +- 0.01 at lon + 0.33; the route runs below lat + 0.0066
    # there: a square from lat + 0.012 upwards overlaps the office, not the route.
    w = corridor.world
    return {"type": "Polygon", "coordinates": [[[w.lon + x, w.lat + y] for x, y in (
        (0.325, 0.012), (0.335, 0.012), (0.335, 0.03), (0.325, 0.03), (0.325, 0.012))]]}


def test_officers_of_a_transit_office_see_the_shipment(client: TestClient, corridor: Corridor) -> None:
    code = _region(client, _around_transit_office(corridor))
    shipment = _register(client, corridor)
    assert shipment["regions"] == [code]
    for path in ("", "/timeline"):
        assert _get(client, shipment["id"], path, role="officer", region=code).status_code == 200
    listed = client.get(f"{API}/shipments", params={"limit": 500}, headers=auth("officer", code)).json()["items"]
    assert shipment["id"] in {s["id"] for s in listed}
    elsewhere = unique("R-")
    for path in ("", "/timeline"):
        hidden = _get(client, shipment["id"], path, role="officer", region=elsewhere)
        assert hidden.status_code == 404 and hidden.json()["detail"] == f"shipment {shipment['id']} does not exist"


def test_a_region_created_later_on_a_transit_office_covers_the_shipment(client: TestClient,
                                                                        corridor: Corridor) -> None:
    shipment = _register(client, corridor)
    v1 = created(client.post(f"{API}/shipments", json=corridor.world.shipment(), headers=auth("operator")))
    code = _region(client, _around_transit_office(corridor))
    assert _get(client, shipment["id"], role="officer", region=code).json()["regions"] == [code]
    assert _get(client, v1["id"], role="officer", region=code).status_code == 404  # not on its itinerary


def test_vehicle_filter(client: TestClient, corridor: Corridor) -> None:
    shipment = _register(client, corridor)
    _register(client, corridor)
    page = client.get(f"{API}/shipments", params={"vehicle": shipment["vehicle"]}, headers=auth("operator")).json()
    assert [s["id"] for s in page["items"]] == [shipment["id"]]
    bad = client.get(f"{API}/shipments", params={"vehicle": "kcb 1"}, headers=auth("operator"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "vehicle"]
