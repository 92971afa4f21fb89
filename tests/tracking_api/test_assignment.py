"""``POST /alerts/{id}/assign`` (an officer, a unit, a whole incident), ``GET /alerts?assigned=me``,
``/units`` and the session's unit, on the real database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query
from tests.tracking_api.case_support import CaseWorld, auth, case_world, new_alert
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

API = "/api/v1"


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    return case_world(database_url, "assign")


def assign(client: TestClient, alert_id: int, body: dict[str, object], headers: dict[str, str]) -> object:
    return client.post(f"{API}/alerts/{alert_id}/assign", json=body, headers=headers)


def test_an_officer_assigns_an_alert_in_their_region_audited_and_as_an_event(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    officer = auth("officer", w.region_a, subject="off-a")
    response = client.post(f"{API}/alerts/{alert_id}/assign", json={"assignee": "off-a2", "unit": w.unit_a},
                           headers=officer)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert (item["id"], item["assignee"], item["unit"]) == (alert_id, "off-a2", w.unit_a)
    assert item["assigned_at"] is not None
    assert query(database_url, "SELECT event FROM alert_events WHERE alert_id = %s ORDER BY id",
                 (alert_id,)) == [("opened",), ("assigned",)]
    assert query(database_url, "SELECT actor, action, detail FROM audit_log WHERE action = 'alert.assigned' AND "
                               "object_id = %s", (str(alert_id),)) == [
        ("off-a", "alert.assigned", {"assignee": "off-a2", "unit": w.unit_a, "via": alert_id})]
    assert query(database_url, "SELECT assigned_by FROM alerts WHERE id = %s", (alert_id,)) == [("off-a",)]


def test_assigning_the_incident_assigns_every_alert_of_it_the_caller_may_see(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    first = new_alert(database_url, w, w.s_a)
    second = new_alert(database_url, w, w.s_a, type_="unscheduled_stop")
    done = new_alert(database_url, w, w.s_a, status="resolved")
    elsewhere = new_alert(database_url, w, w.s_b)  # the same truck's condition on another region's shipment
    execute(database_url, "UPDATE alerts SET incident = %s WHERE id = ANY(%s)",
            (first, [first, second, done, elsewhere]))
    response = client.post(f"{API}/alerts/{second}/assign", json={"unit": w.unit_a, "incident": True},
                           headers=auth("supervisor", w.region_a, subject="sup-a"))
    assert response.status_code == 200, response.text
    assert [a["id"] for a in response.json()["items"]] == [second, first]
    units = dict(query(database_url, "SELECT id, unit FROM alerts WHERE id = ANY(%s)",
                       ([first, second, done, elsewhere],)))
    assert units == {first: w.unit_a, second: w.unit_a, done: None, elsewhere: None}


def test_assignment_stays_within_the_callers_region(client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    officer_b = auth("officer", w.region_b, subject="off-b")
    response = client.post(f"{API}/alerts/{alert_id}/assign", json={"assignee": "off-b"}, headers=officer_b)
    assert response.status_code == 404, response.text
    # A unit of another region, even on an alert the officer may see.
    own = new_alert(database_url, w, w.s_b)
    response = client.post(f"{API}/alerts/{own}/assign", json={"unit": w.unit_a}, headers=officer_b)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "unit"]
    assert w.region_a in response.json()["detail"][0]["msg"]
    assert query(database_url, "SELECT assignee, unit FROM alerts WHERE id = ANY(%s)",
                 ([alert_id, own],)) == [(None, None), (None, None)]


def test_refusals(client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    assert client.post(f"{API}/alerts/{alert_id}/assign", json={"unit": "NO-SUCH-UNIT"},
                       headers=auth("admin")).json()["detail"][0]["loc"] == ["body", "unit"]
    assert client.post(f"{API}/alerts/{alert_id}/assign", json={"assignee": "x"},
                       headers=auth("integrator")).status_code == 403
    resolved = new_alert(database_url, w, w.s_a, status="resolved")
    response = client.post(f"{API}/alerts/{resolved}/assign", json={"assignee": "x"}, headers=auth("admin"))
    assert response.status_code == 409, response.text
    for bad in (" ", "nul\x00"):
        assert client.post(f"{API}/alerts/{alert_id}/assign", json={"assignee": bad},
                           headers=auth("admin")).status_code == 422


def test_assigned_me_lists_the_callers_and_their_units_alerts(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    mine = new_alert(database_url, w, w.s_a)
    units = new_alert(database_url, w, w.s_a)
    other = new_alert(database_url, w, w.s_a)
    execute(database_url, "UPDATE alerts SET assignee = 'me-1' WHERE id = %s", (mine,))
    execute(database_url, "UPDATE alerts SET unit = %s WHERE id = %s", (w.unit_a, units))
    execute(database_url, "UPDATE alerts SET assignee = 'someone' WHERE id = %s", (other,))
    token = mint(ApiSettings(), "me-1", "officer", w.region_a, unit=w.unit_a)
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get(f"{API}/alerts", params={"assigned": "me", "shipment": w.s_a}, headers=headers).json()
    listed_ids = [a["id"] for a in listed["items"]]
    assert listed_ids[:2] == [units, mine] and other not in listed_ids
    assert all(a["assignee"] == "me-1" or a["unit"] == w.unit_a for a in listed["items"])
    assert client.get(f"{API}/session", headers=headers).json()["unit"] == w.unit_a
    assert client.get(f"{API}/alerts", params={"assigned": "you"}, headers=headers).status_code == 422


def test_units_are_listed_and_defined_by_admins_audited(client: TestClient, w: CaseWorld, database_url: str) -> None:
    code = f"{w.unit_a}-X"
    body = {"name": "Mobile team", "region": w.region_a}
    assert client.put(f"{API}/units/{code}", json=body, headers=auth("operator")).status_code == 403
    response = client.put(f"{API}/units/{code}", json=body, headers=auth("admin", subject="adm"))
    assert response.status_code == 200, response.text
    assert response.json() == {**body, "code": code}
    assert {"code": code, **body} in client.get(f"{API}/units", headers=auth("integrator")).json()["items"]
    assert query(database_url, "SELECT actor, detail FROM audit_log WHERE action = 'unit.defined' AND object_id = %s",
                 (code,)) == [("adm", body)]
    bad = client.put(f"{API}/units/{code}", json={"name": "x", "region": "NO-SUCH"}, headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "region"]
    assert client.put(f"{API}/units/lower", json=body, headers=auth("admin")).status_code == 422
