"""Devices through the API, against the real database: custody issued at registration (and
for a seal added later), the battery trend's least squares, the listing's filters, sort,
pages and regions, and the custody workflow (issue, return, flags), each step audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query, scalar
from tests.tracking_api.geo_support import API, World, auth, created, make_world, unique

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def world(client: TestClient) -> World:
    return make_world(client)


def register(client: TestClient, world: World, **overrides: Any) -> dict[str, Any]:
    return created(client.post(f"{API}/shipments", json=world.shipment(**overrides), headers=auth("operator")))


def assignments(database_url: str, device_id: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT shipment_id, issued_by, issued_office, returned_office, note "
                               "FROM device_assignments WHERE device_id = %s ORDER BY id", (device_id,))


# Migration 031

def test_registration_issues_the_tracker_and_seals_at_departure(client: TestClient, world: World,
                                                                database_url: str) -> None:
    shipment = register(client, world)
    for device_id in [shipment["tracker_id"], *shipment["seal_ids"]]:
        assert assignments(database_url, device_id) == [
            (shipment["id"], "test-operator", world.departure, None, None)]
    # A seal added later (an amended declaration) goes out too.
    execute(database_url, "INSERT INTO shipment_seals (shipment_id, seal_id) VALUES (%s, 'late-seal-x1')",
            (shipment["id"],))
    assert assignments(database_url, "late-seal-x1")[-1][:3] == (shipment["id"], "test-operator", world.departure)
    execute(database_url, "DELETE FROM device_assignments WHERE device_id = 'late-seal-x1'")


def test_a_device_never_returned_is_returned_when_issued_again(client: TestClient, world: World,
                                                               database_url: str) -> None:
    first = register(client, world)
    execute(database_url, "UPDATE shipments SET status = 'arrived', departed_at = now(), arrived_at = now() "
                          "WHERE id = %s", (first["id"],))
    second = register(client, world, tracker_id=first["tracker_id"])
    assert assignments(database_url, first["tracker_id"]) == [
        (first["id"], "test-operator", world.departure, world.departure,
         f"not returned; issued again to shipment {second['reference']}"),
        (second["id"], "test-operator", world.departure, None, None)]


def test_one_truck_several_declarations_issue_the_tracker_once(client: TestClient, world: World,
                                                               database_url: str) -> None:
    first = register(client, world, vehicle="KBX 001A")
    register(client, world, vehicle="KBX 001A", tracker_id=first["tracker_id"])
    assert [a[0] for a in assignments(database_url, first["tracker_id"])] == [first["id"]]


def test_battery_trend_is_the_least_squares_line(database_url: str) -> None:
    # Readings 80, 77, 71 % one, two and three hours after T0, one from each source: hand-computed
    # slope -9/2 = -4.5 %/h, intercept 76 + 4.5 * 2 = 85 %, empty 85 / 4.5 = 18.888... h after T0.
    device = "trend-dev-1"
    h = timedelta(hours=1)
    execute(database_url, "INSERT INTO fixes (device_id, seq, ts, lat, lon, bat, received_at) "
                          "VALUES (%s, 0, %s, 0, 0, 80, now())", (device, T0 + h))
    execute(database_url, "INSERT INTO seal_events (device_id, seq, ts, seal_id, event, bat, received_at) "
                          "VALUES (%s, 1, %s, 'S1', 'closed', 77, now())", (device, T0 + 2 * h))
    execute(database_url, "INSERT INTO device_status (device_id, ts, state, bat, received_at) "
                          "VALUES (%s, %s, 'online', 71, now())", (device, T0 + 3 * h))
    points, drain, empty_at, bat, at = query(database_url, "SELECT * FROM battery_trend(%s, %s)", (device, T0))[0]
    assert (points, bat, at) == (3, 71.0, T0 + 3 * h)
    assert drain == pytest.approx(4.5)
    assert abs((empty_at - (T0 + timedelta(hours=85 / 4.5))).total_seconds()) < 1
    # Two readings are no trend; nor are three within a few minutes.
    assert query(database_url, "SELECT points, drain_per_h, empty_at FROM battery_trend(%s, %s)",
                 (device, T0 + 2 * h))[0] == (2, None, None)
    assert scalar(database_url, "SELECT count(*) FROM battery_trend('nobody', %s) WHERE points = 0", (T0,)) == 1


# GET /devices

def heard(database_url: str, device_id: str, bat: float | None, last_seen: datetime, fw: str = "1.2.0") -> None:
    """The device row ingest keeps, as if it had sent records."""
    execute(database_url, "INSERT INTO devices (device_id, last_seen, state, state_ts, fw, bat) "
                          "VALUES (%s, %s, 'online', %s, %s, %s) ON CONFLICT (device_id) DO UPDATE "
                          "SET last_seen = excluded.last_seen, bat = excluded.bat, fw = excluded.fw",
            (device_id, last_seen, last_seen, fw, bat))


def draining(database_url: str, device_id: str, levels: list[float], every: timedelta) -> None:
    """Statuses with ``levels`` (%), the last one now, ``every`` apart."""
    now = datetime.now(UTC)
    for i, bat in enumerate(levels):
        execute(database_url, "INSERT INTO device_status (device_id, ts, state, bat, received_at) "
                              "VALUES (%s, %s, 'online', %s, now())", (device_id, now - (len(levels) - 1 - i) * every,
                                                                         bat))
    heard(database_url, device_id, levels[-1], now)


def devices(client: TestClient, role: str = "operator", region: str | None = None, **params: Any) -> Any:
    response = client.get(f"{API}/devices", params=params, headers=auth(role, region))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_device_with_its_battery_forecast_shipment_and_custody(client: TestClient, world: World,
                                                                 database_url: str) -> None:
    # Deadline in 10 h; 60 -> 50 % over the last 2 h: 5 %/h, empty in 10 h from now: lasts, just.
    deadline = datetime.now(UTC) + timedelta(hours=9)
    shipment = register(client, world, deadline=deadline.isoformat())
    tracker, seal = shipment["tracker_id"], shipment["seal_ids"][0]
    draining(database_url, tracker, [60, 55, 50], timedelta(hours=1))
    execute(database_url, "INSERT INTO latest_positions (device_id, seq, ts, lat, lon, spd, received_at) "
                          "VALUES (%s, 1, now(), %s, %s, 42, now())", (tracker, world.lat, world.lon))
    got = client.get(f"{API}/devices/{tracker}", headers=auth("operator")).json()
    assert (got["kind"], got["firmware"], got["state"]) == ("tracker", "1.2.0", "online")
    battery = got["battery"]
    assert (battery["level"], battery["points"], battery["drain_per_h"]) == (50.0, 3, 5.0)
    assert battery["hours_left"] == pytest.approx(10, abs=0.01) and battery["lasts_until_deadline"] is True
    assert [p["bat"] for p in battery["series"]] == [60.0, 55.0, 50.0]  # one reading an hour
    assert got["shipment"]["id"] == shipment["id"] and got["last_fix"]["spd"] == 42.0
    assert got["location"]["source"] == "device"
    assert got["custody"]["state"] == "issued" and got["custody"]["assignment"]["issued_office"] == world.departure
    assert got["credentials"] == {"signing_key": False, "must_sign": None, "provisioned_as": None, "since": None}
    assert got["flags"] == [] and [a["shipment"] for a in got["assignments"]] == [shipment["id"]]
    # The seal, never heard from: listed by custody, located by its truck's tracker, no trend.
    seal_row = client.get(f"{API}/devices/{seal}", headers=auth("operator")).json()
    assert (seal_row["kind"], seal_row["last_seen"], seal_row["location"]["source"]) == ("seal", None, "tracker")
    assert seal_row["battery"]["drain_per_h"] is None and seal_row["battery"]["lasts_until_deadline"] is None
    # A steeper drain does not last.
    draining(database_url, tracker, [40, 20], timedelta(hours=1))
    assert client.get(f"{API}/devices/{tracker}", headers=auth("operator")).json()["battery"][
        "lasts_until_deadline"] is False


def test_officers_see_the_devices_of_their_region_only(client: TestClient, world: World,
                                                      database_url: str) -> None:
    region = "devreg-" + world.departure.lower()
    created(client.post(f"{API}/regions", json={"code": region, "name": "devices test", "geometry": {
        "type": "Polygon", "coordinates": [[[world.lon - 0.1, world.lat - 0.1], [world.lon + 0.1, world.lat - 0.1],
                                            [world.lon + 0.1, world.lat + 0.1], [world.lon - 0.1, world.lat + 0.1],
                                            [world.lon - 0.1, world.lat - 0.1]]]}}, headers=auth("admin")))
    mine = register(client, world)["tracker_id"]
    elsewhere = "dev-elsewhere-" + world.departure.lower()
    heard(database_url, elsewhere, 90, datetime.now(UTC))
    officer = auth("officer", region)
    assert client.get(f"{API}/devices/{mine}", headers=officer).status_code == 200
    assert client.get(f"{API}/devices/{elsewhere}", headers=officer).status_code == 404
    listed = [d["id"] for d in devices(client, "officer", region, limit=500)["items"]]
    assert mine in listed and elsewhere not in listed
    assert elsewhere in [d["id"] for d in devices(client, q=elsewhere)["items"]]
    # Nor act on them.
    response = client.post(f"{API}/devices/{elsewhere}/return", json={"office": world.departure, "note": "x"},
                           headers=officer)
    assert response.status_code == 404


def test_filters_sort_and_pages(client: TestClient, database_url: str) -> None:
    prefix = unique("lst")
    now = datetime.now(UTC)
    for i in range(7):
        heard(database_url, f"{prefix}-{i}", 10.0 * i if i != 3 else None, now - timedelta(minutes=i))
    ids = [f"{prefix}-{i}" for i in range(7)]
    by_seen = devices(client, q=prefix)["items"]
    assert [d["id"] for d in by_seen] == ids
    assert [d["id"] for d in devices(client, q=prefix, sort="last_seen", order="asc")["items"]] == ids[::-1]
    # Battery: no reading sorts after every reading, either way.
    assert [d["id"] for d in devices(client, q=prefix, sort="battery", order="asc")["items"]] == [
        ids[0], ids[1], ids[2], ids[4], ids[5], ids[6], ids[3]]
    assert [d["id"] for d in devices(client, q=prefix, battery_below=25)["items"]] == ids[:3]
    assert devices(client, q=prefix, kind="tracker")["items"] == []
    assert len(devices(client, q=prefix, kind="unknown", state="online", flagged=False)["items"]) == 7
    # Pages of 3, sorted by battery descending: every device once, in order.
    seen: list[str] = []
    cursor = None
    while True:
        page = devices(client, q=prefix, sort="battery", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[6], ids[5], ids[4], ids[2], ids[1], ids[0], ids[3]]
    for bad in ({"cursor": "aWQ6NDI"}, {"sort": "colour"}, {"q": "a b"}, {"battery_below": 101}):
        response = client.get(f"{API}/devices", params=bad, headers=auth("operator"))
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][1] == next(iter(bad)), bad


# Custody workflow

def test_return_at_destination_then_issue_again(client: TestClient, world: World, database_url: str) -> None:
    shipment = register(client, world)
    seal = shipment["seal_ids"][0]
    assert client.post(f"{API}/devices/{seal}/return", json={"office": world.destination},
                       headers=auth("integrator")).status_code == 403
    # Elsewhere than the destination: a note is required.
    response = client.post(f"{API}/devices/{seal}/return", json={"office": world.departure}, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "note"]
    response = client.post(f"{API}/devices/{seal}/return", json={"office": "NOSUCHOFFICE"}, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "office"]
    back = client.post(f"{API}/devices/{seal}/return", json={"office": world.destination}, headers=auth("operator"))
    assert back.status_code == 200, back.text
    custody = back.json()["custody"]
    assert custody["state"] == "returned" and custody["assignment"]["returned_office"] == world.destination
    again = client.post(f"{API}/devices/{seal}/return", json={"office": world.destination}, headers=auth("operator"))
    assert again.status_code == 409 and "not issued" in again.json()["detail"]
    # Issued again: only at the office of departure of a registered shipment it serves.
    wrong = client.post(f"{API}/devices/{seal}/issue", json={"shipment": shipment["id"], "office": world.destination},
                        headers=auth("operator"))
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "office"]
    other = register(client, world)
    stranger = client.post(f"{API}/devices/{seal}/issue", json={"shipment": other["id"], "office": world.departure},
                           headers=auth("operator"))
    assert stranger.status_code == 409 and "neither the tracker nor a seal" in stranger.json()["detail"]
    issued = client.post(f"{API}/devices/{seal}/issue", json={"shipment": shipment["id"], "office": world.departure},
                         headers=auth("operator"))
    assert issued.status_code == 200 and issued.json()["custody"]["state"] == "issued"
    twice = client.post(f"{API}/devices/{seal}/issue", json={"shipment": shipment["id"], "office": world.departure},
                        headers=auth("operator"))
    assert twice.status_code == 409 and "already issued" in twice.json()["detail"]
    actions = query(database_url, "SELECT action, actor, detail->>'office' FROM audit_log WHERE object_type = "
                                  "'device' AND object_id = %s ORDER BY id", (seal,))
    assert actions == [("device.returned", "test-operator", world.destination),
                       ("device.issued", "test-operator", world.departure)]


def test_flags_assigned_to_closed_and_missing_after_arrival(client: TestClient, world: World,
                                                           database_url: str) -> None:
    arrived, closed = register(client, world), register(client, world)
    execute(database_url, "UPDATE shipments SET status = 'arrived', departed_at = now() - interval '3 days', "
                          "arrived_at = now() - interval '2 days' WHERE id = %s", (arrived["id"],))
    execute(database_url, "UPDATE shipments SET status = 'closed', departed_at = now() - interval '2 hours', "
                          "arrived_at = now() - interval '1 hour', closed_at = now() WHERE id = %s", (closed["id"],))
    flags = {d["id"]: d["flags"] for d in devices(client, flagged=True, limit=500)["items"]}
    assert flags[arrived["tracker_id"]] == ["missing_after_arrival"]
    assert flags[closed["tracker_id"]] == ["assigned_to_closed"]  # arrived an hour ago: within the grace
    assert client.post(f"{API}/devices/{arrived['tracker_id']}/return", json={"office": world.destination},
                       headers=auth("operator")).status_code == 200
    assert arrived["tracker_id"] not in {d["id"] for d in devices(client, flagged=True, limit=500)["items"]}
