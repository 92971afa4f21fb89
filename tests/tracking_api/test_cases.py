"""Cases: a confirmed outcome opens one on the shipment (or joins its open case) with the
evidence snapshot, each item hashed; the cases API; read-only after closing, in the API (409)
and in the database (the trigger refuses even the API's role). Real database, SQL fixtures."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ctt.audit import verify
from ctt.config import DB_API, DB_OWNER
from tests.support import as_role, execute, query
from tests.tracking_api.case_support import CaseWorld, another_shipment, auth, case_world, new_alert
from tracking_api.services.cases import report_maker

API = "/api/v1"
# The shipment report (PDF) is evidence too where tracking_api.report is installed.
KINDS = ["track", "timeline", "seal_events", "alerts", "audit"] + (["report"] if report_maker() else [])


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    world = case_world(database_url, "cases")
    seal = f"{world.prefix}-seal"
    execute(database_url, "INSERT INTO shipment_seals (shipment_id, seal_id) VALUES (%s, %s)", (world.s_a, seal))
    execute(database_url, "INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at) SELECT %s, g, "
                          "now() - interval '2 hours' + g * interval '1 minute', -3.5 + g * 0.01, 38.9, now() "
                          "FROM generate_series(1, 3) g", (world.tracker(world.s_a),))
    execute(database_url, "INSERT INTO seal_events (device_id, seq, ts, seal_id, event, received_at) "
                          "VALUES (%s, 1, now() - interval '1 hour', %s, 'opened', now())", (seal, seal))
    return world


def resolve(client: TestClient, alert_id: int, outcome: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"{API}/alerts/{alert_id}/resolve", json={"note": "found it", "outcome": outcome},
                           headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def case_of(client: TestClient, alert_id: int, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = client.get(f"{API}/cases", params={"alert": alert_id}, headers=headers or auth("admin"))
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_confirmed_outcome_opens_a_case_with_the_hashed_evidence(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    officer = auth("officer", w.region_a, subject="off-a")
    alert_id = new_alert(database_url, w, w.s_a, type_="seal_breach", severity="critical")
    resolve(client, alert_id, "confirmed_irregularity", officer)
    (case,) = case_of(client, alert_id, officer)
    assert (case["shipment"], case["status"], case["opened_by"], case["alert_ids"]) == (w.s_a, "open", "off-a",
                                                                                       [alert_id])
    assert [c["id"] for c in client.get(f"{API}/cases", params={"shipment": w.s_a},
                                        headers=officer).json()["items"]] == [case["id"]]

    body = client.get(f"{API}/cases/{case['id']}", headers=officer).json()
    assert [a["id"] for a in body["alerts"]] == [alert_id]
    assert [e["kind"] for e in body["evidence"]] == KINDS
    contents = {}
    for item in body["evidence"]:
        response = client.get(f"{API}/cases/{case['id']}/evidence/{item['id']}", headers=officer)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == item["sha256"] == response.headers["x-content-sha256"]
        assert response.headers["content-type"].startswith(item["media_type"])
        if item["kind"] == "report":
            assert response.content.startswith(b"%PDF-")
        else:
            contents[item["kind"]] = json.loads(response.content)
    assert len(contents["track"]["geometry"]["coordinates"]) == 3
    assert [e["event"] for e in contents["seal_events"]] == ["opened"]
    assert [(a["id"], a["status"], a["outcome"]) for a in contents["alerts"]] == [
        (alert_id, "resolved", "confirmed_irregularity")]
    assert [(e["actor"], e["action"]) for e in contents["audit"]] == [("off-a", "alert.resolved")]
    (opened,) = query(database_url, "SELECT actor, detail FROM audit_log WHERE action = 'case.opened' AND "
                                    "object_id = %s", (str(case["id"]),))
    assert opened[0] == "off-a"
    assert opened[1]["evidence"] == {e["kind"]: e["sha256"] for e in body["evidence"]}
    assert verify(database_url).intact


def test_a_second_confirmed_alert_joins_the_open_case_and_a_false_alarm_opens_none(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    first, second, dismissed = (new_alert(database_url, w, w.s_b) for _ in range(3))
    officer = auth("officer", w.region_b, subject="off-b")
    resolve(client, first, "goods_seized", officer)
    resolve(client, second, "confirmed_irregularity", auth("admin", subject="adm"))
    resolve(client, dismissed, "false_alarm", officer)
    (case,) = case_of(client, first)
    assert case_of(client, second) == [case] and case_of(client, dismissed) == []
    body = client.get(f"{API}/cases/{case['id']}", headers=officer).json()
    assert [a["id"] for a in body["alerts"]] == [first, second]
    assert [e["kind"] for e in body["evidence"]] == KINDS * 2  # a snapshot each time an alert joins
    (entry,) = body["entries"]
    assert (entry["author"], entry["detail"]["alert"]) == ("adm", second)
    assert query(database_url, "SELECT actor, action FROM audit_log WHERE object_type = 'case' AND object_id = %s "
                               "ORDER BY id", (str(case["id"]),)) == [("off-b", "case.opened"),
                                                                      ("adm", "case.entry_added")]


def _open_case(client: TestClient, w: CaseWorld, database_url: str, shipment: int) -> int:
    alert_id = new_alert(database_url, w, shipment)
    resolve(client, alert_id, "confirmed_irregularity", auth("admin"))
    return int(case_of(client, alert_id)[0]["id"])


def test_entries_then_closing_then_read_only_everything_audited(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    case_id = _open_case(client, w, database_url, another_shipment(database_url, w, w.region_a))
    officer = auth("officer", w.region_a, subject="off-a")
    added = client.post(f"{API}/cases/{case_id}/entries", json={"text": "driver interviewed"}, headers=officer)
    assert added.status_code == 201, added.text
    assert (added.json()["author"], added.json()["role"], added.json()["text"]) == ("off-a", "officer",
                                                                                    "driver interviewed")
    for bad in (" ", "nul \x00 inside"):
        assert client.post(f"{API}/cases/{case_id}/entries", json={"text": bad}, headers=officer).status_code == 422
    closing = {"outcome": "goods_seized", "summary": "cartons seized"}
    assert client.post(f"{API}/cases/{case_id}/close", json={"summary": "x"},
                       headers=officer).json()["detail"][0]["loc"] == ["body", "outcome"]
    closed = client.post(f"{API}/cases/{case_id}/close", json=closing, headers=officer)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["closed_by"], closed.json()["outcome"]) == (
        "closed", "off-a", "goods_seized")
    for path, body in ((f"{case_id}/entries", {"text": "late"}), (f"{case_id}/close", closing)):
        refused = client.post(f"{API}/cases/{path}", json=body, headers=officer)
        assert refused.status_code == 409, refused.text
        assert refused.json() == {"detail": f"case {case_id} is closed: read-only"}
    assert query(database_url, "SELECT actor, action FROM audit_log WHERE object_type = 'case' AND object_id = %s "
                               "ORDER BY id", (str(case_id),)) == [
        ("test-admin", "case.opened"), ("off-a", "case.entry_added"), ("off-a", "case.closed")]


@pytest.mark.parametrize(("role", "statement"), [
    (DB_API, "UPDATE cases SET summary = 'rewritten' WHERE id = %(case)s"),
    (DB_API, "UPDATE cases SET status = 'open', closed_at = NULL, closed_by = NULL, outcome = NULL, summary = NULL "
             "WHERE id = %(case)s"),
    (DB_API, "INSERT INTO case_entries (case_id, author, role, text) VALUES (%(case)s, 'x', 'officer', 'late')"),
    (DB_API, "INSERT INTO case_alerts (case_id, alert_id, added_by) VALUES (%(case)s, %(alert)s, 'x')"),
    # The API's role may not update evidence at all; not even the owner may on a closed case.
    (DB_OWNER, "UPDATE case_evidence SET taken_by = 'x' WHERE case_id = %(case)s"),
    (DB_OWNER, "DELETE FROM cases WHERE id = %(case)s"),
], ids=["summary", "reopen", "entry", "alert", "evidence", "delete"])
def test_the_database_refuses_changes_to_a_closed_case_even_from_the_api_role(
        client: TestClient, w: CaseWorld, database_url: str, role: str, statement: str) -> None:
    case_id = _open_case(client, w, database_url, another_shipment(database_url, w, w.region_b))
    assert client.post(f"{API}/cases/{case_id}/close", json={"outcome": "other", "summary": "done"},
                       headers=auth("admin")).status_code == 200
    spare = new_alert(database_url, w, w.s_b)
    with psycopg.connect(as_role(database_url, role), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=r"closed|append-only"):
        conn.execute(statement, {"case": case_id, "alert": spare})
    assert query(database_url, "SELECT status, summary FROM cases WHERE id = %s", (case_id,)) == [("closed", "done")]


def test_evidence_whose_hash_is_not_its_contents_is_refused(client: TestClient, w: CaseWorld,
                                                            database_url: str) -> None:
    case_id = _open_case(client, w, database_url, w.s_a)
    with psycopg.connect(as_role(database_url, DB_API), autocommit=True) as api, \
            pytest.raises(psycopg.errors.CheckViolation):
        api.execute("INSERT INTO case_evidence (case_id, kind, media_type, content, sha256, taken_by) "
                    "VALUES (%s, 'track', 'application/json', 'x', sha256('y'), 'x')", (case_id,))


def test_list_filters_pages_and_regions(client: TestClient, w: CaseWorld, database_url: str) -> None:
    everything = client.get(f"{API}/cases", params={"limit": 500}, headers=auth("admin")).json()["items"]
    ids = [c["id"] for c in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 3
    paged, cursor = [], None
    while True:
        page = client.get(f"{API}/cases", params={"limit": 1} | ({"cursor": cursor} if cursor else {}),
                          headers=auth("admin")).json()
        paged += [c["id"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert paged == ids
    closed = client.get(f"{API}/cases", params={"status": "closed"}, headers=auth("admin")).json()["items"]
    assert closed and {c["status"] for c in closed} == {"closed"}
    officer_b = auth("officer", w.region_b)
    own = {c["shipment"] for c in client.get(f"{API}/cases", headers=officer_b).json()["items"]}
    in_b = {r[0] for r in query(database_url, "SELECT shipment_id FROM shipment_regions WHERE region_code = %s",
                                (w.region_b,))}
    assert w.s_b in own and own <= in_b
    by_region = client.get(f"{API}/cases", params={"region": w.region_a}, headers=auth("operator")).json()["items"]
    assert w.s_a in {c["shipment"] for c in by_region} and not {c["shipment"] for c in by_region} & in_b
    other = next(c["id"] for c in everything if c["shipment"] == w.s_a)
    assert client.get(f"{API}/cases/{other}", headers=officer_b).status_code == 404
    assert client.get(f"{API}/cases/{other}/evidence/1", headers=officer_b).status_code == 404
    assert client.post(f"{API}/cases/{other}/entries", json={"text": "x"}, headers=officer_b).status_code == 404
    assert client.get(f"{API}/cases", headers=auth("integrator")).status_code == 403
    assert client.get(f"{API}/cases", params={"status": "done"}, headers=auth("admin")).status_code == 422
