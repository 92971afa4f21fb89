"""Cases: a confirmed outcome opens one on the shipment (or joins its open case) with the
evidence snapshot, each item hashed; the cases API; read-only after closing, in the API (409)
and in the database (the trigger refuses even the API's role). Real database, SQL fixtures."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctt.audit import verify
from tests.support import execute, query
from tests.tracking_api.case_support import CaseWorld, auth, case_world, new_alert

API = "/api/v1"
KINDS = ["track", "timeline", "seal_events", "alerts", "audit"]


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
    assert (case["shipment"], case["status"], case["opened_by"], case["alerts"]) == (w.s_a, "open", "off-a", 1)

    body = client.get(f"{API}/cases/{case['id']}", headers=officer).json()
    assert [a["id"] for a in body["alerts"]] == [alert_id]
    assert [e["kind"] for e in body["evidence"]] == KINDS  # no report: tracking_api.report is not installed
    contents = {}
    for item in body["evidence"]:
        response = client.get(f"{API}/cases/{case['id']}/evidence/{item['id']}", headers=officer)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == item["sha256"] == response.headers["x-content-sha256"]
        assert response.headers["content-type"].startswith(item["media_type"])
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
