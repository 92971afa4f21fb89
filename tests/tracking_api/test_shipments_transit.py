"""Registration with the issue-13 fields through the API, against the real
database: itinerary (offices of transit), declared seal numbers, vehicle,
operator and goods; their limits and hostile values; seal numbers and
consolidated trucks (several shipments on one tracker) against other active
shipments, also when registered at the same time."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.support import query
from tests.tracking_api.geo_support import API, CONTAINERS, auth, created, device, line, reference, unique
from tests.tracking_api.transit_support import Corridor, make_corridor, plate
from tracking_api.schemas.geography import RegionFeature, RegionIn, ZoneFeature, ZoneIn
from tracking_api.schemas.shipments import (
    ArriveIn,
    Inspection,
    InspectionIn,
    ReleaseIn,
    Shipment,
    ShipmentIn,
    Timeline,
)


@pytest.fixture
def corridor(client: TestClient) -> Corridor:
    return make_corridor(client)


def _post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post(f"{API}/shipments", json=body, headers=auth("operator"))


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


def _conflict(response: Any) -> str:
    assert response.status_code == 409, response.text
    detail: str = response.json()["detail"]
    return detail


def test_register_with_itinerary_seals_vehicle_operator_goods(client: TestClient, corridor: Corridor,
                                                              database_url: str) -> None:
    body = corridor.shipment()
    shipment = created(_post(client, body))
    assert shipment["offices_of_transit"] == list(corridor.transit)
    assert [(o["position"], o["role"], o["office_code"]) for o in shipment["itinerary"]] == [
        (0, "departure", corridor.world.departure), (1, "transit", corridor.transit[0]),
        (2, "transit", corridor.transit[1]), (3, "destination", corridor.world.destination)]
    assert all(isinstance(o["zone_id"], int) for o in shipment["itinerary"])
    assert shipment["seals"] == sorted(body["seals"], key=lambda s: s["number"])
    assert (shipment["vehicle"], shipment["operator"]) == (body["vehicle"], "Acme Freight Ltd")
    assert shipment["goods"] == [
        {"line": 1, "hs_code": "271019", "description": "diesel fuel", "gross_mass_kg": 28000.0, "value": 21500.5,
         "currency": "USD"},
        {"line": 2, "hs_code": "8703", "description": None, "gross_mass_kg": None, "value": None, "currency": None}]

    sid = shipment["id"]
    assert query(database_url, "SELECT position, role, office_code FROM shipment_offices WHERE shipment_id = %s "
                 "ORDER BY position", (sid,)) == [
        (0, "departure", corridor.world.departure), (1, "transit", corridor.transit[0]),
        (2, "transit", corridor.transit[1]), (3, "destination", corridor.world.destination)]
    assert query(database_url, "SELECT seal_number, container FROM shipment_seal_numbers WHERE shipment_id = %s "
                 "ORDER BY seal_number", (sid,)) == [(s["number"], s["container"]) for s in shipment["seals"]]
    assert query(database_url, "SELECT count(*) FROM shipment_goods WHERE shipment_id = %s", (sid,)) == [(2,)]
    (detail,) = query(database_url, "SELECT detail FROM audit_log WHERE object_type = 'shipment' "
                      "AND object_id = %s AND action = 'shipment.registered'", (str(sid),))[0]
    assert (detail["offices_of_transit"], detail["seals"], detail["vehicle"], detail["goods"][0]["hs_code"]) == (
        list(corridor.transit), body["seals"], body["vehicle"], "271019")


def test_a_refused_registration_leaves_no_rows(client: TestClient, corridor: Corridor, database_url: str) -> None:
    # The last check (the reference) fails after the itinerary would have been written: nothing is.
    first = created(_post(client, corridor.shipment()))
    again = corridor.shipment(reference=first["reference"])
    assert _post(client, again).status_code == 409
    assert query(database_url, "SELECT count(*) FROM shipment_seal_numbers WHERE seal_number = %s",
                 (again["seals"][0]["number"],)) == [(0,)]


# Hostile bodies: each field at its limit passes the schema, one past it is a 422 naming the field.

TOO_MANY_OFFICES = [f"X{i:03d}" for i in range(21)]


@pytest.mark.parametrize(("overrides", "loc", "message"), [
    ({"offices_of_transit": TOO_MANY_OFFICES}, ["body", "offices_of_transit"], "at most 20 items"),
    ({"offices_of_transit": "KEMAL"}, ["body", "offices_of_transit"], "valid list"),
    ({"offices_of_transit": ["kemal"]}, ["body", "offices_of_transit", 0], "should match pattern"),
    ({"offices_of_transit": [17]}, ["body", "offices_of_transit", 0], "valid string"),
    ({"offices_of_transit": ["AB1", "AB2", "AB1"]}, ["body", "offices_of_transit", 2],
     "office of transit 'AB1' is listed twice (also at 0)"),
    ({"seals": [{"number": f"S{i}"} for i in range(101)]}, ["body", "seals"], "at most 100 items"),
    ({"seals": ["S1"]}, ["body", "seals", 0], "valid dictionary"),
    ({"seals": [{"number": "S" * 65}]}, ["body", "seals", 0, "number"], "should match pattern"),
    ({"seals": [{"number": "S 1"}]}, ["body", "seals", 0, "number"], "should match pattern"),
    ({"seals": [{"container": CONTAINERS[0]}]}, ["body", "seals", 0, "number"], "Field required"),
    ({"seals": [{"number": "S1", "colour": "red"}]}, ["body", "seals", 0, "colour"], "Extra inputs"),
    ({"vehicle": "kcb 123a"}, ["body", "vehicle"], "should match pattern"),
    ({"vehicle": "K" * 16}, ["body", "vehicle"], "should match pattern"),
    ({"vehicle": 123}, ["body", "vehicle"], "valid string"),
    ({"operator": ""}, ["body", "operator"], "at least 1 character"),
    ({"operator": "o" * 65}, ["body", "operator"], "at most 64 characters"),
    ({"goods": [{"hs_code": "8703"}] * 101}, ["body", "goods"], "at most 100 items"),
    ({"goods": [{"hs_code": "870"}]}, ["body", "goods", 0, "hs_code"], "should match pattern"),
    ({"goods": [{"hs_code": "87031234567"}]}, ["body", "goods", 0, "hs_code"], "should match pattern"),
    ({"goods": [{"hs_code": 8703}]}, ["body", "goods", 0, "hs_code"], "valid string"),
    ({"goods": [{"hs_code": "8703", "gross_mass_kg": -1}]}, ["body", "goods", 0, "gross_mass_kg"],
     "greater than or equal to 0"),
    ({"goods": [{"hs_code": "8703", "gross_mass_kg": 1e7 + 1}]}, ["body", "goods", 0, "gross_mass_kg"],
     "less than or equal to"),
    ({"goods": [{"hs_code": "8703", "value": "a lot"}]}, ["body", "goods", 0, "value"], "valid number"),
    ({"goods": [{"hs_code": "8703", "value": 1e13 + 1}]}, ["body", "goods", 0, "value"], "less than or equal to"),
    ({"goods": [{"hs_code": "8703", "currency": "usd"}]}, ["body", "goods", 0, "currency"], "should match pattern"),
    ({"goods": [{"hs_code": "8703", "description": "d" * 201}]}, ["body", "goods", 0, "description"],
     "at most 200 characters"),
])
def test_bad_new_fields_are_422_naming_the_field(client: TestClient, corridor: Corridor, overrides: dict[str, Any],
                                                 loc: list[Any], message: str) -> None:
    issues = _issues(_post(client, corridor.shipment(**overrides)))
    assert any(i["loc"] == loc and message in i["msg"] for i in issues), issues


def test_limits_themselves_are_accepted(client: TestClient, corridor: Corridor) -> None:
    body = corridor.shipment(
        seals=[{"number": f"{unique()}-{i}"} for i in range(100)], vehicle="K" * 15, operator="o" * 64,
        goods=[{"hs_code": "8703", "gross_mass_kg": 1e7, "value": 1e13, "description": "d" * 200}] * 100)
    shipment = created(_post(client, body))
    assert len(shipment["seals"]) == 100 and len(shipment["goods"]) == 100
    # 20 offices of transit pass the schema (here refused only because the codes do not exist).
    issues = _issues(_post(client, corridor.shipment(offices_of_transit=TOO_MANY_OFFICES[:20])))
    assert [i["loc"] for i in issues] == [["body", "offices_of_transit", i] for i in range(20)]


def test_itinerary_contradictions_name_the_index(client: TestClient, corridor: Corridor) -> None:
    world = corridor.world
    issues = _issues(_post(client, corridor.shipment(
        offices_of_transit=[corridor.transit[0], world.destination, world.departure])))
    assert issues == [
        {"loc": ["body", "offices_of_transit", 1], "type": "value_error",
         "msg": f"office of transit {world.destination!r} is the office_of_destination"},
        {"loc": ["body", "offices_of_transit", 2], "type": "value_error",
         "msg": f"office of transit {world.departure!r} is the office_of_departure"}]
    unknown = _issues(_post(client, corridor.shipment(offices_of_transit=[corridor.transit[0], "NOSUCHPOST"])))
    assert unknown == [{"loc": ["body", "offices_of_transit", 1], "type": "value_error",
                        "msg": "office of transit 'NOSUCHPOST' is not the code of an office or border_post zone"}]


def test_seal_declarations_contradictions_name_the_index(client: TestClient, corridor: Corridor) -> None:
    issues = _issues(_post(client, corridor.shipment(containers=[CONTAINERS[0]], seals=[
        {"number": "S1", "container": CONTAINERS[0]}, {"number": "S2", "container": CONTAINERS[2]},
        {"number": "S1"}])))
    assert issues == [
        {"loc": ["body", "seals", 1, "container"], "type": "value_error",
         "msg": f"container {CONTAINERS[2]!r} of seal S2 is not in containers"},
        {"loc": ["body", "seals", 2, "number"], "type": "value_error", "msg": "seal number S1 is listed twice"}]


# Seal numbers: on one shipment not closed at a time

def test_a_seal_number_on_another_active_shipment_is_409(client: TestClient, corridor: Corridor) -> None:
    first = created(_post(client, corridor.shipment()))
    number = first["seals"][0]["number"]
    clash = corridor.shipment(seals=[{"number": "FRESH-" + unique()}, {"number": number}])
    assert _conflict(_post(client, clash)) == (
        f"seal number {number} is declared on active shipment {first['reference']} (registered)")
    for action in ("depart", "arrive"):
        client.post(f"{API}/shipments/{first['id']}/{action}", headers=auth("operator"))
        assert _post(client, clash).status_code == 409  # arrived: not yet discharged
    client.post(f"{API}/shipments/{first['id']}/close", headers=auth("operator"))
    created(_post(client, clash))


def test_a_seal_number_declared_at_the_same_time_is_409(client: TestClient, corridor: Corridor,
                                                        database_url: str) -> None:
    body = corridor.shipment()
    number = body["seals"][0]["number"]
    # Another registration of the same number, not committed yet, as the service makes it (the lock first).
    results = _while_uncommitted(client, body, database_url, [
        ("SELECT pg_advisory_xact_lock(7710025, hashtext(%s))", (number,)),
        ("INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, "
         "deadline) VALUES (%s, %s, %s, %s, %s, now()) RETURNING id",
         (reference(), corridor.world.route_id, device("trk"), corridor.world.departure,
          corridor.world.destination)),
        ("INSERT INTO shipment_seal_numbers (shipment_id, seal_number) SELECT max(id), %s FROM shipments",
         (number,))])
    assert f"seal number {number} is declared on active shipment" in _conflict(results[0])


def _while_uncommitted(client: TestClient, body: dict[str, Any], database_url: str,
                       statements: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """POST ``body`` while another transaction has run ``statements`` and not committed; the
    registration must wait for it (checked), then answer what it saw once it committed."""
    results: list[Any] = []
    with psycopg.connect(database_url) as other:
        for statement, params in statements:
            other.execute(statement, params)
        waiter = threading.Thread(target=lambda: results.append(_post(client, body)))
        waiter.start()
        time.sleep(0.5)
        assert not results, f"the registration did not wait: {results[0].text}"
        other.commit()
    waiter.join(timeout=10)
    return results


# Consolidated trucks: one tracker, several declarations

def test_shipments_on_one_truck_share_its_tracker(client: TestClient, corridor: Corridor) -> None:
    first = created(_post(client, corridor.shipment()))
    truck = {"tracker_id": first["tracker_id"], "vehicle": first["vehicle"]}
    second = created(_post(client, corridor.shipment(**truck, seal_ids=[device("seal")])))
    assert (second["tracker_id"], second["vehicle"]) == (first["tracker_id"], first["vehicle"])
    listed = client.get(f"{API}/shipments", params={"vehicle": first["vehicle"]}, headers=auth("operator")).json()
    assert [s["id"] for s in listed["items"]] == [second["id"], first["id"]]


def test_a_tracker_on_another_truck_is_409(client: TestClient, corridor: Corridor) -> None:
    first = created(_post(client, corridor.shipment()))
    tracker, vehicle, ref = first["tracker_id"], first["vehicle"], first["reference"]
    bound = f"tracker {tracker!r} is bound to active shipment {ref} (registered)"
    other_truck = f"{bound}: a tracker serves several shipments only on one vehicle and route "
    assert _conflict(_post(client, corridor.shipment(tracker_id=tracker, vehicle=plate()))) == (
        f"{other_truck}(that one: vehicle {vehicle}, route {corridor.world.route_id})")
    assert _conflict(_post(client, corridor.shipment(tracker_id=tracker, vehicle=None))).startswith(other_truck)
    w = corridor.world
    route = created(client.post(f"{API}/routes", json={"name": unique("route "), "geometry": line(
        (w.lon, w.lat), (w.lon + 1, w.lat))}, headers=auth("operator")))
    assert _conflict(_post(client, corridor.shipment(tracker_id=tracker, vehicle=vehicle,
                                                     route_id=route["id"]))).startswith(other_truck)
    other_itinerary = _conflict(_post(client, corridor.shipment(tracker_id=tracker, vehicle=vehicle,
                                                                offices_of_transit=[corridor.transit[1]])))
    assert other_itinerary == (
        f"{bound}: a consolidated truck has one itinerary ({' > '.join(corridor.itinerary)}), this declaration's "
        f"is {w.departure} > {corridor.transit[1]} > {w.destination}")


def test_a_v1_shipment_keeps_its_tracker_to_itself(client: TestClient, corridor: Corridor) -> None:
    first = created(_post(client, corridor.world.shipment()))  # no vehicle: one shipment per tracker, as in v1
    assert _conflict(_post(client, corridor.world.shipment(tracker_id=first["tracker_id"]))) == (
        f"tracker {first['tracker_id']!r} is bound to active shipment {first['reference']} (registered)")


def test_another_itinerary_registered_at_the_same_time_is_409(client: TestClient, corridor: Corridor,
                                                              database_url: str) -> None:
    body = corridor.shipment()
    w = corridor.world
    # Same truck and route, the other itinerary, not committed yet: schema/022's trigger takes the tracker's lock.
    results = _while_uncommitted(client, body, database_url, [
        ("INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, "
         "deadline, vehicle) VALUES (%s, %s, %s, %s, %s, now(), %s)",
         (reference(), w.route_id, body["tracker_id"], w.departure, w.destination, body["vehicle"])),
        ("INSERT INTO shipment_offices (shipment_id, position, role, office_code) SELECT max(id), p, r, c "
         "FROM shipments, (VALUES (0, 'departure', %s), (1, 'destination', %s)) v(p, r, c) GROUP BY p, r, c",
         (w.departure, w.destination))])
    assert "a consolidated truck has one itinerary" in _conflict(results[0])



# The documentation

def test_openapi_documents_the_new_operations_with_examples(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    shipment = f"{API}/shipments/{{shipment_id}}"
    for path, method, codes in ((f"{shipment}/timeline", "get", {"200", "401", "404"}),
                                (f"{shipment}/release", "post", {"200", "401", "403", "404", "409", "422"}),
                                (f"{shipment}/inspections", "post", {"201", "401", "403", "404", "409", "422"}),
                                (f"{shipment}/risk", "put", {"200", "401", "403", "404", "422"})):
        operation = spec["paths"][path][method]
        assert operation["summary"] and codes <= set(operation["responses"]), (path, operation["responses"].keys())
    schemas = spec["components"]["schemas"]
    for name in ("ArriveIn", "ReleaseIn", "InspectionIn", "Inspection", "OverrideIn", "Timeline"):
        assert schemas[name]["examples"], name
    for field in ("offices_of_transit", "seals", "vehicle", "operator", "goods"):
        assert field in schemas["ShipmentIn"]["properties"], field
        assert field in schemas["ShipmentIn"]["examples"][0], field


@pytest.mark.parametrize("model", [ShipmentIn, Shipment, ArriveIn, ReleaseIn, InspectionIn, Inspection, Timeline,
                                   ZoneIn, ZoneFeature, RegionIn, RegionFeature])
def test_every_example_is_valid(model: type[BaseModel]) -> None:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list) and examples
    for example in examples:
        model.model_validate(example)
