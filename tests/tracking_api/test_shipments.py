"""Shipments through the API, against the real database: registration,
validation, reads and pagination, the lifecycle, device binding, officers'
regions, roles, and the audit chain."""

from __future__ import annotations

import itertools
import math
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query
from tests.tracking_api.geo_support import (
    API,
    CONTAINERS,
    World,
    auth,
    created,
    device,
    make_world,
    reference,
    square,
    unique,
)
from tracking_api import iso6346
from tracking_api.pagination import decode

ACTIONS = ("depart", "arrive", "close")
# The action each status allows; every other one is a 409.
ALLOWED = {"registered": "depart", "in_transit": "arrive", "arrived": "close", "closed": None}


@pytest.fixture
def world(client: TestClient) -> World:
    return make_world(client)


def _register(client: TestClient, world: World, role: str = "operator", **overrides: Any) -> dict[str, Any]:
    return created(client.post(f"{API}/shipments", json=world.shipment(**overrides), headers=auth(role)))


def _step(client: TestClient, shipment_id: int, action: str, role: str = "operator", region: str | None = None,
          **body: Any) -> Any:
    return client.post(f"{API}/shipments/{shipment_id}/{action}", json=body or None, headers=auth(role, region))


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


# ISO 6346

def test_iso6346_check_digit_on_published_numbers() -> None:
    # CSQU3054383: ISO 6346's own example (Wikipedia); the others from python-stdnum and calc-ilu-check-digit.
    for number in CONTAINERS:
        assert iso6346.check_digit(number[:10]) == int(number[10]), number
        assert iso6346.problem(number) is None
    assert iso6346.problem("CSQU3054384") == "container CSQU3054384: check digit 4 is wrong, expected 3"
    assert iso6346.problem("CSQA3054383") is not None  # category must be U, J or Z
    assert iso6346.problem("csqu3054383") is not None  # upper case only


# Registration and reads

def test_register_and_read(client: TestClient, world: World) -> None:
    body = world.shipment(seal_ids=["z-seal-" + unique(), "a-seal-" + unique()], containers=CONTAINERS)
    response = client.post(f"{API}/shipments", json=body, headers=auth("integrator", subject="acme"))
    shipment = created(response)
    assert response.headers["location"].endswith(f"{API}/shipments/{shipment['id']}")
    expected = body | {"seal_ids": sorted(body["seal_ids"]), "deadline": "2030-01-01T09:00:00Z",
                       "status": "registered", "departed_at": None, "arrived_at": None, "closed_at": None,
                       "regions": [], "created_by": "acme", "progress": None}
    # A v1 body: the v1 fields, and the issue-13 ones empty or at their defaults; medium risk, as v1 behaved
    # (the scoring, services/risk.py, explains it: goods not declared).
    itinerary, risk = shipment.pop("itinerary"), shipment.pop("risk")
    v2: dict[str, Any] = {"offices_of_transit": [], "seals": [], "vehicle": None, "operator": None, "goods": [],
                          "released_at": None, "country": None}
    assert {k: v for k, v in shipment.items() if k not in ("id", "created_at")} == expected | v2
    assert [(o["position"], o["role"], o["office_code"], o["arrived_at"], o["departed_at"]) for o in itinerary] == [
        (0, "departure", world.departure, None, None), (1, "destination", world.destination, None, None)]
    assert risk["level"] == "medium" and risk["override"] is None
    shipment |= {"itinerary": itinerary, "risk": risk}

    for role in ("admin", "operator", "integrator"):
        read = client.get(f"{API}/shipments/{shipment['id']}", headers=auth(role))
        assert read.status_code == 200 and read.json() == shipment
    page = client.get(f"{API}/shipments", params={"reference": body["reference"]}, headers=auth("admin")).json()
    assert page == {"items": [shipment], "next_cursor": None}


def test_progress_comes_from_the_geofence_state(client: TestClient, world: World, database_url: str) -> None:
    shipment = _register(client, world)
    execute(database_url, "INSERT INTO geofence_state (device_id, shipment_id, state, chainage_m, distance_m, "
            "last_fix_at) VALUES (%s, %s, '\\x80', 1234.5, 12.0, '2030-01-01T10:00:00Z')",
            (shipment["tracker_id"], shipment["id"]))
    read = client.get(f"{API}/shipments/{shipment['id']}", headers=auth("operator")).json()
    progress = read["progress"]
    assert (progress["chainage_m"], progress["distance_m"], progress["last_fix_at"]) == (
        1234.5, 12.0, "2030-01-01T10:00:00Z")
    assert progress["remaining_m"] == pytest.approx(progress["route_length_m"] - 1234.5)
    assert progress["eta"] is None and progress["average_speed_kmh"] is None  # not departed


def test_eta_is_the_remaining_distance_at_the_average_speed_so_far(client: TestClient, world: World,
                                                                  database_url: str) -> None:
    shipment = _register(client, world)
    departed = client.post(f"{API}/shipments/{shipment['id']}/depart", headers=auth("operator")).json()
    departed_at = datetime.fromisoformat(departed["departed_at"])
    last_fix_at = departed_at + timedelta(hours=2)
    execute(database_url, "INSERT INTO geofence_state (device_id, shipment_id, state, chainage_m, distance_m, "
            "last_fix_at) VALUES (%s, %s, '\\x80', 50000, 8.0, %s)", (shipment["tracker_id"], shipment["id"],
                                                                      last_fix_at))
    progress = client.get(f"{API}/shipments/{shipment['id']}", headers=auth("operator")).json()["progress"]

    # The route (make_world): three points, about one degree of longitude; haversine as the reference.
    coords = [(world.lon, world.lat), (world.lon + 0.5, world.lat + 0.01), (world.lon + 1, world.lat)]
    length = sum(_haversine_m(a, b) for a, b in itertools.pairwise(coords))
    assert progress["route_length_m"] == pytest.approx(length, rel=0.005)
    assert progress["average_speed_kmh"] == pytest.approx(25.0)  # 50 km in 2 h
    remaining = progress["route_length_m"] - 50000
    assert progress["remaining_m"] == pytest.approx(remaining)
    expected = last_fix_at + timedelta(seconds=remaining / (25 / 3.6))
    assert abs(datetime.fromisoformat(progress["eta"]) - expected) < timedelta(seconds=1)


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = (map(math.radians, a)), (map(math.radians, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def test_unknown_shipment_is_404(client: TestClient) -> None:
    response = client.get(f"{API}/shipments/{2**62}", headers=auth("operator"))
    assert response.status_code == 404
    assert response.json()["detail"] == f"shipment {2**62} does not exist"


@pytest.mark.parametrize(("overrides", "loc", "message"), [
    ({"reference": "26KE123"}, ["body", "reference"], "should match pattern"),
    ({"reference": "ke26AAAAAAAAAAAAAA"}, ["body", "reference"], "should match pattern"),
    ({"tracker_id": "bad id!"}, ["body", "tracker_id"], "should match pattern"),
    ({"tracker_id": "t" * 65}, ["body", "tracker_id"], "should match pattern"),
    ({"seal_ids": ["ok", "not/ok"]}, ["body", "seal_ids", 1], "should match pattern"),
    ({"seal_ids": ["s1", "s1"]}, ["body", "seal_ids"], "seal s1 is listed twice"),
    ({"containers": ["CSQU3054384"]}, ["body", "containers", 0],
     "container CSQU3054384: check digit 4 is wrong, expected 3"),
    ({"containers": ["CSQU3054383", "TASU1170001"]}, ["body", "containers", 1],
     "container TASU1170001: check digit 1 is wrong, expected 0"),
    ({"containers": ["CSQU 305438 3"]}, ["body", "containers", 0], "is not an ISO 6346 number"),
    ({"containers": ["CSQU3054383", "CSQU3054383"]}, ["body", "containers"], "listed twice"),
    ({"office_of_departure": "kemba"}, ["body", "office_of_departure"], "should match pattern"),
    ({"deadline": "2030-01-01T12:00:00"}, ["body", "deadline"], "timezone"),
    ({"route_id": 0}, ["body", "route_id"], "greater than 0"),
    ({"priority": "high"}, ["body", "priority"], "Extra inputs are not permitted"),
])
def test_bad_shipment_bodies_are_422_naming_the_field(client: TestClient, world: World, overrides: dict[str, Any],
                                                      loc: list[Any], message: str) -> None:
    issues = _issues(client.post(f"{API}/shipments", json=world.shipment(**overrides), headers=auth("operator")))
    assert any(i["loc"] == loc and message in i["msg"] for i in issues), issues


def test_tracker_may_not_also_be_a_seal(client: TestClient, world: World) -> None:
    tracker = device("trk")
    issues = _issues(client.post(f"{API}/shipments", json=world.shipment(tracker_id=tracker, seal_ids=[tracker]),
                                 headers=auth("operator")))
    assert f"tracker_id {tracker!r} is also listed in seal_ids" in issues[0]["msg"]


def test_unknown_route_and_offices_are_422(client: TestClient, world: World) -> None:
    issues = _issues(client.post(f"{API}/shipments", json=world.shipment(
        route_id=2**62, office_of_destination="NOSUCHOFFICE"), headers=auth("operator")))
    assert issues == [
        {"loc": ["body", "route_id"], "msg": f"route {2**62} does not exist", "type": "value_error"},
        {"loc": ["body", "office_of_destination"],
         "msg": "office_of_destination 'NOSUCHOFFICE' is not the code of an office zone", "type": "value_error"}]


def test_duplicate_reference_is_409(client: TestClient, world: World) -> None:
    first = _register(client, world)
    again = client.post(f"{API}/shipments", json=world.shipment(reference=first["reference"]),
                        headers=auth("operator"))
    assert again.status_code == 409
    assert again.json()["detail"] == f"reference {first['reference']!r} is already registered (shipment {first['id']})"


def test_pagination_newest_first(client: TestClient, world: World) -> None:
    mine = [_register(client, world)["id"] for _ in range(3)]
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"{API}/shipments", params=params, headers=auth("operator")).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert decode(cursor) == page["items"][-1]["id"]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    assert set(mine) <= set(seen)

    registered = client.get(f"{API}/shipments", params={"status": "registered", "limit": 500},
                            headers=auth("operator")).json()["items"]
    assert {s["status"] for s in registered} == {"registered"} and set(mine) <= {s["id"] for s in registered}
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "abc"}, {"status": "lost"}):
        issues = _issues(client.get(f"{API}/shipments", params=params, headers=auth("operator")))
        assert issues[0]["loc"] == ["query", next(iter(params))]


# Lifecycle

def test_lifecycle_and_its_audit_chain(client: TestClient, world: World, database_url: str) -> None:
    shipment = _register(client, world, role="operator")
    seal = shipment["seal_ids"][0]
    departed = _step(client, shipment["id"], "depart", at="2025-12-31T06:00:00+03:00")
    assert departed.status_code == 200, departed.text
    assert departed.json()["status"] == "in_transit"
    assert departed.json()["departed_at"] == "2025-12-31T03:00:00Z"
    arrived = _step(client, shipment["id"], "arrive", role="admin").json()  # no body: now
    assert arrived["status"] == "arrived" and arrived["arrived_at"] is not None
    assert query(database_url, "SELECT active FROM shipment_seals WHERE shipment_id = %s",
                 (shipment["id"],)) == [(True,)]
    closed = _step(client, shipment["id"], "close", role="admin").json()
    assert closed["status"] == "closed" and closed["closed_at"] >= closed["arrived_at"]
    assert closed["seal_ids"] == [seal]  # still listed, no longer bound
    assert query(database_url, "SELECT active FROM shipment_seals WHERE shipment_id = %s",
                 (shipment["id"],)) == [(False,)]

    rows = query(database_url, "SELECT actor, role, action, detail FROM audit_log "
                 "WHERE object_type = 'shipment' AND object_id = %s ORDER BY id", (str(shipment["id"]),))
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("test-operator", "operator", "shipment.registered"), ("test-operator", "operator", "shipment.departed"),
        ("test-admin", "admin", "shipment.arrived"), ("test-admin", "admin", "shipment.closed")]
    assert rows[0][3]["reference"] == shipment["reference"]
    assert rows[1][3] == {"reference": shipment["reference"], "from": "registered", "to": "in_transit",
                          "at": "2025-12-31T03:00:00+00:00"}
    _assert_audit_chain_unbroken(database_url)


def _assert_audit_chain_unbroken(database_url: str) -> None:
    rows = query(database_url, "SELECT id, prev_hash, hash, hash = audit_row_hash(prev_hash, a) "
                 "FROM audit_log a ORDER BY id")
    assert rows and rows[0][1] == b""
    for before, after in itertools.pairwise(rows):
        assert after[1] == before[2], f"audit row {after[0]}: prev_hash is not row {before[0]}'s hash"
    assert all(r[3] for r in rows), "a row's hash does not match its content"


def test_every_illegal_transition_is_409(client: TestClient, world: World) -> None:
    shipment_id = _register(client, world)["id"]
    for status, allowed in ALLOWED.items():
        for action in ACTIONS:
            if action == allowed:
                continue
            response = _step(client, shipment_id, action)
            assert response.status_code == 409, (status, action)
            assert response.json()["detail"].startswith(
                f"cannot {action} shipment {shipment_id}: its status is {status!r}"), response.json()
        read = client.get(f"{API}/shipments/{shipment_id}", headers=auth("operator")).json()
        assert read["status"] == status  # a refused step changes nothing
        if allowed:
            assert _step(client, shipment_id, allowed).status_code == 200


def test_transition_body(client: TestClient, world: World) -> None:
    shipment_id = _register(client, world)["id"]
    assert _issues(_step(client, shipment_id, "depart", when="now"))[0]["loc"] == ["body", "when"]
    assert _issues(_step(client, shipment_id, "depart", at="2025-01-01T06:00:00"))[0]["loc"] == ["body", "at"]
    future = _issues(_step(client, shipment_id, "depart", at="2099-01-01T00:00:00Z"))
    assert future[0]["loc"] == ["body", "at"] and "is in the future" in future[0]["msg"]
    assert _step(client, shipment_id, "depart", at="2025-12-31T06:00:00Z").status_code == 200
    early = _issues(_step(client, shipment_id, "arrive", at="2025-12-31T05:59:59Z"))
    assert early[0]["msg"] == ("at 2025-12-31T05:59:59+00:00 is before departed_at 2025-12-31T06:00:00+00:00")
    assert _step(client, shipment_id, "arrive", at="2025-12-31T08:00:00Z").json()["arrived_at"] == (
        "2025-12-31T08:00:00Z")


def test_concurrent_transitions_do_not_both_succeed(client: TestClient, world: World, database_url: str) -> None:
    shipment_id = _register(client, world)["id"]
    results: list[Any] = []
    with psycopg.connect(database_url) as other:
        # Another writer holds the row: the API's depart has to wait for it, then see what it did.
        other.execute("SELECT 1 FROM shipments WHERE id = %s FOR UPDATE", (shipment_id,))
        waiter = threading.Thread(target=lambda: results.append(_step(client, shipment_id, "depart")))
        waiter.start()
        time.sleep(0.5)
        assert not results, "depart did not wait for the row lock"
        other.execute("UPDATE shipments SET status = 'in_transit', departed_at = now() WHERE id = %s", (shipment_id,))
        other.commit()
    waiter.join(timeout=10)
    assert results[0].status_code == 409
    assert "its status is 'in_transit'" in results[0].json()["detail"]


# Devices bound to active shipments

def test_tracker_and_seals_are_bound_until_free(client: TestClient, world: World) -> None:
    shipment = _register(client, world)
    tracker, seal = shipment["tracker_id"], shipment["seal_ids"][0]

    def register_with(**devices: Any) -> Any:
        return client.post(f"{API}/shipments", json=world.shipment(**devices), headers=auth("operator"))

    busy_tracker = register_with(tracker_id=tracker)
    assert busy_tracker.status_code == 409
    assert busy_tracker.json()["detail"] == (
        f"tracker {tracker!r} is bound to active shipment {shipment['reference']} (registered)")
    busy_seal = register_with(seal_ids=[device("seal"), seal])
    assert busy_seal.status_code == 409
    assert f"seal {seal!r} is bound to active shipment {shipment['reference']}" in busy_seal.json()["detail"]
    # A device is in one truck at a time, whatever its part.
    assert register_with(tracker_id=seal, seal_ids=[]).status_code == 409

    assert _step(client, shipment["id"], "depart").status_code == 200
    assert register_with(tracker_id=tracker).status_code == 409
    assert _step(client, shipment["id"], "arrive").status_code == 200
    # Arrived: the tracker is free (it may be unmounted at the office), the seals only once closed.
    assert register_with(seal_ids=[seal]).status_code == 409
    _register(client, world, tracker_id=tracker, seal_ids=[])
    assert _step(client, shipment["id"], "close").status_code == 200
    _register(client, world, seal_ids=[seal])


def test_a_tracker_bound_concurrently_is_409(client: TestClient, world: World, database_url: str) -> None:
    body = world.shipment()
    results: list[Any] = []
    with psycopg.connect(database_url) as other:
        # Not committed yet: the API's check does not see it, its insert waits on the unique index.
        other.execute("INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, "
                      "office_of_destination, deadline) VALUES (%s, %s, %s, %s, %s, now())",
                      (reference(), world.route_id, body["tracker_id"], world.departure, world.destination))
        waiter = threading.Thread(target=lambda: results.append(
            client.post(f"{API}/shipments", json=body, headers=auth("operator"))))
        waiter.start()
        time.sleep(0.5)
        other.commit()
    waiter.join(timeout=10)
    # The registration waits for the other's lock on the tracker (schema/022's trigger takes it), then sees it.
    assert results[0].status_code == 409
    assert results[0].json()["detail"].startswith(f"tracker {body['tracker_id']!r} is bound to active shipment")


# Roles and regions

def test_integrator_registers_and_reads_but_does_not_move(client: TestClient, world: World) -> None:
    shipment = _register(client, world, role="integrator")
    assert client.get(f"{API}/shipments/{shipment['id']}", headers=auth("integrator")).status_code == 200
    for action in ACTIONS:
        response = _step(client, shipment["id"], action, role="integrator")
        assert response.status_code == 403
        assert response.json()["detail"] == "role 'integrator' may not do this (allowed: admin, operator, officer)"


def test_officer_sees_and_moves_only_shipments_in_their_region(client: TestClient, world: World) -> None:
    code = unique("R-")
    # A region over the middle of the route, touching neither office.
    created(client.post(f"{API}/regions", json={"code": code, "name": "Midway",
                                                "geometry": square(world.lon + 0.5, world.lat, 0.1)},
                        headers=auth("admin")))
    inside = _register(client, world)
    assert inside["regions"] == [code]
    elsewhere = _register(client, make_world(client))
    assert code not in elsewhere["regions"]

    officer = auth("officer", region=code)
    assert client.get(f"{API}/shipments/{inside['id']}", headers=officer).json() == inside
    hidden = client.get(f"{API}/shipments/{elsewhere['id']}", headers=officer)
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"shipment {elsewhere['id']} does not exist"
    listed = client.get(f"{API}/shipments", params={"limit": 500}, headers=officer).json()["items"]
    assert inside["id"] in {s["id"] for s in listed} and all(code in s["regions"] for s in listed)

    assert _step(client, elsewhere["id"], "depart", role="officer", region=code).status_code == 404
    assert _step(client, inside["id"], "depart", role="officer", region=code).status_code == 200
    assert client.post(f"{API}/shipments", json=world.shipment(), headers=officer).status_code == 403


def test_a_region_created_later_covers_shipments_not_yet_closed(client: TestClient, world: World) -> None:
    active = _register(client, world)
    done = _register(client, world)
    for action in ACTIONS:
        assert _step(client, done["id"], action).status_code == 200
    code = unique("R-")
    created(client.post(f"{API}/regions", json={"code": code, "name": "Later",
                                                "geometry": square(world.lon, world.lat, 0.05)},
                        headers=auth("admin")))
    officer = auth("officer", region=code)
    assert client.get(f"{API}/shipments/{active['id']}", headers=officer).json()["regions"] == [code]
    assert client.get(f"{API}/shipments/{done['id']}", headers=officer).status_code == 404


def test_a_region_touching_only_an_office_counts(client: TestClient, world: World) -> None:
    # The destination office spans lon + 0.99 .. lon + 1.01 and the route ends at lon + 1: a region
    # from lon + 1.005 eastwards overlaps the office polygon, not the route.
    office_only = unique("R-")
    geometry = {"type": "Polygon", "coordinates": [[[world.lon + x, world.lat + y] for x, y in (
        (1.005, -0.005), (1.05, -0.005), (1.05, 0.005), (1.005, 0.005), (1.005, -0.005))]]}
    created(client.post(f"{API}/regions", json={"code": office_only, "name": "East", "geometry": geometry},
                        headers=auth("admin")))
    near = unique("R-")  # north of the route, touching nothing of it
    created(client.post(f"{API}/regions", json={"code": near, "name": "North",
                                                "geometry": square(world.lon + 0.5, world.lat + 0.3, 0.1)},
                        headers=auth("admin")))
    assert _register(client, world)["regions"] == [office_only]


def test_openapi_documents_every_shipment_operation(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    paths = {f"{API}/shipments": {"get", "post"}, f"{API}/shipments/{{shipment_id}}": {"get"}} | {
        f"{API}/shipments/{{shipment_id}}/{a}": {"post"} for a in ACTIONS}
    for path, methods in paths.items():
        assert set(spec["paths"][path]) == methods, path
        for method, operation in spec["paths"][path].items():
            assert operation["summary"], (path, method)
            assert {"200", "201"} & set(operation["responses"]), (path, method)
            if method == "post":
                assert {"401", "403", "409", "422"} <= set(operation["responses"]), path
    for name in ("ShipmentIn", "TransitionIn", "Shipment"):
        assert spec["components"]["schemas"][name]["examples"], name
    assert "reference" in spec["components"]["schemas"]["ShipmentIn"]["properties"]
