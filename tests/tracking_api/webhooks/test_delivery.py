"""Delivery against a local receiver: the outbox in the change's transaction, signatures,
order per shipment under random failures, a receiver down for an hour, several dispatching
processes, disabling after persistent failure, the retry window."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from ctt.config import DB_INGEST
from tests.support import ApiServer, as_role, execute, query, scalar, wait_for
from tests.tracking_api.geo_support import API, World, auth
from tests.tracking_api.webhooks.receiver import Receiver
from tests.tracking_api.webhooks.support import DispatcherThread, open_alert, shipment, states, subscribe

_ALERT = ("INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity) "
          "VALUES ('unscheduled_stop', %s, %s, now(), now(), 'high')")


def _outbox(database_url: str, shipment_id: int) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM webhook_outbox WHERE ordering_key = %s", (shipment_id,)))


def test_the_outbox_row_is_written_in_the_change_transaction(client: TestClient, world: World, database_url: str,
                                                              receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened"])
    sh = shipment(client, world)
    # As ingest (which has no grant on the webhook tables: the triggers write them).
    with psycopg.connect(as_role(database_url, DB_INGEST)) as conn:
        conn.execute(_ALERT, (sh["id"], sh["tracker_id"]))
        conn.rollback()
    assert _outbox(database_url, sh["id"]) == 0
    assert states(database_url, hook["id"]) == {}
    with psycopg.connect(as_role(database_url, DB_INGEST)) as conn:
        conn.execute(_ALERT, (sh["id"], sh["tracker_id"]))
    assert _outbox(database_url, sh["id"]) == 1
    assert states(database_url, hook["id"]) == {"pending": 1}
    # Numbered at commit; a subscription made afterwards never receives the past.
    assert scalar(database_url, "SELECT seq IS NOT NULL FROM webhook_outbox WHERE ordering_key = %s", (sh["id"],))
    later = subscribe(client, receiver.url, ["alert.opened"])
    assert states(database_url, later["id"]) == {}


def test_each_shipment_in_order_at_least_once_under_random_failures(
        client: TestClient, world: World, database_url: str, api_url: str) -> None:
    receiver = Receiver(fail_rate=0.3)
    try:
        hook = subscribe(client, receiver.url, ["alert.opened"])
        receiver.secret = hook["secret"]
        ships = [shipment(client, world) for _ in range(3)]
        expected: dict[int, list[int]] = {sh["id"]: [] for sh in ships}
        with DispatcherThread(api_url), DispatcherThread(api_url):  # two processes' worth of dispatchers
            for _ in range(5):
                for sh in ships:
                    expected[sh["id"]].append(open_alert(database_url, sh))
            wait_for(lambda: states(database_url, hook["id"]) == {"delivered": 15}, 30, "all 15 delivered")
        delivered = receiver.delivered()
        assert len({r.msg_id for r in delivered}) == len(delivered) == 15
        for sid, alert_ids in expected.items():
            assert [r.json["data"]["id"] for r in delivered if r.json["data"]["shipment"] == sid] == alert_ids
        failed = [r for r in receiver.received if r.answered == 500]
        assert failed and {r.msg_id for r in failed} <= {r.msg_id for r in delivered}  # retried: same webhook-id
        assert all(r.verified and r.independent for r in receiver.received)
        assert all(abs(int(r.timestamp) - r.at) < 5 for r in receiver.received)
    finally:
        receiver.close()
        execute(database_url, "DELETE FROM webhook_subscriptions")


def test_a_receiver_down_for_an_hour_gets_everything_once_back(
        client: TestClient, world: World, database_url: str, api_url: str, receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened", "alert.changed"])
    receiver.secret = hook["secret"]
    receiver.status = 503
    ships = [shipment(client, world) for _ in range(2)]
    with DispatcherThread(api_url):
        opened = {sh["id"]: [open_alert(database_url, sh) for _ in range(3)] for sh in ships}
        wait_for(lambda: len(receiver.received) >= 6, 10, "attempts while down")
        # An hour of failed attempts: the retry window, the failure run and the log moved back.
        execute(database_url, "UPDATE webhook_deliveries SET since = since - interval '1 hour' "
                              "WHERE subscription_id = %s", (hook["id"],))
        execute(database_url, "UPDATE webhook_subscriptions SET failing_since = failing_since - interval '1 hour' "
                              "WHERE id = %s", (hook["id"],))
        receiver.status = 204
        wait_for(lambda: states(database_url, hook["id"]) == {"delivered": 6}, 20, "all 6 delivered")
    delivered = receiver.delivered()
    assert len(delivered) == 6 and all(r.verified and r.independent for r in delivered)
    for sid, ids in opened.items():
        assert [r.json["data"]["id"] for r in delivered if r.json["data"]["shipment"] == sid] == ids
    after = client.get(f"{API}/webhooks/{hook['id']}", headers=auth("admin")).json()
    assert after["enabled"] and after["failing_since"] is None
    log = client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=auth("admin")).json()["items"]
    assert any(503 in [a["status"] for a in d["attempt_log"]] for d in log)


def test_two_api_processes_deliver_each_event_exactly_once(
        client: TestClient, world: World, database_url: str, receiver: Receiver, tmp_path: Path) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened"])
    receiver.secret = hook["secret"]
    env = {"CTT_WEBHOOKS_DISPATCH": "1", "CTT_WEBHOOK_ALLOW_HTTP": "1", "CTT_WEBHOOK_POLL_S": "0.1"}
    servers = [ApiServer(database_url, tmp_path / f"api{i}.log", **env) for i in range(2)]
    try:
        for server in servers:
            server.start()
        ships = [shipment(client, world) for _ in range(4)]
        for _ in range(5):
            for sh in ships:
                open_alert(database_url, sh)
        wait_for(lambda: states(database_url, hook["id"]) == {"delivered": 20}, 30, "all 20 delivered")
        time.sleep(0.3)  # a duplicate would arrive now
    finally:
        for server in servers:
            server.stop()
    ids = [r.msg_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 20
    assert all(r.answered == 204 and r.verified and r.independent for r in receiver.received)


def test_persistent_failure_disables_the_subscription(
        client: TestClient, world: World, database_url: str, api_url: str, receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened"])
    gone_receiver = Receiver()
    gone_receiver.status = 410
    try:
        gone = subscribe(client, gone_receiver.url, ["alert.opened"])
        receiver.status = 500
        sh = shipment(client, world)
        with DispatcherThread(api_url, webhook_disable_after_s=0.5):
            open_alert(database_url, sh)
            wait_for(lambda: not client.get(f"{API}/webhooks/{hook['id']}", headers=auth("admin")).json()["enabled"],
                     10, "the subscription disabled")
        gone_now = client.get(f"{API}/webhooks/{gone['id']}", headers=auth("admin")).json()
        assert not gone_now["enabled"] and gone_now["disabled_reason"] == "the receiver answered 410 Gone"
        assert len(gone_receiver.received) == 1
    finally:
        gone_receiver.close()
    body = client.get(f"{API}/webhooks/{hook['id']}", headers=auth("admin")).json()
    assert body["disabled_reason"].startswith("every delivery failed since") and "HTTP 500" in body["disabled_reason"]
    audited = query(database_url, "SELECT actor, role FROM audit_log WHERE action = 'webhook.disabled' "
                                  "AND object_id = %s", (str(hook["id"]),))
    assert audited == [("webhook-dispatcher", "system")]
    # Disabled: the events of that time are not its.
    open_alert(database_url, sh)
    assert sum(states(database_url, hook["id"]).values()) == 1
    enabled = client.patch(f"{API}/webhooks/{hook['id']}", json={"enabled": True}, headers=auth("operator")).json()
    assert enabled["enabled"] and enabled["disabled_reason"] is None and enabled["failing_since"] is None


def test_past_the_retry_window_a_delivery_is_dead_and_the_next_goes(
        client: TestClient, world: World, database_url: str, api_url: str, receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened"])
    receiver.secret = hook["secret"]
    receiver.status = 500
    sh = shipment(client, world)
    with DispatcherThread(api_url, webhook_retry_for_s=0.3):
        first = open_alert(database_url, sh)
        receiver.rule = lambda body: 500 if body["data"]["id"] == first else 204
        second = open_alert(database_url, sh)
        wait_for(lambda: states(database_url, hook["id"]) == {"dead": 1, "delivered": 1}, 10, "one dead, one delivered")
    tries = {i: [r.at for r in receiver.received if r.json["data"]["id"] == i] for i in (first, second)}
    assert len(tries[first]) >= 2 and len(tries[second]) == 1
    assert max(tries[first]) < min(tries[second])  # the second waited behind the first until it was dead


@pytest.mark.parametrize("kind", ["low_battery"])
def test_battery_and_shipment_events(client: TestClient, world: World, database_url: str, api_url: str,
                                     receiver: Receiver, kind: str) -> None:
    types = ["device.battery_low", "shipment.departed", "shipment.border_crossed", "shipment.released"]
    hook = subscribe(client, receiver.url, types)
    receiver.secret = hook["secret"]
    sh = shipment(client, world)
    with DispatcherThread(api_url):
        open_alert(database_url, sh, kind)
        assert client.post(f"{API}/shipments/{sh['id']}/depart", headers=auth("operator")).status_code == 200
        crossing = ("INSERT INTO shipment_events (shipment_id, kind, office_code, at, detail) "
                    "VALUES (%s, 'border_crossed', NULL, '2026-12-01T10:00:00Z', %s)")
        detail = '{"from": "UGA", "to": "KEN"}'
        execute(as_role(database_url, DB_INGEST), crossing, (sh["id"], detail))
        # A replay deletes and re-inserts the same milestone: the same event, not a second one.
        execute(database_url, "DELETE FROM shipment_events WHERE shipment_id = %s AND kind = 'border_crossed'",
                (sh["id"],))
        execute(as_role(database_url, DB_INGEST), crossing, (sh["id"], detail))
        assert client.post(f"{API}/shipments/{sh['id']}/release", headers=auth("operator")).status_code == 200
        wait_for(lambda: len(receiver.delivered()) == 4, 10, "four events")
    got = {r.json["type"]: r.json for r in receiver.delivered()}
    assert sorted(got) == sorted(types)
    assert got["device.battery_low"]["data"]["type"] == kind and got["device.battery_low"]["data"]["event"] == "opened"
    departed = got["shipment.departed"]["data"]
    assert departed | {"at": None, "country": None} == {
        "shipment": sh["id"], "reference": sh["reference"], "kind": "departed", "office": world.departure,
        "country": None, "at": None, "detail": {"source": "status", "status": "in_transit"}}
    assert departed["at"].endswith("Z")
    assert got["shipment.border_crossed"]["data"]["detail"] == {"from": "UGA", "to": "KEN"}
    assert got["shipment.released"]["data"]["office"] == world.destination


def test_a_case_opened_by_a_confirmed_outcome_and_closed(client: TestClient, world: World, database_url: str,
                                                         api_url: str, receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["case.opened", "case.closed"])
    receiver.secret = hook["secret"]
    sh = shipment(client, world)
    alert_id = open_alert(database_url, sh)
    with DispatcherThread(api_url):
        resolved = client.post(f"{API}/alerts/{alert_id}/resolve", headers=auth("operator"),
                               json={"note": "undeclared cigarettes", "outcome": "goods_seized"})
        assert resolved.status_code == 200, resolved.text
        (case_id,) = [int(r[0]) for r in query(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s",
                                               (alert_id,))]
        closed = client.post(f"{API}/cases/{case_id}/close", headers=auth("operator"),
                             json={"outcome": "goods_seized", "summary": "goods seized, file sent to prosecution"})
        assert closed.status_code == 200, closed.text
        wait_for(lambda: len(receiver.delivered()) == 2, 10, "two case events")
    opened, done = (r.json for r in receiver.delivered())
    assert opened["type"] == "case.opened" and done["type"] == "case.closed"
    # Opened: the case's alerts are in it (the trigger runs at commit, after they were added).
    assert opened["data"] | {"opened_at": None} == {
        "case": case_id, "shipment": sh["id"], "reference": sh["reference"], "status": "open", "opened_at": None,
        "opened_by": opened["data"]["opened_by"], "closed_at": None, "closed_by": None, "outcome": None,
        "summary": None, "alerts": [alert_id]}
    assert done["data"]["status"] == "closed" and done["data"]["outcome"] == "goods_seized"
    assert done["data"]["closed_at"].endswith("Z")
