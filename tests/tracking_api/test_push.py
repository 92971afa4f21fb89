"""Web Push end to end: the API pushes alert openings to a real push service on
127.0.0.1, which checks the VAPID signature as push services do; the test then
decrypts each push with the subscriber's private key, as the browser would."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from pydantic import ValidationError

from protocol.alerts import FIELDS
from tests.support import BROKER, ApiServer, execute, query, scalar, wait_for
from tests.tracking_api.geo_support import API, World, auth, created, make_world, square, unique
from tracking_api import deps
from tracking_api.config import DEFAULT_PUSH_HOSTS, ApiSettings
from tracking_api.main import app
from tracking_api.push import PushNotifier, b64url, endpoint_problem, load_or_create_key, public_key
from tracking_api.schemas.push import b64url_bytes

SUBJECT = "mailto:control-room@customs.example"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """A push service on 127.0.0.1: records every POST and answers 201, or the status set for its path."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.received.append(Received(self.path, headers, body))
                self.send_response(service.answers.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def endpoint(self, answer: int = 201) -> str:
        """A new subscription's endpoint, answered with ``answer``."""
        path = f"/wpush/{unique()}"
        self.answers[path] = answer
        return self.origin + path

    def to(self, endpoint: str) -> list[Received]:
        path = urlsplit(endpoint).path
        return [r for r in list(self.received) if r.path == path]


@dataclass
class Browser:
    """What a browser keeps of a push subscription: its endpoint, key pair and auth secret."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    secret: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``."""
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.secret)}}

    def read(self, push: Received) -> dict[str, Any]:
        plain = http_ece.decrypt(push.body, private_key=self.key, auth_secret=self.secret, version="aes128gcm")
        message: dict[str, Any] = json.loads(plain)
        return message


def check_vapid(push: Received, server_key: str, audience: str) -> None:
    """What a push service checks before it accepts a push (RFC 8292)."""
    scheme, _, params = push.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.split("=", 1) for p in params.split(","))
    assert parts["k"] == server_key  # the key the browser subscribed with
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_bytes(parts["k"], "k"))
    claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=audience,
                        options={"require": ["exp", "aud", "sub"]})  # checks the signature and exp
    assert claims["sub"] == SUBJECT
    assert claims["exp"] <= time.time() + 24 * 3600  # RFC 8292: at most 24 hours ahead


@dataclass
class Place:
    """Two offices, a route and a region around them."""

    world: World
    region: str

    def shipment(self, c: TestClient) -> dict[str, Any]:
        return created(c.post(f"{API}/shipments", json=self.world.shipment(), headers=auth("operator")))

    def officer(self) -> dict[str, str]:
        return auth("officer", self.region, f"officer-{self.region}")


def place(c: TestClient) -> Place:
    world = make_world(c)
    region = unique("R")
    created(c.post(f"{API}/regions", json={"code": region, "name": "push", "geometry": square(
        world.lon + 0.5, world.lat, 2.0)}, headers=auth("admin")))
    return Place(world, region)


def open_alert(database_url: str, shipment: dict[str, Any], kind: str = "seal_breach",
               severity: str = "critical") -> int:
    return int(scalar(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat,"
                                    " lon, severity) VALUES (%s, %s, %s, now(), now(), -1.2, 36.8, %s) RETURNING id",
                      (kind, shipment["id"], shipment["tracker_id"], severity)))



@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[TestClient]:
    """The API in-process, allowed to push to the local (http) push service."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_DATABASE_URL", database_url)
        mp.setenv("CTT_BROKER_PORT", str(BROKER[1]))
        mp.setenv("CTT_PUSH_ALLOW_INSECURE_ENDPOINTS", "true")
        with TestClient(app) as c:
            # Openings are pushed from the stream's listener: it must listen before any alert opens.
            wait_for(lambda: c.get(f"{API}/readyz").status_code == 200, 10, "the stream to listen")
            yield c


def subscribe(c: TestClient, browser: Browser, headers: dict[str, str]) -> dict[str, Any]:
    return created(c.post(f"{API}/push/subscriptions", json=browser.subscription(), headers=headers))


def test_an_opening_is_pushed_once_to_its_regions_officers_and_the_control_room(
        api: TestClient, push_service: PushService, database_url: str) -> None:
    here, elsewhere = place(api), place(api)
    server_key = api.get(f"{API}/push/vapid-public-key", headers=here.officer()).json()["public_key"]
    mine, theirs, control = (Browser(push_service.endpoint()) for _ in range(3))
    subscribed = subscribe(api, mine, here.officer())
    assert subscribed["region"] == here.region
    subscribe(api, theirs, elsewhere.officer())
    assert subscribe(api, control, auth("operator", subject=unique("operator-")))["region"] is None
    shipment = here.shipment(api)

    alert_id = open_alert(database_url, shipment)
    (push,) = wait_for(lambda: push_service.to(mine.endpoint), 10, "the push to the region's officer")
    check_vapid(push, server_key, push_service.origin)
    assert (push.headers["content-encoding"], push.headers["ttl"], push.headers["urgency"]) == ("aes128gcm", "3600",
                                                                                                 "high")
    message = mine.read(push)
    assert (message["id"], message["type"], message["reference"], message["device"]) == (
        alert_id, "seal_breach", shipment["reference"], shipment["tracker_id"])
    assert message["url"] == f"/officer/#alert-{alert_id}" and shipment["reference"] in message["body"]
    assert message["severity"] == "critical" and message["started_at"].endswith("Z")
    # The one alert object and its change, plus what the service worker shows.
    assert set(message) == {*FIELDS, "event", "title", "body", "url", "tag", "language"}
    assert message["event"] == "opened" and message["language"] == "en"

    # Later changes of the alert push nothing; a second opening, once it has
    # arrived, shows they have been handled (the listener takes events in order).
    assert api.post(f"{API}/alerts/{alert_id}/ack", json={"note": "on it"}, headers=here.officer()).status_code == 200
    execute(database_url, "UPDATE alerts SET lat = lat + 0.001, updated_at = now() WHERE id = %s", (alert_id,))
    second = open_alert(database_url, here.shipment(api), "signal_lost", "low")
    wait_for(lambda: len(push_service.to(mine.endpoint)) == 2, 10, "the second opening's push")
    time.sleep(1.0)  # a duplicate, or a push to the other region, would have come by now
    pushes = push_service.to(mine.endpoint)
    assert [mine.read(p)["id"] for p in pushes] == [alert_id, second]
    assert pushes[1].headers["urgency"] == "normal"
    # The control room hears of every region (of other tests' openings too, if any happen meanwhile).
    heard = [control.read(p)["id"] for p in push_service.to(control.endpoint)]
    assert heard.count(alert_id) == 1 and heard.count(second) == 1
    assert push_service.to(theirs.endpoint) == []
    wait_for(lambda: query(database_url, "SELECT status FROM push_deliveries WHERE subscription_id = %s",
                           (subscribed["id"],)) == [(201,), (201,)], 5, "both deliveries recorded")
    assert scalar(database_url, "SELECT last_sent_at IS NOT NULL AND failures = 0 FROM push_subscriptions"
                                " WHERE id = %s", (subscribed["id"],))
    # The control room's subscription hears of every region: not one to leave behind.
    assert api.delete(f"{API}/push/subscriptions", params={"endpoint": control.endpoint},
                      headers=auth("operator", subject=scalar(database_url, "SELECT subject FROM push_subscriptions"
                                                                            " WHERE endpoint = %s",
                                                              (control.endpoint,)))).status_code == 200


def test_with_two_api_processes_each_opening_is_pushed_once(api: TestClient, push_service: PushService,
                                                            database_url: str, tmp_path: Any) -> None:
    # Both hear every opening (this one in-process, a uvicorn process beside it); each claims before sending.
    other = ApiServer(database_url, tmp_path / "api.log", CTT_PUSH_ALLOW_INSECURE_ENDPOINTS="true").start()
    try:
        here = place(api)
        browser = Browser(push_service.endpoint())
        subscribe(api, browser, here.officer())
        opened = [open_alert(database_url, here.shipment(api)) for _ in range(10)]
        wait_for(lambda: len(push_service.to(browser.endpoint)) >= len(opened), 15, "a push per opening")
        time.sleep(1.0)  # a second push of any opening would have come by now
    finally:
        other.stop()
    assert sorted(browser.read(p)["id"] for p in push_service.to(browser.endpoint)) == opened


def test_a_gone_subscription_is_deleted_and_a_refused_push_counted(api: TestClient, push_service: PushService,
                                                                   database_url: str) -> None:
    here = place(api)
    gone, refusing = Browser(push_service.endpoint(410)), Browser(push_service.endpoint(500))
    gone_id = subscribe(api, gone, here.officer())["id"]
    refusing_id = subscribe(api, refusing, here.officer())["id"]
    open_alert(database_url, here.shipment(api))
    wait_for(lambda: not query(database_url, "SELECT 1 FROM push_subscriptions WHERE id = %s", (gone_id,)), 10,
             "the gone subscription to be deleted")
    wait_for(lambda: scalar(database_url, "SELECT failures FROM push_subscriptions WHERE id = %s",
                            (refusing_id,)) == 1, 10, "the refused push to be counted")
    assert len(push_service.to(gone.endpoint)) == 1 and len(push_service.to(refusing.endpoint)) == 1
    assert query(database_url, "SELECT status FROM push_deliveries WHERE subscription_id = %s",
                 (refusing_id,)) == [(500,)]
    metrics = api.get("/metrics").text
    assert 'ctt_api_push_total{outcome="gone"}' in metrics and 'ctt_api_push_total{outcome="rejected"}' in metrics


def test_an_http_endpoint_is_refused_with_the_default_settings(api: TestClient, push_service: PushService) -> None:
    assert ApiSettings.model_fields["push_allow_insecure_endpoints"].default is False
    app.dependency_overrides[deps.settings] = lambda: ApiSettings(push_allow_insecure_endpoints=False)
    try:
        response = api.post(f"{API}/push/subscriptions", json=Browser(push_service.endpoint()).subscription(),
                            headers=auth("operator"))
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "endpoint"] and "https://" in issue["msg"]


def _with(field_: str, value: Any) -> dict[str, Any]:
    body = Browser("https://push.example.test/wpush/x").subscription()
    if field_ in ("p256dh", "auth"):
        body["keys"][field_] = value
    else:
        body[field_] = value
    return body


@pytest.mark.parametrize(("body", "loc", "says"), [
    (_with("p256dh", b64url(b"\x04" + bytes(32))), ["body", "keys", "p256dh"], "33 bytes"),
    (_with("p256dh", b64url(b"\x04" + bytes(64))), ["body", "keys", "p256dh"], "not a point"),
    (_with("p256dh", "not base64url!"), ["body", "keys", "p256dh"], "base64url"),
    (_with("auth", b64url(bytes(15))), ["body", "keys", "auth"], "15 bytes"),
    (_with("endpoint", "https://"), ["body", "endpoint"], "no host"),
    (_with("endpoint", "https://push.example.test:x/"), ["body", "endpoint"], "not a URL"),
    (_with("topic", "alerts"), ["body", "topic"], "Extra inputs"),
])
def test_a_subscription_that_is_not_a_browsers_is_refused_naming_the_field(
        api: TestClient, body: dict[str, Any], loc: list[str], says: str) -> None:
    response = api.post(f"{API}/push/subscriptions", json=body, headers=auth("admin"))
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == loc and says in issue["msg"], issue


def test_unsubscribing_takes_only_the_callers_own_and_is_audited(api: TestClient, push_service: PushService,
                                                                 database_url: str) -> None:
    here = place(api)
    browser = Browser(push_service.endpoint())
    sub_id = subscribe(api, browser, here.officer())["id"]
    url, params = f"{API}/push/subscriptions", {"endpoint": browser.endpoint}
    assert api.delete(url, params=params, headers=auth("officer", here.region, "someone-else")).status_code == 404
    assert api.delete(url, params=params, headers=here.officer()).json() == {"id": sub_id, "region": here.region,
                                                                             "language": "en"}
    assert api.delete(url, params=params, headers=here.officer()).status_code == 404
    actions = query(database_url, "SELECT action, detail->>'push_service' FROM audit_log WHERE object_type ="
                                  " 'push_subscription' AND object_id = %s ORDER BY id", (str(sub_id),))
    assert actions == [("push.subscribed", push_service.origin), ("push.unsubscribed", push_service.origin)]


def test_subscribing_again_from_the_same_browser_replaces_owner_and_keys(
        api: TestClient, push_service: PushService, database_url: str) -> None:
    first, elsewhere = place(api), place(api)
    browser = Browser(push_service.endpoint())
    sub_id = subscribe(api, browser, first.officer())["id"]
    renewed = Browser(browser.endpoint)  # the same browser after a re-subscribe: new keys
    assert subscribe(api, renewed, elsewhere.officer()) == {"id": sub_id, "region": elsewhere.region, "language": "en"}
    assert query(database_url, "SELECT subject, p256dh FROM push_subscriptions WHERE id = %s", (sub_id,)) == [
        (f"officer-{elsewhere.region}", renewed.subscription()["keys"]["p256dh"])]


def test_the_vapid_key_is_created_once_private_and_kept(tmp_path: Any) -> None:
    path = tmp_path / "state" / "vapid_private.pem"
    first = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert public_key(load_or_create_key(path)) == public_key(first)
    raw = b64url_bytes(public_key(first), "public key")
    assert len(raw) == 65 and raw[0] == 4  # uncompressed P-256 point, as applicationServerKey


def test_without_a_usable_key_the_api_runs_without_push(api: TestClient, tmp_path: Any) -> None:
    (tmp_path / "not-a-dir").write_text("")
    unusable = ApiSettings(vapid_private_key_file=tmp_path / "not-a-dir" / "vapid_private.pem")
    assert PushNotifier.create(unusable, app.state.services.pool) is None
    app.dependency_overrides[deps.push_notifier] = lambda: None  # what the lifespan keeps then
    try:
        response = api.get(f"{API}/push/vapid-public-key", headers=auth("officer", "R1"))
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 503 and "not available" in response.json()["detail"]


# An attacker with any officer's token tries to make the API post into the internal network.
@pytest.mark.parametrize(("endpoint", "hosts", "says"), [
    ("https://evil.example.com/wpush/x", DEFAULT_PUSH_HOSTS, "not a known push service"),
    ("https://fcm.googleapis.com.evil.example.com/x", DEFAULT_PUSH_HOSTS, "not a known push service"),
    ("https://notify.windows.com.evil.example.com/x", DEFAULT_PUSH_HOSTS, "not a known push service"),
    ("https://localhost/wpush/x", ("localhost",), "non-public address"),  # on the list, yet loopback
    ("https://127.0.0.1:8000/api/v1/x", ("127.0.0.1",), "non-public address (127.0.0.1)"),
    ("https://10.1.2.3/hook", ("10.1.2.3",), "non-public address (10.1.2.3)"),
    ("https://169.254.169.254/latest/meta-data", ("169.254.169.254",), "non-public address (169.254.169.254)"),
    ("https://[::1]/x", ("::1",), "non-public address (::1)"),
    ("https://[fe80::1]/x", ("fe80::1",), "non-public address (fe80::1)"),
    ("https://no-such-host.invalid/x", ("*.invalid",), "does not resolve"),
])
def test_an_endpoint_off_the_push_services_or_private_is_refused(
        api: TestClient, endpoint: str, hosts: tuple[str, ...], says: str) -> None:
    assert endpoint_problem(endpoint, False, hosts) is not None
    app.dependency_overrides[deps.settings] = lambda: ApiSettings(push_service_hosts=list(hosts),
                                                                  push_allow_insecure_endpoints=False)
    try:
        response = api.post(f"{API}/push/subscriptions", json=Browser(endpoint).subscription(),
                            headers=auth("officer", "R-any"))
    finally:
        app.dependency_overrides.clear()
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "endpoint"] and says in issue["msg"], issue


def test_a_public_push_service_on_the_list_is_accepted() -> None:
    assert endpoint_problem("https://8.8.8.8/wpush/x", False, ["8.8.8.8"]) is None  # public, no DNS needed
    assert endpoint_problem("https://8.8.8.8/wpush/x", False, DEFAULT_PUSH_HOSTS) is not None


def test_production_refuses_the_test_only_push_switch() -> None:
    strong = {"env": "production", "jwt_secret": "j" * 40, "database_url": f"postgresql://api:{'p' * 20}@db/ctt",
              "push_allow_insecure_endpoints": False}
    assert ApiSettings(**strong).env == "production"  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="CTT_PUSH_ALLOW_INSECURE_ENDPOINTS"):
        ApiSettings(**strong | {"push_allow_insecure_endpoints": True})  # type: ignore[arg-type]


def test_a_user_past_the_subscription_cap_replaces_their_oldest(api: TestClient, push_service: PushService,
                                                                database_url: str) -> None:
    here = place(api)
    cap = ApiSettings().push_max_subscriptions
    ids = [subscribe(api, Browser(push_service.endpoint()), here.officer())["id"] for _ in range(cap)]
    mine = "SELECT array_agg(id ORDER BY id) FROM push_subscriptions WHERE subject = %s"
    assert scalar(database_url, mine, (f"officer-{here.region}",)) == ids  # at the cap: all kept
    newest = subscribe(api, Browser(push_service.endpoint()), here.officer())["id"]
    assert scalar(database_url, mine, (f"officer-{here.region}",)) == [*ids[1:], newest]
    assert scalar(database_url, "SELECT detail->>'reason' FROM audit_log WHERE action = 'push.unsubscribed'"
                                " AND object_id = %s", (str(ids[0]),)) == f"replaced: more than {cap} subscriptions"


def test_notifications_are_written_in_each_subscribers_language(
        api: TestClient, push_service: PushService, database_url: str) -> None:
    here = place(api)
    chosen, negotiated, fallback = (Browser(push_service.endpoint()) for _ in range(3))
    officers = [auth("officer", here.region, f"officer-{here.region}-{n}") for n in range(3)]
    assert created(api.post(f"{API}/push/subscriptions", json={**chosen.subscription(), "language": "fr"},
                            headers={**officers[0], "Accept-Language": "en"}))["language"] == "fr"
    assert created(api.post(f"{API}/push/subscriptions", json=negotiated.subscription(), headers={
        **officers[1], "Accept-Language": "de-CH, fr-CA;q=0.9, en;q=0.5"}))["language"] == "fr"
    assert created(api.post(f"{API}/push/subscriptions", json=fallback.subscription(), headers={
        **officers[2], "Accept-Language": "sw, de;q=0.8"}))["language"] == "en"

    alert_id = open_alert(database_url, here.shipment(api))
    messages = {}
    for browser in (chosen, negotiated, fallback):
        (push,) = wait_for(partial(push_service.to, browser.endpoint), 10, "a push to each browser")
        messages[browser.endpoint] = browser.read(push)
    for browser in (chosen, negotiated):
        french = messages[browser.endpoint]
        assert french["title"] == "Alerte Rupture de scellé (gravité critique)" and french["language"] == "fr"
        assert french["body"].endswith(f"appareil {french['device']}") and french["id"] == alert_id
    english = messages[fallback.endpoint]
    assert (english["title"], english["language"]) == ("Critical alert: Seal breach", "en")
    assert english["body"] == f"{english['reference']}: Seal breach (critical), device {english['device']}"

    # An escalation too, in the supervisor's language.
    supervisor = Browser(push_service.endpoint())
    created(api.post(f"{API}/push/subscriptions", json={**supervisor.subscription(), "language": "fr"},
                     headers=auth("supervisor", here.region, f"sup-{here.region}")))
    execute(database_url, "UPDATE alerts SET escalation_level = 1, escalated_at = now(), updated_at = now() "
                          "WHERE id = %s", (alert_id,))
    (push,) = wait_for(lambda: push_service.to(supervisor.endpoint), 10, "the escalation's push")
    assert supervisor.read(push)["title"] == "Escaladée : alerte Rupture de scellé (gravité critique)"


def test_a_language_without_a_catalogue_is_refused_naming_the_field(
        api: TestClient, push_service: PushService) -> None:
    here = place(api)
    for language, message in (("de", "has no catalogue"), ("FR", "String should match pattern")):
        response = api.post(f"{API}/push/subscriptions", headers=here.officer(),
                            json={**Browser(push_service.endpoint()).subscription(), "language": language})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "language"]
        assert message in response.json()["detail"][0]["msg"]


def test_the_operators_notice_is_written_in_each_ones_language(
        api: TestClient, push_service: PushService) -> None:
    browsers = {code: Browser(push_service.endpoint()) for code in ("en", "fr")}
    for code, browser in browsers.items():
        created(api.post(f"{API}/push/subscriptions", json={**browser.subscription(), "language": code},
                         headers=auth("operator", subject=unique(f"op-{code}-"))))
    notifier = app.state.services.push
    assert api.portal is not None
    accepted = api.portal.call(notifier.notify_operators, "webhook_disabled",
                               {"subscription": 77, "reason": "every delivery failed since 2026-12-01T00:00:00Z"},
                               "webhook-77")
    assert accepted >= 2
    read = {code: b.read(wait_for(partial(push_service.to, b.endpoint), 5, "the notice")[0])
            for code, b in browsers.items()}
    assert read["en"]["title"] == "Webhook subscription 77 disabled"
    assert read["fr"]["title"] == "Abonnement webhook 77 désactivé"
    assert read["fr"]["body"].startswith("every delivery failed since 2026-12-01T00:00:00Z. Un administrateur")
