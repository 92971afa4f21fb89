"""``/alerts``: filters, keyset pagination, the acknowledge/resolve workflow with
its audit entries and NOTIFY, roles, officers' regions and authentication,
against the real database (rows inserted with SQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from ctt.audit import verify
from protocol.alerts import FIELDS
from tests.support import query, unique_prefix
from tracking_api.auth import mint
from tracking_api.config import ApiSettings
from tracking_api.main import app

ALERTS = "/api/v1/alerts"
PAGED = 23  # alerts of the paging shipment, more than the page size used


@dataclass
class World:
    """Shipments in two regions and their alerts (ids by what the tests need)."""

    prefix: str
    region_a: str
    region_b: str
    s1: int  # region A, five alerts of every kind
    s2: int  # region B
    s3: int  # region A, PAGED alerts
    tracker1: str
    seal1: str
    a: dict[str, int] = field(default_factory=dict)
    s2_alerts: list[int] = field(default_factory=list)
    s3_alerts: list[int] = field(default_factory=list)


def add_alert(conn: psycopg.Connection[Any], shipment: int, device: str, type_: str = "route_deviation",
              status: str = "open", late: bool = False, ended: bool = True, detail: dict[str, Any] | None = None,
              severity: str = "high") -> int:
    row = conn.execute(
        "INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lat, lon, severity,"
        " status, late, detail)"
        " VALUES (%s, %s, %s, now() - interval '2 hours', CASE WHEN %s THEN now() - interval '1 hour' END,"
        " now() - interval '119 minutes', -3.5, 38.9, %s, %s, %s, %s) RETURNING id",
        (type_, shipment, device, ended, severity, status, late, Jsonb(detail or {}))).fetchone()
    assert row is not None
    return int(row[0])


def _shipment(conn: psycopg.Connection[Any], reference: str, route: int, tracker: str, dep: str, dst: str,
              region: str) -> int:
    # 'arrived': the geofence engine (if ingest runs in this session) leaves these shipments alone.
    row = conn.execute(
        "INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination,"
        " deadline, status, departed_at, arrived_at)"
        " VALUES (%s, %s, %s, %s, %s, now() + interval '1 day', 'arrived', now() - interval '3 hours', now())"
        " RETURNING id", (reference, route, tracker, dep, dst)).fetchone()
    assert row is not None
    conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) VALUES (%s, %s)", (row[0], region))
    return int(row[0])


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    p = unique_prefix("alerts")
    square = {"type": "Polygon", "coordinates": [[[38.0, -4.0], [38.1, -4.0], [38.1, -3.9], [38.0, -3.9],
                                                  [38.0, -4.0]]]}
    with psycopg.connect(database_url) as conn:
        dep, dst = f"{p}D", f"{p}A"
        for code in (dep, dst):
            conn.execute("INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'office', %s, %s)",
                         (code, code, Jsonb(square)))
        route_row = conn.execute("INSERT INTO routes (name, geometry) VALUES (%s, %s) RETURNING id",
                                 (f"{p}-route", Jsonb({"type": "LineString",
                                                       "coordinates": [[38.0, -4.0], [39.0, -3.0]]}))).fetchone()
        assert route_row is not None
        route = int(route_row[0])
        region_a, region_b = f"{p}-A", f"{p}-B"
        for code in (region_a, region_b):
            conn.execute("INSERT INTO regions (code, name, geometry) VALUES (%s, %s, %s)", (code, code, Jsonb(square)))
        w = World(p, region_a, region_b,
                  _shipment(conn, f"26{p}1", route, f"{p}-trk1", dep, dst, region_a),
                  _shipment(conn, f"26{p}2", route, f"{p}-trk2", dep, dst, region_b),
                  _shipment(conn, f"26{p}3", route, f"{p}-trk3", dep, dst, region_a),
                  f"{p}-trk1", f"{p}-seal1")
        w.a["deviation"] = add_alert(conn, w.s1, w.tracker1, "route_deviation")
        w.a["stop"] = add_alert(conn, w.s1, w.tracker1, "unscheduled_stop", "acknowledged", late=True)
        w.a["breach"] = add_alert(conn, w.s1, w.seal1, "seal_breach", "resolved", severity="critical")
        w.a["withdrawn"] = add_alert(conn, w.s1, w.tracker1, "unscheduled_stop", late=True,
                                     detail={"withdrawn": True})
        w.a["overdue"] = add_alert(conn, w.s1, w.tracker1, "transit_overdue", ended=False, severity="medium")
        w.s2_alerts = [add_alert(conn, w.s2, f"{p}-trk2", t) for t in ("route_deviation", "signal_lost")]
        w.s3_alerts = [add_alert(conn, w.s3, f"{p}-trk3") for _ in range(PAGED)]
    return w


def auth(role: str, region: str | None = None, subject: str | None = None, ttl_s: int | None = None) -> dict[str, str]:
    token = mint(ApiSettings(), subject or f"test-{role}", role, region, ttl_s)
    return {"Authorization": f"Bearer {token}"}


OPERATOR = auth("operator", subject="op-1")


def ids(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[int]:
    response = client.get(ALERTS, params=params, headers=headers or OPERATOR)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


def fresh(database_url: str, shipment: int, device: str, status: str = "open") -> int:
    with psycopg.connect(database_url) as conn:
        return add_alert(conn, shipment, device, status=status)


def alert_row(database_url: str, alert_id: int) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT status, acknowledged_by, acknowledged_at, resolved_by, resolved_at, note,"
                          " updated_at > created_at AS touched FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return row


def audit_rows(database_url: str, alert_id: int) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT actor, role, action, detail FROM audit_log"
                               " WHERE object_type = 'alert' AND object_id = %s AND role <> 'system'"  # officers'
                               " ORDER BY id", (str(alert_id),))


# --- reading -----------------------------------------------------------------------------------------------------

def test_an_alert_has_the_contract_fields_and_the_workflow_ones(client: TestClient, world: World) -> None:
    response = client.get(f"{ALERTS}/{world.a['overdue']}", headers=auth("integrator"))
    assert response.status_code == 200, response.text
    alert = response.json()
    assert list(alert) == list(FIELDS)
    assert alert["shipment"] == world.s1 and alert["reference"] == f"26{world.prefix}1"
    assert alert["device"] == world.tracker1 and alert["type"] == "transit_overdue"
    assert alert["ended_at"] is None and alert["status"] == "open" and alert["withdrawn"] is False
    assert alert["started_at"].endswith("Z") and alert["crossed_at"].endswith("Z")
    assert (alert["lat"], alert["lon"], alert["severity"], alert["late"]) == (-3.5, 38.9, "medium", False)
    withdrawn = client.get(f"{ALERTS}/{world.a['withdrawn']}", headers=OPERATOR).json()
    assert withdrawn["withdrawn"] is True and withdrawn["late"] is True


def test_filters_each_and_combined(client: TestClient, world: World) -> None:
    a = world.a
    s1_all = sorted(a.values(), reverse=True)
    assert ids(client, shipment=world.s1) == s1_all
    assert ids(client, shipment=world.s1, type="unscheduled_stop") == sorted([a["stop"], a["withdrawn"]],
                                                                              reverse=True)
    assert ids(client, shipment=world.s1, status="acknowledged") == [a["stop"]]
    assert ids(client, shipment=world.s1, status="resolved") == [a["breach"]]
    assert ids(client, device=world.seal1) == [a["breach"]]
    assert ids(client, device=world.tracker1, late="true") == sorted([a["stop"], a["withdrawn"]], reverse=True)
    assert ids(client, shipment=world.s1, late="false") == sorted([a["deviation"], a["breach"], a["overdue"]],
                                                                   reverse=True)
    assert ids(client, shipment=world.s1, type="unscheduled_stop", status="open", late="true") == [a["withdrawn"]]
    assert ids(client, type="transit_overdue", shipment=world.s2) == []
    everyone = ids(client, limit=500)
    assert everyone == sorted(everyone, reverse=True) and set(s1_all) <= set(everyone)


def test_country_and_incident_filters(client: TestClient, world: World, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        a = add_alert(conn, world.s1, world.tracker1, "border_bypass", detail={"from": "KEN", "to": "UGA"})
        b = add_alert(conn, world.s1, world.tracker1, "suspicious_gap")
        conn.execute("UPDATE alerts SET country = 'UGA' WHERE id = %s", (a,))
        conn.execute("UPDATE alerts SET country = 'KEN', incident = %s WHERE id = %s", (a, b))
    assert ids(client, shipment=world.s1, country="UGA") == [a]
    assert ids(client, incident=a) == sorted([a, b], reverse=True)
    shown = client.get(f"{ALERTS}/{a}", headers=OPERATOR).json()
    assert (shown["country"], shown["detail"], shown["incident"]) == ("UGA", {"from": "KEN", "to": "UGA"}, a)


def test_pages_cover_every_alert_once_newest_first(client: TestClient, world: World) -> None:
    seen: list[int] = []
    pages, cursor = 0, None
    while True:
        params: dict[str, Any] = {"shipment": world.s3, "limit": 7} | ({"cursor": cursor} if cursor else {})
        response = client.get(ALERTS, params=params, headers=OPERATOR)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 7
    assert pages == 4  # 7 + 7 + 7 + 2
    assert seen == sorted(world.s3_alerts, reverse=True)
    # Exactly a page's worth: the last page says so, no empty page follows.
    exact = client.get(ALERTS, params={"shipment": world.s3, "limit": PAGED}, headers=OPERATOR).json()
    assert len(exact["items"]) == PAGED and exact["next_cursor"] is None


@pytest.mark.parametrize(("params", "named"), [
    ({"type": "speeding"}, "speeding"),
    ({"status": "closed"}, "closed"),
    ({"status": ""}, "status ''"),
    ({"late": "perhaps"}, "perhaps"),
    ({"shipment": "S-1"}, "S-1"),
    ({"limit": "0"}, "greater than or equal to 1"),
    ({"limit": "501"}, "less than or equal to 500"),
    ({"cursor": "not-a-cursor"}, "cursor 'not-a-cursor' is not a cursor from this API"),
    ({"country": "Kenya"}, "^[A-Z]{3}$"),
    ({"incident": "0"}, "greater than or equal to 1"),
])
def test_bad_filter_values_are_422_naming_the_value(client: TestClient, params: dict[str, str], named: str) -> None:
    response = client.get(ALERTS, params=params, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert named in response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(params))]


def test_an_unknown_alert_is_404(client: TestClient) -> None:
    response = client.get(f"{ALERTS}/999999999", headers=OPERATOR)
    assert response.status_code == 404
    assert response.json() == {"detail": "alert 999999999 not found"}


# --- workflow ----------------------------------------------------------------------------------------------------

def test_acknowledge_then_resolve_records_who_when_why_and_audits_it(
        client: TestClient, world: World, database_url: str) -> None:
    alert_id = fresh(database_url, world.s1, world.tracker1)
    acked = client.post(f"{ALERTS}/{alert_id}/ack", json={"note": "calling the driver"}, headers=OPERATOR)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["status"], body["acknowledged_by"], body["note"]) == ("acknowledged", "op-1", "calling the driver")
    row = alert_row(database_url, alert_id)
    assert (row["status"], row["acknowledged_by"], row["note"], row["touched"]) == (
        "acknowledged", "op-1", "calling the driver", True)
    assert row["acknowledged_at"] is not None and row["resolved_at"] is None

    officer = auth("officer", world.region_a, subject="officer-a")
    resolved = client.post(f"{ALERTS}/{alert_id}/resolve", json={"note": "tyre change, cargo checked",
                                                                  "outcome": "false_alarm"},
                           headers=officer)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == "officer-a"
    row = alert_row(database_url, alert_id)
    assert (row["status"], row["resolved_by"], row["note"], row["acknowledged_by"]) == (
        "resolved", "officer-a", "tyre change, cargo checked", "op-1")
    assert row["resolved_at"] >= row["acknowledged_at"]

    assert audit_rows(database_url, alert_id) == [
        ("op-1", "operator", "alert.acknowledged", {"note": "calling the driver", "from": "open"}),
        ("officer-a", "officer", "alert.resolved", {"note": "tyre change, cargo checked", "from": "acknowledged",
                                                    "outcome": "false_alarm"}),
    ]
    assert verify(database_url).intact


def test_an_open_alert_can_be_resolved_directly_and_ack_needs_no_body(
        client: TestClient, world: World, database_url: str) -> None:
    direct = fresh(database_url, world.s1, world.tracker1)
    response = client.post(f"{ALERTS}/{direct}/resolve", json={"note": "false alarm", "outcome": "false_alarm"},
                           headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert audit_rows(database_url, direct)[0][2:] == ("alert.resolved", {"note": "false alarm", "from": "open",
                                                                          "outcome": "false_alarm"})

    quiet = fresh(database_url, world.s1, world.tracker1)
    response = client.post(f"{ALERTS}/{quiet}/ack", headers=OPERATOR)
    assert response.status_code == 200, response.text
    assert response.json()["note"] is None
    assert audit_rows(database_url, quiet)[0][3] == {"note": None, "from": "open"}


@pytest.mark.parametrize(("body", "named"), [
    ({"outcome": "other"}, "note"), ({"note": "", "outcome": "other"}, "note"),
    ({"note": "   ", "outcome": "other"}, "note"), ({"note": "x" * 2001, "outcome": "other"}, "note"),
    ({"note": None, "outcome": "other"}, "note"), ({"note": "checked"}, "outcome"),
    ({"note": "checked", "outcome": None}, "outcome")])
def test_resolve_needs_a_note_and_an_outcome(client: TestClient, world: World, database_url: str,
                                             body: dict[str, Any], named: str) -> None:
    alert_id = fresh(database_url, world.s1, world.tracker1)
    response = client.post(f"{ALERTS}/{alert_id}/resolve", json=body, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert [issue["loc"][:2] for issue in response.json()["detail"]] == [["body", named]]
    assert alert_row(database_url, alert_id)["status"] == "open"
    assert audit_rows(database_url, alert_id) == []


def test_unknown_fields_are_422_naming_them(client: TestClient, world: World, database_url: str) -> None:
    alert_id = fresh(database_url, world.s1, world.tracker1)
    for action, body in (("ack", {"note": "x", "severity": "low"}),
                         ("resolve", {"note": "x", "outcome": "other", "severity": "low"})):
        response = client.post(f"{ALERTS}/{alert_id}/{action}", json=body, headers=OPERATOR)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "severity"]
    assert alert_row(database_url, alert_id)["status"] == "open"


@pytest.mark.parametrize(("status", "action", "message"), [
    ("resolved", "ack", "is resolved; only an open alert can be acknowledged"),
    ("acknowledged", "ack", "is acknowledged; only an open alert can be acknowledged"),
    ("resolved", "resolve", "is resolved; only an open or acknowledged alert can be resolved"),
])
def test_a_step_the_status_does_not_allow_is_409_naming_it(
        client: TestClient, world: World, database_url: str, status: str, action: str, message: str) -> None:
    alert_id = fresh(database_url, world.s1, world.tracker1, status=status)
    body = {"note": "again"} | ({"outcome": "other"} if action == "resolve" else {})
    response = client.post(f"{ALERTS}/{alert_id}/{action}", json=body, headers=OPERATOR)
    assert response.status_code == 409, response.text
    assert response.json() == {"detail": f"alert {alert_id} {message}"}
    assert alert_row(database_url, alert_id)["status"] == status
    assert audit_rows(database_url, alert_id) == []


def test_every_change_is_a_numbered_event_for_the_live_stream(client: TestClient, world: World,
                                                               database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN ctt_alert_events")
        alert_id = fresh(database_url, world.s1, world.tracker1)
        assert client.post(f"{ALERTS}/{alert_id}/ack", headers=OPERATOR).status_code == 200
        woken = [n.channel for n in listener.notifies(timeout=5, stop_after=2)]
    assert woken == ["ctt_alert_events", "ctt_alert_events"]
    events = query(database_url, "SELECT event, shipment_id FROM alert_events WHERE alert_id = %s ORDER BY id",
                   (alert_id,))
    assert events == [("opened", world.s1), ("acknowledged", world.s1)]


# --- who may do what ---------------------------------------------------------------------------------------------

def test_integrators_read_but_cannot_act(client: TestClient, world: World, database_url: str) -> None:
    integrator = auth("integrator")
    assert world.a["deviation"] in ids(client, integrator, shipment=world.s1)
    alert_id = fresh(database_url, world.s1, world.tracker1)
    for action in ("ack", "resolve"):
        response = client.post(f"{ALERTS}/{alert_id}/{action}", json={"note": "x"}, headers=integrator)
        assert response.status_code == 403
        assert response.json() == {"detail": "integrators cannot act on alerts"}
    assert alert_row(database_url, alert_id)["status"] == "open"


def test_officers_see_and_act_only_in_their_region(client: TestClient, world: World, database_url: str) -> None:
    officer_b = auth("officer", world.region_b, subject="officer-b")
    # Only region B's shipment, whatever the filters.
    assert ids(client, officer_b, limit=500) == sorted(world.s2_alerts, reverse=True)
    assert ids(client, officer_b, shipment=world.s1) == []
    assert set(world.a.values()) <= set(ids(client, auth("officer", world.region_a), shipment=world.s1))

    alert_id = fresh(database_url, world.s1, world.tracker1)
    assert client.get(f"{ALERTS}/{alert_id}", headers=officer_b).status_code == 404
    for action in ("ack", "resolve"):
        body = {"note": "mine?"} | ({"outcome": "other"} if action == "resolve" else {})
        response = client.post(f"{ALERTS}/{alert_id}/{action}", json=body, headers=officer_b)
        assert response.status_code == 404
        assert response.json() == {"detail": f"alert {alert_id} not found"}
    assert alert_row(database_url, alert_id)["status"] == "open"
    own = client.post(f"{ALERTS}/{world.s2_alerts[0]}/ack", json={"note": "on it"}, headers=officer_b)
    assert own.status_code == 200, own.text


@pytest.mark.parametrize("headers", [{}, auth("operator", ttl_s=-10), {"Authorization": "Bearer not.a.token"}],
                         ids=["no token", "expired", "garbage"])
def test_without_a_valid_token_everything_is_401(
        client: TestClient, world: World, headers: dict[str, str]) -> None:
    alert_id = world.a["deviation"]
    for method, path in (("GET", ALERTS), ("GET", f"{ALERTS}/{alert_id}"), ("POST", f"{ALERTS}/{alert_id}/ack"),
                         ("POST", f"{ALERTS}/{alert_id}/resolve")):
        response = client.request(method, path, json={"note": "x"} if method == "POST" else None, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    expired = client.get(ALERTS, headers=auth("operator", ttl_s=-10))
    assert expired.json() == {"detail": "token expired"}


def test_every_operation_is_documented() -> None:
    paths = app.openapi()["paths"]
    # An alert's photos are documented with the photos (tests/tracking_api/test_photos.py).
    operations = {(m, p): op for p, ops in paths.items() if p.startswith(ALERTS) and not p.endswith("/photos")
                  for m, op in ops.items()}
    assert set(operations) == {("get", ALERTS), ("get", f"{ALERTS}/{{alert_id}}"),
                               ("post", f"{ALERTS}/{{alert_id}}/ack"), ("post", f"{ALERTS}/{{alert_id}}/resolve"),
                               ("post", f"{ALERTS}/{{alert_id}}/assign")}
    for (method, _path), op in operations.items():
        assert op["summary"] and op["description"]
        assert {"200", "401", "422"} <= set(op["responses"])
        if method == "post":
            assert {"403", "404", "409"} <= set(op["responses"])
            assert op["requestBody"]["content"]["application/json"]["examples"]
    alert = app.openapi()["components"]["schemas"]["Alert"]
    assert alert["examples"] and list(alert["properties"]) == list(FIELDS) and set(alert["required"]) == set(FIELDS)
