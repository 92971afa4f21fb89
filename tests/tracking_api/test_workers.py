"""``GET /ingest/workers``: the control room's operators see the workers; officers do not."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import execute, unique_prefix
from tests.tracking_api.test_tracks import bearer


def test_operators_see_each_worker_s_last_heartbeat(client: TestClient, database_url: str) -> None:
    worker = unique_prefix("w")
    execute(database_url, "INSERT INTO ingest_workers (worker_id, heartbeat_at, drained, leader) "
                          "VALUES (%s, now() - interval '10 s', true, true)", (worker,))
    response = client.get("/api/v1/ingest/workers", headers=bearer("operator"))
    assert response.status_code == 200, response.text
    mine = [w for w in response.json()["items"] if w["worker_id"] == worker]
    assert len(mine) == 1 and mine[0]["leader"] and mine[0]["drained"] and 9 < mine[0]["silent_s"] < 60


def test_an_officer_may_not_list_the_workers(client: TestClient) -> None:
    response = client.get("/api/v1/ingest/workers", headers=bearer("officer", "KE-MSA"))
    assert response.status_code == 403 and "officer" in response.json()["detail"]
    assert client.get("/api/v1/ingest/workers").status_code == 401
