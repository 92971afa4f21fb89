"""Devices through the API, against the real database: custody issued at registration (and
for a seal added later), the battery trend's least squares, the listing's filters, sort,
pages and regions, and the custody workflow (issue, return, flags), each step audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query, scalar
from tests.tracking_api.geo_support import API, World, auth, created, make_world

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
