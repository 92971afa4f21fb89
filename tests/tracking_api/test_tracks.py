"""Tracks and latest positions as GeoJSON, against the real database."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import execute, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

HOUR_MS = 3_600_000
FIXES = 480  # two hours at 15 s


def bearer(role: str, region: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(ApiSettings(), 'tester', role, region)}"}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@dataclass
class Trip:
    tracker: str
    shipment_id: int
    region: str
    start_ms: int


@pytest.fixture
def trip(database_url: str) -> Trip:
    """An in-transit shipment whose tracker reported every 15 s for the last 2 hours,
    heading north from (36.8, -1.3), in a region of its own, with an open deviation."""
    tag = uuid.uuid4().hex[:8]
    tracker, region = f"trk-{tag}", f"R{tag}"
    now = int(time.time() * 1000)
    start = now - 2 * HOUR_MS
    box = ((36.79, -1.31), (36.81, -1.31), (36.81, -1.29), (36.79, -1.29), (36.79, -1.31))
    zones = [ZoneSpec("Track office A", "office", box, "TRKA"), ZoneSpec("Track office B", "office", box, "TRKB")]
    route = RouteSpec(f"route-{tag}", ((36.8, -1.3), (36.8, -1.0)))
    shipment = ShipmentSpec(f"26TR{tag.upper()}00000", route.name, tracker, (), "TRKA", "TRKB", start,
                            now + 24 * HOUR_MS)
    with psycopg.connect(database_url) as conn:
        sid = register(conn, Scenario("tracks", [], zones, [route], [shipment], [], start, start, 15.0))[
            shipment.reference]
    execute(database_url, "INSERT INTO fixes (device_id, seq, ts, lat, lon, spd, received_at)"
                          " SELECT %s, g, to_timestamp((%s + g * 15000) / 1000.0), -1.3 + g * 1e-4, 36.8, 60, now()"
                          " FROM generate_series(0, %s - 1) g", (tracker, start, FIXES))
    execute(database_url, "INSERT INTO latest_positions SELECT * FROM fixes WHERE device_id = %s"
                          " ORDER BY ts DESC LIMIT 1", (tracker,))
    execute(database_url, "INSERT INTO regions (code, name, geometry) VALUES (%s, 'test', %s)",
            (region, '{"type": "Polygon", "coordinates": [[[36, -2], [37, -2], [37, -1], [36, -1], [36, -2]]]}'))
    execute(database_url, "INSERT INTO shipment_regions VALUES (%s, %s)", (sid, region))
    execute(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity)"
                          " VALUES ('route_deviation', %s, %s, now(), now(), 'high')", (sid, tracker))
    return Trip(tracker, sid, region, start)


def test_track_is_a_linestring_in_fix_time_order(client: TestClient, trip: Trip) -> None:
    r = client.get(f"/api/v1/devices/{trip.tracker}/track",
                   params={"from": iso(trip.start_ms), "to": iso(trip.start_ms + HOUR_MS)}, headers=bearer("operator"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "Feature" and body["geometry"]["type"] == "LineString"
    coords = body["geometry"]["coordinates"]
    assert len(coords) == 240 and body["properties"]["downsampled"] is False
    assert coords[0] == [36.8, pytest.approx(-1.3)]  # [lon, lat]
    times = body["properties"]["times"]
    assert times == sorted(times) and len(times) == 240


def test_long_range_is_downsampled_and_says_so(client: TestClient, trip: Trip) -> None:
    r = client.get(f"/api/v1/devices/{trip.tracker}/track",
                   params={"from": iso(trip.start_ms - 30 * 24 * HOUR_MS), "to": iso(trip.start_ms + 3 * HOUR_MS),
                           "max_points": 1000}, headers=bearer("admin"))
    props = r.json()["properties"]
    assert props["downsampled"] is True and props["bucket_s"] == 2603  # 30 days 3 hours / 1000 points, rounded up
    # two hours of fixes fall in three or four buckets of 43 minutes
    assert 2 <= props["points"] <= 4


def test_bad_range_is_refused_with_a_message(client: TestClient, trip: Trip) -> None:
    r = client.get(f"/api/v1/devices/{trip.tracker}/track",
                   params={"from": iso(trip.start_ms), "to": iso(trip.start_ms - 1000)}, headers=bearer("admin"))
    assert r.status_code == 422 and "must be before" in r.json()["detail"]
    r = client.get("/api/v1/devices/bad id!/track", headers=bearer("admin"))
    assert r.status_code == 422


def test_officers_see_only_their_region(client: TestClient, trip: Trip) -> None:
    mine = client.get(f"/api/v1/devices/{trip.tracker}/track", headers=bearer("officer", trip.region))
    assert mine.status_code == 200
    other = client.get(f"/api/v1/devices/{trip.tracker}/track", headers=bearer("officer", "elsewhere"))
    assert other.status_code == 404
    ids = [f["id"] for f in client.get("/api/v1/positions/latest",
                                       headers=bearer("officer", "elsewhere")).json()["features"]]
    assert trip.shipment_id not in ids


def test_latest_positions_of_in_transit_shipments(client: TestClient, trip: Trip, database_url: str) -> None:
    def features(*auth: str) -> dict[int, Any]:
        r = client.get("/api/v1/positions/latest", headers=bearer(*auth))
        assert r.status_code == 200
        return {f["id"]: f for f in r.json()["features"]}

    # Served from the stream's copy, which follows the database's notifications within moments.
    feature = wait_for(lambda: features("officer", trip.region).get(trip.shipment_id), 5, "the truck's position")
    assert feature["geometry"]["coordinates"] == [36.8, pytest.approx(-1.3 + (FIXES - 1) * 1e-4)]
    wait_for(lambda: features("officer", trip.region)[trip.shipment_id]["properties"]["open_alerts"]
             == ["route_deviation"], 5, "the open alert on the truck")
    assert feature["properties"]["device"] == trip.tracker
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE id = %s",
            (trip.shipment_id,))
    wait_for(lambda: trip.shipment_id not in features("admin"), 5, "the arrived truck to leave the map")


def test_tracks_need_a_token(client: TestClient, trip: Trip) -> None:
    assert client.get(f"/api/v1/devices/{trip.tracker}/track").status_code == 401
    assert client.get("/api/v1/positions/latest", headers={"Authorization": "Bearer junk"}).status_code == 401


def test_an_officer_gets_only_the_stretch_of_their_regions_shipment(client: TestClient, database_url: str) -> None:
    # The tracker carries shipment A (another region) for an hour, then B (the officer's region).
    tag = uuid.uuid4().hex[:8]
    tracker, mine, theirs = f"trk-{tag}", f"M{tag}", f"T{tag}"
    now = int(time.time() * 1000)
    start, handover = now - 2 * HOUR_MS, now - HOUR_MS
    box = ((36.79, -1.31), (36.81, -1.31), (36.81, -1.29), (36.79, -1.29), (36.79, -1.31))
    zones = [ZoneSpec("Track office A", "office", box, "TRKA"), ZoneSpec("Track office B", "office", box, "TRKB")]
    route = RouteSpec(f"route-{tag}", ((36.8, -1.3), (36.8, -1.0)))

    def carry(reference: str, departed_ms: int, region: str) -> int:
        spec = ShipmentSpec(reference, route.name, tracker, (), "TRKA", "TRKB", departed_ms, now + 24 * HOUR_MS)
        with psycopg.connect(database_url) as conn:
            sid = register(conn, Scenario("stretch", [], zones, [route], [spec], [], start, start, 15.0))[reference]
        # Far from the route: registration assigns no shipment to it by geometry, only this one.
        execute(database_url, "INSERT INTO regions (code, name, geometry) VALUES (%s, 'test', %s)",
                (region, '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}'))
        execute(database_url, "INSERT INTO shipment_regions VALUES (%s, %s)", (sid, region))
        return sid

    first = carry(f"26TA{tag.upper()}00000", start, theirs)
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = %s WHERE id = %s",
            (datetime.fromtimestamp(handover / 1000, UTC), first))
    carry(f"26TB{tag.upper()}00000", handover, mine)
    # Fixes from an hour before A's departure until now.
    execute(database_url, "INSERT INTO fixes (device_id, seq, ts, lat, lon, spd, received_at)"
                          " SELECT %s, g, to_timestamp((%s + g * 15000) / 1000.0), -1.3, 36.8, 60, now()"
                          " FROM generate_series(0, 3 * 240 - 1) g", (tracker, start - HOUR_MS))
    whole = {"from": iso(start - 2 * HOUR_MS), "to": iso(now + 1000)}

    def times(*auth: str) -> list[datetime]:
        r = client.get(f"/api/v1/devices/{tracker}/track", params=whole, headers=bearer(*auth))
        assert r.status_code == 200, r.text
        return [datetime.fromisoformat(t) for t in r.json()["properties"]["times"]]

    assert len(times("admin")) == 3 * 240
    got = times("officer", mine)
    assert len(got) == 240 and min(got) == datetime.fromtimestamp(handover / 1000, UTC)
    other = times("officer", theirs)  # A's officer: A's hour only, not B's, not before departure
    assert len(other) == 240 and max(other) < datetime.fromtimestamp(handover / 1000, UTC)
