"""A client flooding the API: geometry vertices, body size, track rows, login attempts.
Each limit is tried at the limit and one past it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctt.config import DB_API
from tests.support import as_role
from tests.tracking_api.geo_support import API, auth, unique
from tests.tracking_api.test_tracks import HOUR_MS, Trip, bearer, iso, trip  # noqa: F401 - the fixture
from tracking_api import deps
from tracking_api.config import ApiSettings
from tracking_api.login_throttle import LoginThrottle
from tracking_api.main import app, create_app
from tracking_api.schemas.geojson import MAX_VERTICES


def ring(positions: int, lon: float = 30.0, lat: float = -5.0) -> list[list[float]]:
    """A closed circle of ``positions`` positions (the first repeated last)."""
    points = [[round(lon + 0.5 * math.cos(2 * math.pi * i / (positions - 1)), 9),
               round(lat + 0.5 * math.sin(2 * math.pi * i / (positions - 1)), 9)] for i in range(positions - 1)]
    return [*points, points[0]]


def polyline(positions: int) -> list[list[float]]:
    return [[30.0 + i * 1e-4, -5.0 + (i % 2) * 1e-4] for i in range(positions)]


def bodies(positions: int) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "route": ("/routes", {"name": unique("limit "), "geometry": {"type": "LineString",
                                                                     "coordinates": polyline(positions)}}),
        "zone": ("/zones", {"name": unique("limit "), "kind": "stop",
                            "geometry": {"type": "Polygon", "coordinates": [ring(positions)]}}),
        "region": ("/regions", {"code": unique("L"), "name": "limit", "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[ring(positions // 2)], [ring(positions - positions // 2, 33.0)]]}}),
    }


@pytest.mark.parametrize("kind", ["route", "zone", "region"])
def test_geometry_vertices_at_the_limit_and_one_past(client: TestClient, kind: str) -> None:
    path, body = bodies(MAX_VERTICES)[kind]
    response = client.post(f"{API}{path}", json=body, headers=auth("admin"))
    assert response.status_code == 201, response.text[:300]
    path, body = bodies(MAX_VERTICES + 1)[kind]
    response = client.post(f"{API}{path}", json=body, headers=auth("admin"))
    assert response.status_code == 422, response.text[:300]
    (issue,) = response.json()["detail"]
    assert issue["loc"][:2] == ["body", "geometry"], issue
    assert f"{MAX_VERTICES + 1} positions: at most {MAX_VERTICES} per geometry" in issue["msg"]


@pytest.fixture
def small_body_app(database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=as_role(database_url, DB_API), max_body_bytes=4096)
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_body_past_the_cap_is_a_413_announced_or_streamed(small_body_app: TestClient) -> None:
    def route_of(size: int) -> bytes:
        geometry = b'{"type": "LineString", "coordinates": [[30, -5], [30.1, -5]]}'
        head = b'{"name": "' + unique("cap ").encode() + b'", "geometry": ' + geometry + b', "x": "'
        return head + b"y" * (size - len(head) - 2) + b'"}'

    at_limit = route_of(4096)
    assert len(at_limit) == 4096
    response = small_body_app.post(f"{API}/routes", content=at_limit, headers=auth("admin") | {
        "Content-Type": "application/json"})
    assert response.status_code == 422  # read whole: refused by the schema (the extra field), not by size
    past = route_of(4097)
    response = small_body_app.post(f"{API}/routes", content=past, headers=auth("admin") | {
        "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json() == {"detail": "request body larger than 4096 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
        for start in range(0, len(past), 1000):
            yield past[start:start + 1000]

    response = small_body_app.post(f"{API}/routes", content=chunks(), headers=auth("admin") | {
        "Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_track_past_the_row_limit_is_a_422_never_truncated(client: TestClient, trip: Trip) -> None:  # noqa: F811
    params: dict[str, str | int] = {"from": iso(trip.start_ms), "to": iso(trip.start_ms + 3 * HOUR_MS),
                                    "max_points": 20_000}
    for limit, status in ((480, 200), (479, 422)):  # the trip holds 480 fixes
        app.dependency_overrides[deps.settings] = lambda limit=limit: ApiSettings(track_max_rows=limit)
        try:
            response = client.get(f"/api/v1/devices/{trip.tracker}/track", params=params, headers=bearer("admin"))
        finally:
            app.dependency_overrides.pop(deps.settings)
        assert response.status_code == status, response.text[:300]
    assert "more than 479 positions" in response.json()["detail"] and "max_points" in response.json()["detail"]


@pytest.fixture
def throttled_app(database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=as_role(database_url, DB_API), login_max_failures=3, login_window_s=60)
    with TestClient(create_app(settings)) as c:
        yield c


def test_refused_logins_from_one_address_are_throttled(throttled_app: TestClient) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    for _ in range(3):  # at the limit: each refusal answered
        assert throttled_app.post(f"{API}/session", headers=bad).status_code == 401
    past = throttled_app.post(f"{API}/session", headers=bad)
    assert past.status_code == 429 and 1 <= int(past.headers["Retry-After"]) <= 60
    assert "too many refused logins" in past.json()["detail"]
    # Even a good token from that address waits: guessing cannot go on between real logins.
    assert throttled_app.post(f"{API}/session", headers=auth("admin")).status_code == 429
    assert throttled_app.get(f"{API}/session", headers=auth("admin")).status_code == 200  # only logins


def test_the_throttle_counts_per_address_within_its_window() -> None:
    throttle = LoginThrottle(max_failures=2, window_s=10)
    for t in (0.0, 1.0):
        assert throttle.retry_after("203.0.113.9", t) is None
        throttle.failed("203.0.113.9", t)
    assert throttle.retry_after("203.0.113.9", 2.0) == 8  # until the first failure is 10 s old
    assert throttle.retry_after("198.51.100.7", 2.0) is None  # another address
    assert throttle.retry_after("203.0.113.9", 10.0) is None  # the first left the window
