"""``/webhooks``: the secret shown once, rotation, the delivery log, redelivery, the test
ping, who sees what, and the URL and allow_private rules."""

from __future__ import annotations

from fastapi.testclient import TestClient

from protocol.alerts import AlertChange
from tests.support import query, wait_for
from tests.tracking_api.geo_support import API, World, auth
from tests.tracking_api.webhooks.receiver import Receiver
from tests.tracking_api.webhooks.support import DispatcherThread, open_alert, shipment, subscribe


def test_ping_alert_redelivery_rotation_and_the_log(client: TestClient, world: World, database_url: str,
                                                     api_url: str, receiver: Receiver) -> None:
    hook = subscribe(client, receiver.url, ["alert.opened"], description="single window")
    assert hook["secret"].startswith("whsec_")
    receiver.secret = hook["secret"]
    shown = client.get(f"{API}/webhooks/{hook['id']}", headers=auth("admin")).json()
    assert "secret" not in shown and all("secret" not in h for h in
                                         client.get(f"{API}/webhooks", headers=auth("admin")).json())
    sh = shipment(client, world)
    with DispatcherThread(api_url):
        ping = client.post(f"{API}/webhooks/{hook['id']}/test", headers=auth("operator")).json()
        alert_id = open_alert(database_url, sh)
        wait_for(lambda: len(receiver.delivered()) == 2, 10, "the ping and the alert")
        alert = next(r for r in receiver.delivered() if r.json["type"] == "alert.opened")
        redone = client.post(f"{API}/webhooks/{hook['id']}/deliveries/{alert.msg_id.removeprefix('msg_')}/redeliver",
                             headers=auth("operator"))
        assert redone.status_code == 202, redone.text
        wait_for(lambda: len(receiver.delivered()) == 3, 10, "the redelivery")
        rotated = client.post(f"{API}/webhooks/{hook['id']}/secret", headers=auth("admin")).json()
        assert rotated["secret"] != hook["secret"]
        receiver.secret = rotated["secret"]
        client.post(f"{API}/webhooks/{hook['id']}/test", headers=auth("admin"))
        wait_for(lambda: len(receiver.delivered()) == 4, 10, "a ping signed with the new secret")
    got = receiver.delivered()
    assert all(r.verified and r.independent for r in got)
    pinged = next(r for r in got if r.msg_id == ping["message_id"])
    assert pinged.json["type"] == "webhook.test" and pinged.json["data"] == {"webhook": hook["id"],
                                                                             "by": "test-operator"}
    again = [r for r in got if r.msg_id == alert.msg_id]
    assert len(again) == 2 and again[1].body == alert.body  # the same event, the same bytes
    # The alert event's data is exactly the one alert object with "event".
    assert set(alert.json) == {"type", "timestamp", "data"} and alert.json["timestamp"].endswith("Z")
    assert set(alert.json["data"]) == set(AlertChange.__struct_fields__)
    assert alert.json["data"]["id"] == alert_id and alert.json["data"]["event"] == "opened"
    assert alert.json["data"]["created_at"].endswith("Z")
    # The log, newest first, a page at a time.
    page = client.get(f"{API}/webhooks/{hook['id']}/deliveries", params={"limit": 2}, headers=auth("admin")).json()
    assert [d["type"] for d in page["items"]] == ["webhook.test", "alert.opened"] and page["next_cursor"]
    last = client.get(f"{API}/webhooks/{hook['id']}/deliveries", params={"cursor": page["next_cursor"]},
                      headers=auth("admin")).json()
    assert [d["message_id"] for d in last["items"]] == [ping["message_id"]] and last["next_cursor"] is None
    redelivered = page["items"][1]
    assert redelivered["state"] == "delivered" and redelivered["attempts"] == 2
    assert [a["status"] for a in redelivered["attempt_log"]] == [204, 204]
    assert all(a["latency_ms"] > 0 for a in redelivered["attempt_log"])
    actions = [a for (a,) in query(database_url, "SELECT action FROM audit_log WHERE object_type = 'webhook' "
                                                 "AND object_id = %s ORDER BY id", (str(hook["id"]),))]
    assert actions == ["webhook.subscribed", "webhook.redelivered", "webhook.secret_rotated"]


def test_integrators_manage_their_own_and_may_not_allow_private(client: TestClient, receiver: Receiver) -> None:
    mine = client.post(f"{API}/webhooks", json={"url": "https://192.88.99.9/mine", "event_types": ["alert.opened"]},
                       headers=auth("integrator", subject="sw-ke"))
    assert mine.status_code == 201, mine.text
    theirs = subscribe(client, receiver.url, ["shipment.arrived"])
    listed = client.get(f"{API}/webhooks", headers=auth("integrator", subject="sw-ke")).json()
    assert [h["id"] for h in listed] == [mine.json()["id"]]
    assert client.get(f"{API}/webhooks/{theirs['id']}", headers=auth("integrator", subject="sw-ke")).status_code == 404
    assert client.get(f"{API}/webhooks/{mine.json()['id']}", headers=auth("integrator", subject="sw-ug")
                      ).status_code == 404
    private = client.post(f"{API}/webhooks", json={"url": receiver.url, "event_types": ["alert.opened"],
                                                   "allow_private": True}, headers=auth("integrator"))
    assert private.status_code == 403 and "allow private" in private.json()["detail"]
    patched = client.patch(f"{API}/webhooks/{mine.json()['id']}", json={"allow_private": True},
                           headers=auth("integrator", subject="sw-ke"))
    assert patched.status_code == 403


def test_urls_are_checked_when_subscribing_and_changing(client: TestClient, receiver: Receiver) -> None:
    for url in ("https://127.0.0.1/x", "https://[::1]/x", "https://localhost/x", "https://2130706433/x",
                "http://192.88.99.9/x", "https://169.254.169.254/latest"):
        answer = client.post(f"{API}/webhooks", json={"url": url, "event_types": ["alert.opened"]},
                             headers=auth("operator"))
        assert answer.status_code == 422, url
        assert answer.json()["detail"][0]["loc"] == ["body", "url"]
    bad = client.post(f"{API}/webhooks", json={"url": "https://192.88.99.9/x", "event_types": ["alert.nope"],
                                               "colour": "red"}, headers=auth("operator"))
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "event_types", 0), ("body", "colour")}
    hook = client.post(f"{API}/webhooks", json={"url": "https://192.88.99.9/x", "event_types": ["alert.opened"]},
                       headers=auth("operator")).json()
    moved = client.patch(f"{API}/webhooks/{hook['id']}", json={"url": "https://10.0.0.8/x"}, headers=auth("admin"))
    assert moved.status_code == 422 and "non-public address (10.0.0.8)" in moved.json()["detail"][0]["msg"]
    # Allowed by an operator: private addresses and http (an internal receiver).
    allowed = client.patch(f"{API}/webhooks/{hook['id']}", json={"url": receiver.url, "allow_private": True},
                           headers=auth("operator"))
    assert allowed.status_code == 200 and allowed.json()["allow_private"]
    assert client.delete(f"{API}/webhooks/{hook['id']}", headers=auth("operator")).status_code == 200
    assert client.get(f"{API}/webhooks/{hook['id']}", headers=auth("operator")).status_code == 404
