"""Idempotency keys attacked: the same key twice does the work once (one audit entry) and
replays the first response byte for byte; the same key with another request is a 422 naming
the header; another caller's equal key is unrelated; two requests with one key at once do the
work once; an expired key is a new key, and the sweep deletes it. Real database."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support import as_role, execute, query, run_async, scalar
from tests.tracking_api.case_support import CaseWorld, auth, case_world, new_alert
from tracking_api.escalation import sweep

API = "/api/v1"


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    return case_world(database_url, "idem")


def audits(database_url: str, action: str, object_id: int) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM audit_log WHERE action = %s AND object_id = %s",
                      (action, str(object_id))))


def key(headers: dict[str, str], value: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": value}


def test_the_same_key_twice_acts_once_and_replays_the_first_answer(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    officer = key(auth("officer", w.region_a, subject="idem-1"), "ack-0001")
    alert_id = new_alert(database_url, w, w.s_a)
    first = client.post(f"{API}/alerts/{alert_id}/ack", json={"note": "on my way"}, headers=officer)
    again = client.post(f"{API}/alerts/{alert_id}/ack", json={"note": "on my way"}, headers=officer)
    assert first.status_code == again.status_code == 200, again.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert audits(database_url, "alert.acknowledged", alert_id) == 1

    # Resolve, assign and case entries too (a confirmed outcome opens a case: one, not two).
    body = {"note": "seal cut", "outcome": "confirmed_irregularity"}
    answers = [client.post(f"{API}/alerts/{alert_id}/resolve", json=body, headers=key(officer, "res-1"))
               for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200] and answers[0].content == answers[1].content
    assert audits(database_url, "alert.resolved", alert_id) == 1
    case_id = int(scalar(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s", (alert_id,)))
    entries = [client.post(f"{API}/cases/{case_id}/entries", json={"text": "photographed"},
                           headers=key(officer, "entry-1")) for _ in range(3)]
    assert [e.status_code for e in entries] == [201] * 3 and len({e.content for e in entries}) == 1
    assert scalar(database_url, "SELECT count(*) FROM case_entries WHERE case_id = %s", (case_id,)) == 1
    other = new_alert(database_url, w, w.s_a)
    assigned = [client.post(f"{API}/alerts/{other}/assign", json={"assignee": "idem-1", "unit": None},
                            headers=key(officer, "assign-1")) for _ in range(2)]
    assert [a.status_code for a in assigned] == [200, 200] and assigned[0].content == assigned[1].content
    assert audits(database_url, "alert.assigned", other) == 1


def test_the_same_key_for_another_request_is_422_naming_the_header(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    officer = key(auth("officer", w.region_a, subject="idem-2"), "k-2")
    alert_id = new_alert(database_url, w, w.s_a)
    assert client.post(f"{API}/alerts/{alert_id}/ack", json={"note": "a"}, headers=officer).status_code == 200
    for path, body in ((f"/alerts/{alert_id}/ack", {"note": "b"}),  # other body
                       (f"/alerts/{new_alert(database_url, w, w.s_a)}/ack", {"note": "a"})):  # other path
        response = client.post(f"{API}{path}", json=body, headers=officer)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
        assert "k-2" in response.json()["detail"][0]["msg"]
    assert audits(database_url, "alert.acknowledged", alert_id) == 1


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "semi;colon", "é"])
def test_a_malformed_key_is_422_naming_the_header(client: TestClient, w: CaseWorld, database_url: str,
                                                  bad: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    response = client.post(f"{API}/alerts/{alert_id}/ack",
                           headers={**{k.encode(): v.encode() for k, v in auth("operator").items()},
                                    b"Idempotency-Key": bad.encode()})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert audits(database_url, "alert.acknowledged", alert_id) == 0


def test_another_callers_equal_key_is_unrelated(client: TestClient, w: CaseWorld, database_url: str) -> None:
    first, second = new_alert(database_url, w, w.s_a), new_alert(database_url, w, w.s_a)
    for subject, alert_id in (("idem-3a", first), ("idem-3b", second)):
        response = client.post(f"{API}/alerts/{alert_id}/ack",
                               headers=key(auth("officer", w.region_a, subject=subject), "shared-key"))
        assert response.status_code == 200 and "idempotent-replayed" not in response.headers
        assert audits(database_url, "alert.acknowledged", alert_id) == 1


def test_a_refusal_is_not_stored_and_a_conflict_names_who_and_when(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    resolved = client.post(f"{API}/alerts/{alert_id}/resolve", json={"note": "x", "outcome": "false_alarm"},
                           headers=auth("operator", subject="op-who"))
    assert resolved.status_code == 200
    officer = key(auth("officer", w.region_a, subject="idem-4"), "late-resolve")
    body = {"note": "y", "outcome": "other"}
    for _ in range(2):  # each answer is of its moment (a 409 is not replayed from storage)
        conflict = client.post(f"{API}/alerts/{alert_id}/resolve", json=body, headers=officer)
        assert conflict.status_code == 409 and "idempotent-replayed" not in conflict.headers
        assert f"resolved by op-who at {resolved.json()['resolved_at'][:19]}" in conflict.json()["detail"]
    assert scalar(database_url, "SELECT count(*) FROM idempotency_keys WHERE key = 'late-resolve'") == 0


def test_two_requests_with_one_key_at_once_act_once(client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    officer = key(auth("officer", w.region_a, subject="idem-5"), "race-1")
    answers: list[Any] = []

    def ack() -> None:
        answers.append(client.post(f"{API}/alerts/{alert_id}/ack", json={"note": "race"}, headers=officer))

    # The alert's row held: the first request waits on it holding the key's lock; the second
    # waits on the key. Released, one acknowledges and the other replays.
    with psycopg.connect(database_url) as hold:  # the administrator sees every session's waits
        hold.execute("SELECT 1 FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
        threads = [threading.Thread(target=ack) for _ in range(2)]
        for t in threads:
            t.start()
        waiting = 0
        for _ in range(100):
            waiting = int(hold.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database()").fetchone()[0])  # type: ignore[index]
            if waiting >= 2:
                break
            threading.Event().wait(0.05)
        assert waiting >= 2, "both requests should be waiting"
        hold.rollback()
    for t in threads:
        t.join(10)
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert answers[0].content == answers[1].content
    assert sorted(a.headers.get("idempotent-replayed", "no") for a in answers) == ["no", "true"]
    assert audits(database_url, "alert.acknowledged", alert_id) == 1


def test_an_expired_key_is_a_new_key_and_the_sweep_deletes_it(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    officer = key(auth("officer", w.region_a, subject="idem-6"), "old-key")
    first, second = new_alert(database_url, w, w.s_a), new_alert(database_url, w, w.s_a)
    assert client.post(f"{API}/alerts/{first}/ack", headers=officer).status_code == 200
    expires = query(database_url, "SELECT expires_at - created_at FROM idempotency_keys WHERE subject = 'idem-6'")
    assert expires[0][0].total_seconds() == 7 * 86_400
    execute(database_url, "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
                          "WHERE subject = 'idem-6'")
    again = client.post(f"{API}/alerts/{second}/ack", headers=officer)  # another request: not a 422 any more
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert audits(database_url, "alert.acknowledged", second) == 1

    execute(database_url, "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
                          "WHERE subject = 'idem-6'")
    _sweep(database_url)
    assert scalar(database_url, "SELECT count(*) FROM idempotency_keys WHERE subject = 'idem-6'") == 0


def _sweep(database_url: str) -> None:

    from psycopg_pool import AsyncConnectionPool

    from ctt.config import DB_API

    async def once() -> Any:
        async with AsyncConnectionPool(as_role(database_url, DB_API), min_size=1, max_size=1) as pool:
            return await sweep(pool)

    assert run_async(once()) is not None
