"""One cursor style for every list (tracking_api/pagination.py): opaque cursors,
newest first, a bad cursor refused on ``cursor``; each list paged through."""

from __future__ import annotations

import base64
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.tracking_api.geo_support import API, auth, created, make_world
from tracking_api.pagination import decode, encode

# Every paginated list of the API, with the query that narrows it to a test's own rows.
LISTS = ("/shipments", "/alerts")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_cursor_round_trips_and_is_opaque() -> None:
    for last_id in (1, 42, 2**63 - 1):
        assert decode(encode(last_id)) == last_id
        assert str(last_id) not in encode(last_id)


@pytest.fixture(scope="module")
def mine(client: TestClient, database_url: str) -> dict[str, Any]:
    """Three shipments and three alerts on the first of them."""
    world = make_world(client)
    shipments = [created(client.post(f"{API}/shipments", json=world.shipment(), headers=auth("operator")))
                 for _ in range(3)]
    with psycopg.connect(database_url) as conn:
        alerts = [int(conn.execute(
            "INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lat, lon, severity)"
            " VALUES ('route_deviation', %s, %s, now(), now(), now(), 0, 0, 'high') RETURNING id",
            (shipments[0]["id"], shipments[0]["tracker_id"])).fetchone()[0])  # type: ignore[index]
            for _ in range(3)]
    return {"/shipments": ({}, [s["id"] for s in shipments]),
            "/alerts": ({"shipment": shipments[0]["id"]}, alerts)}


@pytest.mark.parametrize("path", LISTS)
def test_paging_through_a_list(client: TestClient, mine: dict[str, Any], path: str) -> None:
    narrow, expected = mine[path]
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = narrow | {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"{API}{path}", params=params, headers=auth("operator"))
        assert response.status_code == 200, response.text
        page = response.json()
        assert 0 < len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert decode(cursor) == seen[-1]  # the same style on every list
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)
    assert set(expected) <= set(seen)


BAD = ["abc", "42", _b64("id:-1"), _b64("id:9999999999999999999"), _b64("page:3"), "%%%", "x" * 65]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", BAD)
def test_a_bad_cursor_is_refused_naming_the_cursor(client: TestClient, path: str, cursor: str) -> None:
    response = client.get(f"{API}{path}", params={"cursor": cursor}, headers=auth("operator"))
    assert response.status_code == 422, response.text
    assert [issue["loc"] for issue in response.json()["detail"]] == [["query", "cursor"]]
