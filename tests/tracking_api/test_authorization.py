"""Every operation x every role (and an officer of another region, and no token):
the status each gets. Each call acts on objects made for it, so one call's
effect never decides another's answer."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from tests.support import execute, scalar
from tests.tracking_api.declaration_support import document
from tests.tracking_api.geo_support import (
    API,
    World,
    auth,
    created,
    line,
    make_world,
    office_code,
    square,
    unique,
)
from tracking_api import deps
from tracking_api.config import ApiSettings
from tracking_api.main import app
from tracking_api.push import b64url

CALLERS = ("admin", "operator", "officer", "officer-elsewhere", "integrator", "supervisor", "anonymous")


@dataclass
class Setup:
    world: World
    region: str
    zone_id: int

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller in ("officer", "supervisor"):
            return auth(caller, self.region)
        if caller == "officer-elsewhere":
            return auth("officer", unique("nowhere-"))
        return auth(caller)


@pytest.fixture(scope="module", autouse=True)
def no_subscriptions_left(database_url: str) -> Iterator[None]:
    """The matrix's webhook subscriptions (to HOOK_URL, never called here) go with it: a later
    test's dispatcher would try every enabled one."""
    yield
    execute(database_url, "DELETE FROM webhook_subscriptions WHERE url = %s", (HOOK_URL,))


@pytest.fixture(scope="module")
def setup(client: TestClient) -> Setup:
    world = make_world(client)
    region = unique("R")
    created(client.post(f"{API}/regions", json={"code": region, "name": "matrix", "geometry": square(
        world.lon + 0.5, world.lat, 2.0)}, headers=auth("admin")))
    zones = client.get(f"{API}/zones", headers=auth("admin")).json()["features"]
    (zone_id,) = [z["id"] for z in zones if z["properties"].get("office_code") == world.departure]
    return Setup(world, region, zone_id)


def shipment(client: TestClient, s: Setup, status: str = "registered") -> dict[str, Any]:
    """A shipment of the region, taken to ``status`` by an operator."""
    body = created(client.post(f"{API}/shipments", json=s.world.shipment(), headers=auth("operator")))
    for action, reached in (("depart", "in_transit"), ("arrive", "arrived")):
        if body["status"] == status:
            break
        body = client.post(f"{API}/shipments/{body['id']}/{action}", headers=auth("operator")).json()
        assert body["status"] == reached
    return body


def alert(database_url: str, shipment_id: int, device: str) -> int:
    return int(scalar(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at,"
                                    " severity) VALUES ('unscheduled_stop', %s, %s, now(), now(), 'high')"
                                    " RETURNING id", (shipment_id, device)))


# (operation, makes the request, expected status per caller)
Call = Callable[[TestClient, Setup, str, dict[str, str]], Any]
ALL_READ = {"admin": 200, "operator": 200, "officer": 200, "officer-elsewhere": 200, "integrator": 200,
            "anonymous": 401}
REGION_READ = ALL_READ | {"officer-elsewhere": 404}
ACT = {"admin": 200, "operator": 200, "officer": 200, "officer-elsewhere": 404, "integrator": 403, "anonymous": 401}
MOVE = ACT | {"supervisor": 403}  # supervisors answer alerts; officers in the field move shipments and devices
DEFINE = {"admin": 201, "operator": 201, "officer": 403, "officer-elsewhere": 403, "integrator": 403,
          "anonymous": 401}
DECLARE = {"admin": 201, "operator": 201, "officer": 403, "officer-elsewhere": 403, "integrator": 201,
           "anonymous": 401}
ADMIN_ONLY = {"admin": 201, "operator": 403, "officer": 403, "officer-elsewhere": 403, "integrator": 403,
              "anonymous": 401}
SUBSCRIBE = {"admin": 201, "operator": 201, "officer": 201, "officer-elsewhere": 201, "integrator": 403,
             "anonymous": 401}
UNSUBSCRIBE = ALL_READ | {"integrator": 403}
AUDITORS = ALL_READ | {"officer": 403, "officer-elsewhere": 403, "integrator": 403}
EDIT_RISK = DEFINE | {"admin": 200, "operator": 200}  # sensitive goods and profiles: admins and operators
CASE_WORK = ACT  # the roles that act on alerts work cases (officers in their region); integrators do not
RESPONSE_TIMES = {"critical": 300, "high": 900, "medium": 3600, "low": 14400}


REGISTRARS_OK = DECLARE | {"admin": 200, "operator": 200, "integrator": 200}
_RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}


def _declared(c: TestClient, s: Setup, then: Callable[[str, dict[str, Any]], Any]) -> Any:
    """``then(mrn, document)`` on a declaration an operator sent on the region's route."""
    doc = document(s.world)
    created(c.post(f"{API}/declarations", json=doc, headers=auth("operator")))
    return then(doc["functionalReferenceId"], doc)


def _transition(action: str, start: str) -> Call:
    def call(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
        return c.post(f"{API}/shipments/{shipment(c, s, start)['id']}/{action}", headers=h)
    return call


def _alert_action(action: str) -> Call:
    def call(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
        sh = shipment(c, s, "in_transit")
        body = {"note": "checked"} | ({"outcome": "false_alarm"} if action == "resolve" else {})
        return c.post(f"{API}/alerts/{alert(db, sh['id'], sh['tracker_id'])}/{action}", json=body, headers=h)
    return call


def _case(c: TestClient, s: Setup, db: str) -> tuple[int, int]:
    """A case (an admin's confirmed outcome) on a new shipment of the region, and its first evidence."""
    sh = shipment(c, s, "in_transit")
    alert_id = alert(db, sh["id"], sh["tracker_id"])
    assert c.post(f"{API}/alerts/{alert_id}/resolve", json={"note": "seized", "outcome": "goods_seized"},
                  headers=auth("admin")).status_code == 200
    (case,) = c.get(f"{API}/cases", params={"alert": alert_id}, headers=auth("admin")).json()["items"]
    return int(case["id"]), int(scalar(db, "SELECT min(id) FROM case_evidence WHERE case_id = %s", (case["id"],)))


def _case_call(method: str, tail: str, body: dict[str, Any] | None = None) -> Call:
    def call(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
        case_id, evidence_id = _case(c, s, db)
        path = f"{API}/cases/{case_id}{tail.format(evidence=evidence_id)}"
        return c.request(method, path, json=body, headers=h)
    return call


def _alert_id(c: TestClient, s: Setup, db: str) -> int:
    sh = shipment(c, s, "in_transit")
    return alert(db, sh["id"], sh["tracker_id"])


def _one_alert(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
    return c.get(f"{API}/alerts/{_alert_id(c, s, db)}", headers=h)


def _track(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
    sh = shipment(c, s, "in_transit")
    execute(db, "INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at) VALUES (%s, 0, now(), %s, %s, now())",
            (sh["tracker_id"], s.world.lat, s.world.lon))
    return c.get(f"{API}/devices/{sh['tracker_id']}/track", headers=h)


# A push service's host that needs no DNS here: a public address, allowed for these calls only.
PUSH_HOST = "192.88.99.9"


def _push_subscription() -> dict[str, Any]:
    """A browser's PushSubscription on a push service of PUSH_HOST (``_on_test_push_host``)."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": f"https://{PUSH_HOST}/wpush/{unique()}",
            "keys": {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}}


def _on_test_push_host(call: Call) -> Call:
    def with_host(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
        app.dependency_overrides[deps.settings] = lambda: ApiSettings(push_service_hosts=[PUSH_HOST])
        try:
            return call(c, s, db, h)
        finally:
            app.dependency_overrides.pop(deps.settings)

    return with_host


def _subscribe(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
    body = _push_subscription()
    response = c.post(f"{API}/push/subscriptions", json=body, headers=h)
    # Not left behind: an admin's or operator's subscription hears of every alert opening.
    execute(db, "DELETE FROM push_subscriptions WHERE endpoint = %s", (body["endpoint"],))
    return response


def _unsubscribe(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
    body = _push_subscription()
    c.post(f"{API}/push/subscriptions", json=body, headers=h)  # as the same caller (refused where unsubscribing is)
    return c.delete(f"{API}/push/subscriptions", params={"endpoint": body["endpoint"]}, headers=h)


def _sensitive_goods(db: str) -> str:
    """A sensitive-goods entry of its own (chapter 99 is no test's goods)."""
    prefix = "99" + unique()[:8].translate(str.maketrans("abcdef", "012345"))
    execute(db, "INSERT INTO sensitive_goods (hs_prefix, label, points) VALUES (%s, 'matrix', 1)", (prefix,))
    return prefix


# The medium profile's defaults (schema/022): putting them back changes nothing.
WEBHOOKS = {"admin": 200, "operator": 200, "officer": 403, "officer-elsewhere": 403, "integrator": 404,
            "anonymous": 401}  # on an admin's subscription: another's is a 404 for an integrator
HOOK_URL = "https://192.88.99.9/ctt-matrix"  # a public address literal: checked, never called (no dispatch)


def _hook(c: TestClient) -> int:
    body = created(c.post(f"{API}/webhooks", json={"url": HOOK_URL, "event_types": ["alert.opened"]},
                          headers=auth("admin")))
    return int(body["id"])


def _on_hook(method: str, tail: str = "", **kwargs: Any) -> Call:
    def call(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
        return c.request(method, f"{API}/webhooks/{_hook(c)}{tail}", headers=h, **kwargs)
    return call


def _redeliver(c: TestClient, s: Setup, db: str, h: dict[str, str]) -> Any:
    hook = _hook(c)
    sent = c.post(f"{API}/webhooks/{hook}/test", headers=auth("admin")).json()
    return c.post(f"{API}/webhooks/{hook}/deliveries/{sent['outbox_id']}/redeliver", headers=h)


_MEDIUM = {"corridor_factor": 1.0, "stop_min_s": 900, "report_interval_s": 900, "border_dwell_factor": 1.0,
           "severity_shift": 0}

OPERATIONS: dict[str, tuple[Call, dict[str, int]]] = {
    "POST /session": (lambda c, s, db, h: c.post(f"{API}/session", headers=h), ALL_READ),
    "GET /session": (lambda c, s, db, h: c.get(f"{API}/session", headers=h), ALL_READ),
    "GET /routes": (lambda c, s, db, h: c.get(f"{API}/routes", headers=h), ALL_READ),
    "GET /routes/{id}": (lambda c, s, db, h: c.get(f"{API}/routes/{s.world.route_id}", headers=h), ALL_READ),
    "POST /routes": (lambda c, s, db, h: c.post(f"{API}/routes", json={"name": unique("route "), "geometry": line(
        (s.world.lon, s.world.lat), (s.world.lon + 1, s.world.lat))}, headers=h), DEFINE),
    "GET /zones": (lambda c, s, db, h: c.get(f"{API}/zones", headers=h), ALL_READ),
    "GET /countries": (lambda c, s, db, h: c.get(f"{API}/countries", headers=h), ALL_READ),
    "GET /places": (lambda c, s, db, h: c.get(f"{API}/places", params={"bbox": "36,-5,40,-1"}, headers=h), ALL_READ),
    "POST /zones": (lambda c, s, db, h: c.post(f"{API}/zones", json={
        "name": unique("office "), "kind": "office", "office_code": office_code(),
        "geometry": square(s.world.lon, s.world.lat + 0.5)}, headers=h), DEFINE),
    "GET /zones/{id}": (lambda c, s, db, h: c.get(f"{API}/zones/{s.zone_id}", headers=h), ALL_READ),
    "GET /regions": (lambda c, s, db, h: c.get(f"{API}/regions", headers=h), ALL_READ),
    "GET /regions/{code}": (lambda c, s, db, h: c.get(f"{API}/regions/{s.region}", headers=h), ALL_READ),
    "POST /regions": (lambda c, s, db, h: c.post(f"{API}/regions", json={
        "code": unique("R"), "name": "r", "geometry": square(s.world.lon, s.world.lat + 3)}, headers=h), ADMIN_ONLY),
    "GET /shipments": (lambda c, s, db, h: c.get(f"{API}/shipments", headers=h), ALL_READ),
    "GET /shipments/{id}": (lambda c, s, db, h: c.get(f"{API}/shipments/{shipment(c, s)['id']}", headers=h),
                            REGION_READ),
    "POST /shipments": (lambda c, s, db, h: c.post(f"{API}/shipments", json=s.world.shipment(), headers=h), DECLARE),
    "POST /shipments/{id}/depart": (_transition("depart", "registered"), MOVE),
    "POST /shipments/{id}/arrive": (_transition("arrive", "in_transit"), MOVE),
    "POST /shipments/{id}/close": (_transition("close", "arrived"), MOVE),
    "GET /shipments/{id}/timeline": (
        lambda c, s, db, h: c.get(f"{API}/shipments/{shipment(c, s)['id']}/timeline", headers=h), REGION_READ),
    "POST /shipments/{id}/release": (_transition("release", "in_transit"), MOVE),
    "POST /shipments/{id}/inspections": (lambda c, s, db, h: c.post(
        f"{API}/shipments/{shipment(c, s, 'in_transit')['id']}/inspections",
        json={"office_code": s.world.departure}, headers=h), MOVE | {"admin": 201, "operator": 201, "officer": 201}),
    "PUT /shipments/{id}/risk": (lambda c, s, db, h: c.put(
        f"{API}/shipments/{shipment(c, s)['id']}/risk", json={"level": "high", "reason": "matrix"}, headers=h),
        ACT | {"officer": 403, "officer-elsewhere": 403}),
    "GET /devices/{id}/track": (_track, REGION_READ),
    "GET /positions/latest": (lambda c, s, db, h: c.get(f"{API}/positions/latest", headers=h), ALL_READ),
    "GET /alerts": (lambda c, s, db, h: c.get(f"{API}/alerts", headers=h), ALL_READ),
    "GET /alerts/{id}": (_one_alert, REGION_READ),
    "POST /alerts/{id}/ack": (_alert_action("ack"), ACT),
    "POST /alerts/{id}/resolve": (_alert_action("resolve"), ACT),
    "POST /alerts/{id}/assign": (lambda c, s, db, h: c.post(
        f"{API}/alerts/{_alert_id(c, s, db)}/assign", json={"assignee": "someone"}, headers=h), ACT),
    "GET /units": (lambda c, s, db, h: c.get(f"{API}/units", headers=h), ALL_READ),
    "PUT /units/{code}": (lambda c, s, db, h: c.put(f"{API}/units/{unique('U').upper()}",
                                                    json={"name": "matrix", "region": s.region}, headers=h),
                          ADMIN_ONLY | {"admin": 200}),
    "GET /cases": (lambda c, s, db, h: c.get(f"{API}/cases", headers=h), ALL_READ | {"integrator": 403}),
    "GET /cases/{id}": (_case_call("GET", ""), CASE_WORK),
    "POST /cases/{id}/entries": (_case_call("POST", "/entries", {"text": "matrix"}),
                                 CASE_WORK | {"admin": 201, "operator": 201, "officer": 201}),
    "POST /cases/{id}/close": (_case_call("POST", "/close", {"outcome": "other", "summary": "matrix"}), CASE_WORK),
    "GET /cases/{id}/evidence/{id}": (_case_call("GET", "/evidence/{evidence}"), CASE_WORK),
    "GET /escalation/response-times": (lambda c, s, db, h: c.get(f"{API}/escalation/response-times", headers=h),
                                       ALL_READ),
    "PUT /escalation/response-times": (lambda c, s, db, h: c.put(
        f"{API}/escalation/response-times", json=RESPONSE_TIMES, headers=h), ADMIN_ONLY | {"admin": 200}),
    "GET /kpi/response": (lambda c, s, db, h: c.get(f"{API}/kpi/response", headers=h), ALL_READ),
    "GET /kpi/outcomes": (lambda c, s, db, h: c.get(f"{API}/kpi/outcomes", headers=h), ALL_READ),
    "GET /push/vapid-public-key": (lambda c, s, db, h: c.get(f"{API}/push/vapid-public-key", headers=h), ALL_READ),
    "POST /push/subscriptions": (_on_test_push_host(_subscribe), SUBSCRIBE),
    "DELETE /push/subscriptions": (_on_test_push_host(_unsubscribe), UNSUBSCRIBE),
    "POST /stream/tickets": (lambda c, s, db, h: c.post(f"{API}/stream/tickets", headers=h),
                             {caller: 201 for caller in ALL_READ} | {"anonymous": 401}),
    "GET /kpi": (lambda c, s, db, h: c.get(f"{API}/kpi", headers=h), ALL_READ),
    "GET /kpi/risk": (lambda c, s, db, h: c.get(f"{API}/kpi/risk", headers=h), ALL_READ),
    "GET /kpi/time-release": (lambda c, s, db, h: c.get(f"{API}/kpi/time-release", headers=h), ALL_READ),
    "GET /risk/sensitive-goods": (lambda c, s, db, h: c.get(f"{API}/risk/sensitive-goods", headers=h), ALL_READ),
    "GET /risk/sensitive-goods/{prefix}": (lambda c, s, db, h: c.get(f"{API}/risk/sensitive-goods/2710", headers=h),
                                           ALL_READ),
    "PUT /risk/sensitive-goods/{prefix}": (lambda c, s, db, h: c.put(
        f"{API}/risk/sensitive-goods/{_sensitive_goods(db)}", json={"label": "matrix", "points": 2}, headers=h),
        EDIT_RISK),
    "DELETE /risk/sensitive-goods/{prefix}": (lambda c, s, db, h: c.delete(
        f"{API}/risk/sensitive-goods/{_sensitive_goods(db)}", headers=h), EDIT_RISK),
    "GET /risk/profiles": (lambda c, s, db, h: c.get(f"{API}/risk/profiles", headers=h), ALL_READ),
    "GET /risk/profiles/{level}": (lambda c, s, db, h: c.get(f"{API}/risk/profiles/high", headers=h), ALL_READ),
    "PUT /risk/profiles/{level}": (lambda c, s, db, h: c.put(f"{API}/risk/profiles/medium", json=_MEDIUM,
                                                             headers=h), EDIT_RISK),
    "GET /audit/checkpoints": (lambda c, s, db, h: c.get(f"{API}/audit/checkpoints", headers=h), AUDITORS),
    "GET /ingest/workers": (lambda c, s, db, h: c.get(f"{API}/ingest/workers", headers=h), AUDITORS),
    "POST /webhooks": (lambda c, s, db, h: c.post(f"{API}/webhooks", json={
        "url": HOOK_URL, "event_types": ["shipment.arrived"]}, headers=h), DECLARE),
    "GET /webhooks": (lambda c, s, db, h: c.get(f"{API}/webhooks", headers=h), WEBHOOKS | {"integrator": 200}),
    "GET /webhooks/{id}": (_on_hook("GET"), WEBHOOKS),
    "PATCH /webhooks/{id}": (_on_hook("PATCH", json={"description": "matrix"}), WEBHOOKS),
    "DELETE /webhooks/{id}": (_on_hook("DELETE"), WEBHOOKS),
    "POST /webhooks/{id}/secret": (_on_hook("POST", "/secret"), WEBHOOKS),
    "GET /webhooks/{id}/deliveries": (_on_hook("GET", "/deliveries"), WEBHOOKS),
    "POST /webhooks/{id}/deliveries/{outbox_id}/redeliver": (_redeliver, WEBHOOKS | {"admin": 202, "operator": 202}),
    "POST /webhooks/{id}/test": (_on_hook("POST", "/test"), WEBHOOKS | {"admin": 202, "operator": 202}),
    "GET /devices": (lambda c, s, db, h: c.get(f"{API}/devices", params={"limit": 1}, headers=h), ALL_READ),
    "GET /devices/{id}": (lambda c, s, db, h: c.get(f"{API}/devices/{shipment(c, s)['tracker_id']}", headers=h),
                          REGION_READ),
    "POST /devices/{id}/return": (lambda c, s, db, h: c.post(
        f"{API}/devices/{shipment(c, s)['tracker_id']}/return", json={"office": s.world.destination}, headers=h),
        MOVE),
    "POST /devices/{id}/issue": (lambda c, s, db, h: _issue(c, s, h), MOVE),
    "POST /declarations": (lambda c, s, db, h: c.post(f"{API}/declarations", json=document(s.world), headers=h),
                           DECLARE),
    "POST /declarations/import": (lambda c, s, db, h: c.post(
        f"{API}/declarations/import", content=json.dumps(document(s.world)) + "\n",
        headers=h | {"Content-Type": "application/x-ndjson"}), REGISTRARS_OK),
    "PUT /declarations/{mrn}": (lambda c, s, db, h: _declared(c, s, lambda mrn, doc: c.put(
        f"{API}/declarations/{mrn}", json={"version": 1, "document": doc | {"carrier": {"name": "Other"}}},
        headers=h)), REGISTRARS_OK),
    "POST /declarations/{mrn}/cancel": (lambda c, s, db, h: _declared(c, s, lambda mrn, doc: c.post(
        f"{API}/declarations/{mrn}/cancel", json={"reason": "withdrawn by the declarant"}, headers=h)),
        REGISTRARS_OK),
    "GET /declarations/{mrn}": (lambda c, s, db, h: _declared(c, s, lambda mrn, doc: c.get(
        f"{API}/declarations/{mrn}", headers=h)), REGION_READ),
    "GET /declarations/{mrn}/versions": (lambda c, s, db, h: _declared(c, s, lambda mrn, doc: c.get(
        f"{API}/declarations/{mrn}/versions", headers=h)), REGION_READ),
    "GET /exports/alerts": (lambda c, s, db, h: c.get(f"{API}/exports/alerts", params=_RANGE, headers=h), ALL_READ),
    "GET /exports/tracks": (lambda c, s, db, h: c.get(f"{API}/exports/tracks", params=_RANGE, headers=h), ALL_READ),
    "GET /exports/shipments": (lambda c, s, db, h: c.get(f"{API}/exports/shipments", params=_RANGE, headers=h),
                               ALL_READ),
    "GET /shipments/{id}/report.pdf": (lambda c, s, db, h: c.get(
        f"{API}/shipments/{shipment(c, s)['id']}/report.pdf", headers=h), REGION_READ),
}


def _issue(c: TestClient, s: Setup, h: dict[str, str]) -> Any:
    """Issue a shipment's tracker again after an operator took it back."""
    sh = shipment(c, s)
    c.post(f"{API}/devices/{sh['tracker_id']}/return", json={"office": s.world.destination}, headers=auth("operator"))
    return c.post(f"{API}/devices/{sh['tracker_id']}/issue",
                  json={"shipment": sh["id"], "office": s.world.departure}, headers=h)


def test_every_resource_operation_is_in_the_matrix() -> None:
    documented = {f"{method.upper()} {path.removeprefix(API)}" for path, item in app.openapi()["paths"].items()
                  for method in item if path.startswith(API)}
    normalised = {" ".join([m, _generic(p)]) for m, p in (op.split(" ") for op in OPERATIONS)}
    ops = {" ".join([m, _generic(p)]) for m, p in (d.split(" ") for d in documented)}
    # Not in the matrix: health (open to all) and the stream (tests/tracking_api/test_stream.py).
    assert ops - {"GET /healthz", "GET /readyz", "GET /stream"} == normalised


def _generic(path: str) -> str:
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


def status_of(expected: dict[str, int], caller: str) -> int:
    """A supervisor is regional like an officer: the officer's status unless the row says otherwise."""
    return expected.get(caller, expected["officer"]) if caller == "supervisor" else expected[caller]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_status_by_role(client: TestClient, setup: Setup, database_url: str, operation: str, caller: str) -> None:
    call, expected = OPERATIONS[operation]
    response = call(client, setup, database_url, setup.headers(caller))
    assert response.status_code == status_of(expected, caller), f"{operation} as {caller}: {response.text}"
    if response.status_code >= 400:
        assert response.json()["detail"]  # a message, never an empty refusal


# The operation that each advertised capability allows.
CAPABILITY_OPERATIONS = {"define_geography": "POST /routes", "define_regions": "POST /regions",
                         "register_shipments": "POST /shipments", "move_shipments": "POST /shipments/{id}/depart",
                         "act_on_alerts": "POST /alerts/{id}/ack"}


@pytest.mark.parametrize("caller", [c for c in CALLERS if c != "anonymous"])
def test_the_session_offers_what_the_matrix_allows(client: TestClient, setup: Setup, caller: str) -> None:
    offered = client.get(f"{API}/session", headers=setup.headers(caller)).json()["capabilities"]
    # Offered unless the role is refused (403); an officer elsewhere has the role's rights, not the objects.
    allowed = [cap for cap, op in CAPABILITY_OPERATIONS.items() if status_of(OPERATIONS[op][1], caller) != 403]
    assert offered == allowed
