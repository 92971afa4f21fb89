"""Officers' decisions on a shipment through the API, against the real database:
release at destination (alone or with the arrival), inspections authorised at an
office of the itinerary, and the risk level override; each on the timeline where
it belongs and in the audit log; roles and regions refused."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query
from tests.tracking_api.geo_support import API, auth, created, square, unique
from tests.tracking_api.transit_support import Corridor, make_corridor


@pytest.fixture
def corridor(client: TestClient) -> Corridor:
    return make_corridor(client)


def _shipment(client: TestClient, corridor: Corridor, status: str = "in_transit") -> dict[str, Any]:
    body = created(client.post(f"{API}/shipments", json=corridor.shipment(), headers=auth("operator")))
    for action, reached in (("depart", "in_transit"), ("arrive", "arrived"), ("close", "closed")):
        if body["status"] == status:
            break
        body = _post(client, body["id"], action, at="2026-01-01T06:00:00Z" if action == "depart" else None).json()
        assert body["status"] == reached
    return body


def _post(client: TestClient, shipment_id: int, action: str, role: str = "operator", region: str | None = None,
          **body: Any) -> Any:
    payload = {k: v for k, v in body.items() if v is not None}
    return client.post(f"{API}/shipments/{shipment_id}/{action}", json=payload or None,
                       headers=auth(role, region, subject=f"{role}-1"))


def _audit(database_url: str, shipment_id: int, action: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT actor, detail FROM audit_log WHERE object_type = 'shipment' "
                 "AND object_id = %s AND action = %s ORDER BY id", (str(shipment_id), action))


def _events(database_url: str, shipment_id: int, kind: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT office_code, country, at, detail FROM shipment_events "
                 "WHERE shipment_id = %s AND kind = %s ORDER BY id", (shipment_id, kind))


def _issues(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


# Release

def test_release_in_transit(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _shipment(client, corridor)
    execute(database_url, "UPDATE zones SET country = 'UGA' WHERE office_code = %s", (corridor.world.destination,))
    released = _post(client, shipment["id"], "release", at="2026-01-02T09:30:00+03:00", note="cleared")
    assert released.status_code == 200, released.text
    assert released.json()["released_at"] == "2026-01-02T06:30:00Z"
    assert released.json()["status"] == "in_transit"
    (event,) = _events(database_url, shipment["id"], "released")
    assert (event[0], event[1], event[2].isoformat(), event[3]) == (
        corridor.world.destination, "UGA", "2026-01-02T06:30:00+00:00", {"by": "operator-1", "note": "cleared"})
    assert query(database_url, "SELECT released_by FROM shipments WHERE id = %s", (shipment["id"],)) == [
        ("operator-1",)]
    ((actor, detail),) = _audit(database_url, shipment["id"], "shipment.released")
    assert (actor, detail["at"], detail["note"]) == ("operator-1", "2026-01-02T06:30:00+00:00", "cleared")
    items = client.get(f"{API}/shipments/{shipment['id']}/timeline", headers=auth("operator")).json()["items"]
    assert [(i["kind"], i["position"]) for i in items] == [("released", 3)]


def test_release_once_and_only_in_transit_or_arrived(client: TestClient, corridor: Corridor) -> None:
    shipment = _shipment(client, corridor, "arrived")
    assert _post(client, shipment["id"], "release", role="admin").status_code == 200
    again = _post(client, shipment["id"], "release")
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"shipment {shipment['id']} was already released at ")
    assert again.json()["detail"].endswith(" by admin-1")
    for status in ("registered", "closed"):
        refused = _post(client, _shipment(client, corridor, status)["id"], "release")
        assert refused.status_code == 409
        assert refused.json()["detail"].endswith(
            f"its status is {status!r}, release needs 'in_transit' or 'arrived'")


@pytest.mark.parametrize(("body", "loc", "message"), [
    ({"at": "2099-01-01T00:00:00Z"}, ["body", "at"], "is in the future"),
    ({"at": "2026-01-01T05:59:59Z"}, ["body", "at"],
     "at 2026-01-01T05:59:59+00:00 is before departed_at 2026-01-01T06:00:00+00:00"),
    ({"at": "2026-01-02T06:00:00"}, ["body", "at"], "timezone"),
    ({"note": ""}, ["body", "note"], "at least 1 character"),
    ({"note": "n" * 1001}, ["body", "note"], "at most 1000 characters"),
    ({"note": 5}, ["body", "note"], "valid string"),
    ({"by": "me"}, ["body", "by"], "Extra inputs are not permitted"),
])
def test_bad_release_bodies_are_422(client: TestClient, corridor: Corridor, body: dict[str, Any], loc: list[Any],
                                    message: str) -> None:
    shipment = _shipment(client, corridor)
    issues = _issues(_post(client, shipment["id"], "release", **body))
    assert any(i["loc"] == loc and message in i["msg"] for i in issues), issues
    assert client.get(f"{API}/shipments/{shipment['id']}", headers=auth("operator")).json()["released_at"] is None


def test_arrive_and_release(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _shipment(client, corridor)
    arrived = _post(client, shipment["id"], "arrive", at="2026-01-02T08:00:00Z", release=True).json()
    assert (arrived["status"], arrived["arrived_at"], arrived["released_at"]) == (
        "arrived", "2026-01-02T08:00:00Z", "2026-01-02T08:00:00Z")
    assert [a for a, _ in _audit(database_url, shipment["id"], "shipment.released")] == ["operator-1"]
    assert len(_events(database_url, shipment["id"], "released")) == 1
    plain = _post(client, _shipment(client, corridor)["id"], "arrive", release=False).json()
    assert plain["status"] == "arrived" and plain["released_at"] is None
    assert _issues(_post(client, shipment["id"], "depart", release=True))[0]["loc"] == ["body", "release"]


def test_arrive_and_release_when_already_released_changes_nothing(client: TestClient, corridor: Corridor) -> None:
    shipment = _shipment(client, corridor)
    assert _post(client, shipment["id"], "release").status_code == 200
    refused = _post(client, shipment["id"], "arrive", release=True)
    assert refused.status_code == 409
    assert client.get(f"{API}/shipments/{shipment['id']}", headers=auth("operator")).json()["status"] == "in_transit"


def test_a_release_made_at_the_same_time_is_409(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _shipment(client, corridor)
    results: list[Any] = []
    with psycopg.connect(database_url) as other:
        # Another officer's release holds the row: the API's has to wait for it, then see it.
        other.execute("SELECT 1 FROM shipments WHERE id = %s FOR UPDATE", (shipment["id"],))
        waiter = threading.Thread(target=lambda: results.append(_post(client, shipment["id"], "release")))
        waiter.start()
        time.sleep(0.5)
        assert not results, f"release did not wait for the row lock: {results[0].text}"
        other.execute("UPDATE shipments SET released_at = now(), released_by = 'officer-2' WHERE id = %s",
                      (shipment["id"],))
        other.commit()
    waiter.join(timeout=10)
    assert results[0].status_code == 409 and results[0].json()["detail"].endswith("by officer-2")


def test_who_may_release(client: TestClient, corridor: Corridor) -> None:
    code = unique("R-")
    w = corridor.world
    created(client.post(f"{API}/regions", json={"code": code, "name": "mid", "geometry": square(
        w.lon + 0.5, w.lat, 0.05)}, headers=auth("admin")))
    shipment = _shipment(client, corridor)
    integrator = _post(client, shipment["id"], "release", role="integrator")
    assert integrator.status_code == 403
    assert integrator.json()["detail"] == "role 'integrator' may not do this (allowed: admin, operator, officer)"
    elsewhere = _post(client, shipment["id"], "release", role="officer", region=unique("R-"))
    assert elsewhere.status_code == 404 and elsewhere.json()["detail"] == f"shipment {shipment['id']} does not exist"
    assert client.post(f"{API}/shipments/{shipment['id']}/release").status_code == 401
    assert _post(client, shipment["id"], "release", role="officer", region=code).status_code == 200


# Inspections

def test_inspection_at_an_office_of_the_itinerary(client: TestClient, corridor: Corridor,
                                                  database_url: str) -> None:
    shipment = _shipment(client, corridor)
    post = corridor.transit[1]
    execute(database_url, "UPDATE zones SET country = 'UGA' WHERE office_code = %s", (post,))
    response = _post(client, shipment["id"], "inspections", role="admin", office_code=post, note="scanner")
    inspection = created(response)
    assert {k: inspection[k] for k in ("shipment_id", "office_code", "authorised_by", "note", "used_at")} == {
        "shipment_id": shipment["id"], "office_code": post, "authorised_by": "admin-1", "note": "scanner",
        "used_at": None}
    assert query(database_url, "SELECT office_code, authorised_by, used_at FROM inspections WHERE id = %s",
                 (inspection["id"],)) == [(post, "admin-1", None)]
    ((office, country, at, detail),) = _events(database_url, shipment["id"], "inspection_authorised")
    assert (office, country, detail) == (post, "UGA", {"inspection": inspection["id"], "by": "admin-1",
                                                       "note": "scanner"})
    assert at == datetime.fromisoformat(inspection["authorised_at"])  # the authorisation's time
    ((_, audited),) = _audit(database_url, shipment["id"], "shipment.inspection_authorised")
    assert (audited["inspection"], audited["office_code"]) == (inspection["id"], post)


def test_inspection_elsewhere_is_422_naming_office_code(client: TestClient, corridor: Corridor) -> None:
    shipment = _shipment(client, corridor)
    other = make_corridor(client).transit[0]
    issues = _issues(_post(client, shipment["id"], "inspections", office_code=other))
    assert issues == [{"loc": ["body", "office_code"], "type": "value_error", "msg": (
        f"office_code {other!r} is not on the itinerary of shipment {shipment['id']} "
        f"({', '.join(corridor.itinerary)})")}]
    for body, loc in (({"office_code": "kemal"}, ["body", "office_code"]), ({}, ["body"]),
                      ({"office_code": corridor.transit[0], "at": "now"}, ["body", "at"]),
                      ({"office_code": corridor.transit[0], "note": "n" * 1001}, ["body", "note"])):
        assert _issues(_post(client, shipment["id"], "inspections", **body))[0]["loc"] == loc


def test_who_may_authorise_an_inspection(client: TestClient, corridor: Corridor) -> None:
    shipment = _shipment(client, corridor)
    post = corridor.transit[0]
    assert _post(client, shipment["id"], "inspections", role="integrator", office_code=post).status_code == 403
    assert _post(client, shipment["id"], "inspections", role="officer", region=unique("R-"),
                 office_code=post).status_code == 404
    closed = _shipment(client, corridor, "closed")
    refused = _post(client, closed["id"], "inspections", office_code=post)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (f"cannot authorise an inspection of shipment {closed['id']}: its status is "
                                        "'closed'")


# Risk override

def _put_risk(client: TestClient, shipment_id: int, role: str = "operator", **body: Any) -> Any:
    region = unique("R-") if role == "officer" else None
    return client.put(f"{API}/shipments/{shipment_id}/risk", json=body,
                      headers=auth(role, region, subject=f"{role}-1"))


def test_risk_override_and_clearing_it(client: TestClient, corridor: Corridor, database_url: str) -> None:
    shipment = _shipment(client, corridor)
    scored = shipment["risk"]  # services/risk.py scored it at registration: fuel declared
    assert scored["computed"] == scored["level"] and scored["reasons"][0]["factor"] == "goods"
    high = _put_risk(client, shipment["id"], level="high", reason="intelligence report 117")
    assert high.status_code == 200, high.text
    risk = high.json()["risk"]
    assert (risk["level"], risk["computed"], risk["reasons"]) == ("high", scored["computed"], scored["reasons"])
    assert {k: risk["override"][k] for k in ("level", "reason", "by")} == {
        "level": "high", "reason": "intelligence report 117", "by": "operator-1"}
    assert query(database_url, "SELECT risk_level FROM shipments WHERE id = %s", (shipment["id"],)) == [("high",)]

    cleared = _put_risk(client, shipment["id"], role="admin", level=None, reason="report closed").json()["risk"]
    assert cleared == scored  # the computed level applies again
    audited = _audit(database_url, shipment["id"], "shipment.risk_overridden")
    assert [(a, d["level"], d["from"], d["to"], d["reason"]) for a, d in audited] == [
        ("operator-1", "high", scored["level"], "high", "intelligence report 117"),
        ("admin-1", None, "high", scored["level"], "report closed")]


@pytest.mark.parametrize(("body", "loc"), [
    ({"level": "high"}, ["body", "reason"]),
    ({"level": "high", "reason": ""}, ["body", "reason"]),
    ({"level": "high", "reason": "r" * 501}, ["body", "reason"]),
    ({"level": "high", "reason": "   "}, ["body", "reason"]),
    ({"level": "high", "reason": 7}, ["body", "reason"]),
    ({"level": "extreme", "reason": "r"}, ["body", "level"]),
    ({"reason": "r"}, ["body", "level"]),
    ({"level": "high", "reason": "r", "by": "someone"}, ["body", "by"]),
])
def test_bad_risk_bodies_are_422(client: TestClient, corridor: Corridor, body: dict[str, Any],
                                 loc: list[Any]) -> None:
    issues = _issues(_put_risk(client, _shipment(client, corridor)["id"], **body))
    assert issues[0]["loc"] == loc


def test_only_admins_and_operators_override_risk(client: TestClient, corridor: Corridor) -> None:
    shipment = _shipment(client, corridor)
    for role in ("officer", "integrator"):
        refused = _put_risk(client, shipment["id"], role=role, level="high", reason="r")
        assert refused.status_code == 403
        assert refused.json()["detail"] == f"role {role!r} may not do this (allowed: admin, operator)"
    assert _put_risk(client, 2**62, level="high", reason="r").status_code == 404
