"""Escalation end to end: a response time set through the API, the sweep in the API process
escalating an unacknowledged alert (level, log, audit, the 'escalated' event) and Web Push to the
region's supervisors and the assignee (not to other officers or other regions), through a real
push service on 127.0.0.1; acknowledging stops the clock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from ctt.config import DB_API
from tests.support import BROKER, as_role, execute, query, run_async, scalar, wait_for
from tests.tracking_api.case_support import CaseWorld, auth, case_world, new_alert
from tests.tracking_api.test_push import Browser, PushService
from tracking_api.escalation import LOCK_KEY, sweep

API = "/api/v1"
TIMES = f"{API}/escalation/response-times"
DEFAULTS = {"critical": 300, "high": 900, "medium": 3600, "low": 14400}



@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[TestClient]:
    """The API in-process, sweeping every 0.2 s, allowed to push to the local push service."""
    from tracking_api.main import app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_DATABASE_URL", as_role(database_url, DB_API))
        mp.setenv("CTT_BROKER_PORT", str(BROKER[1]))
        mp.setenv("CTT_PUSH_ALLOW_INSECURE_ENDPOINTS", "true")
        mp.setenv("CTT_ESCALATION_SWEEP_S", "0.2")
        with TestClient(app) as c:
            wait_for(lambda: c.get(f"{API}/readyz").status_code == 200, 10, "the stream to listen")
            yield c
            assert c.put(TIMES, json=DEFAULTS, headers=auth("admin")).status_code == 200


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    return case_world(database_url, "escal")


def subscribe(api: TestClient, service: PushService, headers: dict[str, str]) -> Browser:
    browser = Browser(service.endpoint())
    response = api.post(f"{API}/push/subscriptions", json=browser.subscription(), headers=headers)
    assert response.status_code == 201, response.text
    return browser


def events(browser: Browser, service: PushService, alert_id: int) -> list[str]:
    return [m["event"] for m in (browser.read(p) for p in service.to(browser.endpoint)) if m["id"] == alert_id]


def test_response_times_are_read_by_all_and_set_by_admins_audited(api: TestClient, database_url: str) -> None:
    assert api.get(TIMES, headers=auth("integrator")).json() == DEFAULTS
    assert api.put(TIMES, json=DEFAULTS, headers=auth("operator")).status_code == 403
    bad = api.put(TIMES, json={**DEFAULTS, "critical": 0}, headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "critical"]
    assert api.put(TIMES, json={"critical": 300}, headers=auth("admin")).status_code == 422
    changed = {**DEFAULTS, "low": 7200}
    assert api.put(TIMES, json=changed, headers=auth("admin", subject="adm-rt")).json() == changed
    assert api.get(TIMES, headers=auth("officer", "anywhere")).json() == changed
    (detail,) = query(database_url, "SELECT detail FROM audit_log WHERE action = "
                                    "'escalation.response_times_changed' AND actor = 'adm-rt'")[0]
    assert detail == {"before": DEFAULTS, "after": changed}


def test_an_unanswered_alert_escalates_to_the_regions_supervisors_and_its_assignee(
        api: TestClient, push_service: PushService, w: CaseWorld, database_url: str) -> None:
    supervisor = subscribe(api, push_service, auth("supervisor", w.region_a, subject="sup-a"))
    assignee = subscribe(api, push_service, auth("officer", w.region_a, subject="off-assigned"))
    bystander = subscribe(api, push_service, auth("officer", w.region_a, subject="off-other"))
    elsewhere = subscribe(api, push_service, auth("supervisor", w.region_b, subject="sup-b"))
    assert api.put(TIMES, json={**DEFAULTS, "critical": 1}, headers=auth("admin")).status_code == 200

    alert_id = new_alert(database_url, w, w.s_a, type_="seal_breach", severity="critical")
    answered = new_alert(database_url, w, w.s_a, type_="seal_breach", severity="critical")
    slower = new_alert(database_url, w, w.s_a, severity="high")  # 900 s: not yet
    execute(database_url, "UPDATE alerts SET assignee = 'off-assigned' WHERE id = %s", (alert_id,))
    assert api.post(f"{API}/alerts/{answered}/ack", headers=auth("officer", w.region_a)).status_code == 200

    wait_for(lambda: "escalated" in events(supervisor, push_service, alert_id), 10, "the supervisor's push")
    assert api.post(f"{API}/alerts/{alert_id}/ack", headers=auth("supervisor", w.region_a)).status_code == 200
    wait_for(lambda: "escalated" in events(assignee, push_service, alert_id), 5, "the assignee's push")
    time.sleep(1.0)  # a push to anyone else, or a second escalation, would have come by now
    assert events(supervisor, push_service, alert_id) == ["opened", "escalated"]
    assert events(assignee, push_service, alert_id) == ["opened", "escalated"]
    assert events(bystander, push_service, alert_id) == ["opened"]
    assert events(elsewhere, push_service, alert_id) == []
    message = supervisor.read(push_service.to(supervisor.endpoint)[-1])
    assert message["title"] == "Escalated: critical alert: Seal breach" and message["escalation_level"] == 1

    body = api.get(f"{API}/alerts/{alert_id}", headers=auth("admin")).json()
    assert body["escalation_level"] == 1 and body["escalated_at"] is not None
    event_row = scalar(database_url, "SELECT id FROM alert_events WHERE alert_id = %s AND event = 'escalated'",
                       (alert_id,))
    delivered = scalar(database_url, "SELECT count(*) FROM push_deliveries WHERE alert_event_id = %s", (event_row,))
    assert query(database_url, "SELECT level, notified FROM escalations WHERE alert_id = %s",
                 (alert_id,)) == [(1, delivered)]
    assert delivered >= 2  # the supervisor and the assignee (and any admin's or operator's browser)
    assert query(database_url, "SELECT actor, role, detail->>'level' FROM audit_log WHERE action = 'alert.escalated'"
                               " AND object_id = %s", (str(alert_id),)) == [("escalation-sweep", "system", "1")]
    # Acknowledged before its time: never escalated; a high alert's 900 s have not passed.
    assert query(database_url, "SELECT id, escalation_level FROM alerts WHERE id = ANY(%s) ORDER BY id",
                 ([answered, slower],)) == [(answered, 0), (slower, 0)]


def test_the_sweep_runs_in_one_process_at_a_time(database_url: str) -> None:
    async def one_round() -> int | None:
        async with AsyncConnectionPool(as_role(database_url, DB_API), min_size=1, open=False) as pool:
            return await sweep(pool)

    with psycopg.connect(database_url) as holder:  # another process in the middle of its round
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        assert run_async(one_round()) is None
    assert run_async(one_round()) is not None
