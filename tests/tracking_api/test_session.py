"""Logging in: the session answer, the audit record, refusals counted."""

from __future__ import annotations

from datetime import datetime

import jwt
from fastapi.testclient import TestClient

from tests.support import scalar
from tests.tracking_api.geo_support import API, auth, unique
from tracking_api.config import ApiSettings


def _logins(database_url: str, subject: str) -> list[dict[str, object]]:
    rows = scalar(database_url, "SELECT coalesce(json_agg(detail ORDER BY id), '[]') FROM audit_log"
                                " WHERE action = 'auth.login' AND actor = %s", (subject,))
    return list(rows)


def test_a_login_is_recorded_with_the_token_id(client: TestClient, database_url: str) -> None:
    subject = unique("officer-")
    headers = auth("officer", "KE-WEST", subject=subject)
    claims = jwt.decode(headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})

    response = client.post(f"{API}/session", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["subject"], body["role"], body["region"]) == (subject, "officer", "KE-WEST")
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]
    assert _logins(database_url, subject) == [{"region": "KE-WEST", "token_id": claims["jti"],
                                               "expires_at": claims["exp"]}]


def test_reading_the_session_records_nothing(client: TestClient, database_url: str) -> None:
    subject = unique("operator-")
    response = client.get(f"{API}/session", headers=auth("operator", subject=subject))
    assert response.status_code == 200
    assert response.json()["capabilities"] == ["define_geography", "register_shipments", "move_shipments",
                                               "act_on_alerts"]
    assert _logins(database_url, subject) == []


def test_a_refused_login_is_counted_not_audited(client: TestClient, database_url: str) -> None:
    before = _refused(client)
    expired = jwt.encode({"sub": "late", "role": "admin", "iss": "ctt", "aud": "ctt-api", "exp": 1, "iat": 0,
                          "jti": "late"},
                         ApiSettings().jwt_secret, algorithm="HS256")
    response = client.post(f"{API}/session", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"
    assert _refused(client) == before + 1
    assert _logins(database_url, "late") == []


def _refused(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('ctt_api_logins_total{outcome="refused"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
