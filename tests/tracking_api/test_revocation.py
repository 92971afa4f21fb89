"""Stolen tokens: revocation (``ctt token revoke``) on every request and open stream, the
end of a stream at its token's expiry, and the maximum token lifetime."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from ctt.config import REPO_ROOT
from tests.support import ApiServer, EventStream, StreamRefusedError, scalar, wait_for
from tracking_api.auth import ALGORITHM, TokenError, mint, verify
from tracking_api.config import ApiSettings


def revoke(database_url: str, token_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTT_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "ctt.cli", "token", "revoke", token_id], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def claims_of(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def session_status(client: TestClient, token: str) -> int:
    return client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_revoked_token_is_refused_on_every_request_and_the_revocation_audited(
        client: TestClient, database_url: str) -> None:
    stolen, other = mint(ApiSettings(), "stolen", "operator"), mint(ApiSettings(), "kept", "operator")
    assert session_status(client, stolen) == 200
    token_id = str(claims_of(stolen)["jti"])
    done = revoke(database_url, token_id)
    assert done.returncode == 0 and f"revoked token {token_id}" in done.stderr, done.stderr
    wait_for(lambda: session_status(client, stolen) == 401, 5, "the revoked token refused")
    r = client.get("/api/v1/shipments", headers={"Authorization": f"Bearer {stolen}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert session_status(client, other) == 200  # only that token
    assert scalar(database_url, "SELECT count(*) FROM audit_log WHERE action = 'token.revoked'"
                                " AND object_id = %s", (token_id,)) == 1
    again = revoke(database_url, token_id)
    assert again.returncode == 0 and "already revoked" in again.stderr


def test_a_revoked_token_gets_no_stream_ticket(client: TestClient, database_url: str) -> None:
    stolen = mint(ApiSettings(), "stolen-ticket", "operator")
    assert revoke(database_url, str(claims_of(stolen)["jti"])).returncode == 0
    wait_for(lambda: client.post("/api/v1/stream/tickets", headers={"Authorization": f"Bearer {stolen}"})
             .status_code == 401, 5, "no ticket for a revoked token")


def test_an_open_stream_ends_when_its_token_is_revoked(api_server: ApiServer, database_url: str) -> None:
    stolen = mint(ApiSettings(), "stolen-stream", "operator")
    stream = EventStream(api_server.url, stolen)
    kept = EventStream(api_server.url, mint(ApiSettings(), "kept-stream", "operator"))
    try:
        time.sleep(0.3)
        assert revoke(database_url, str(claims_of(stolen)["jti"])).returncode == 0
        (end,) = wait_for(lambda: stream.of("end"), 5, "the revoked stream's end")
        assert end.data == {"reason": "token revoked"}
        comments = kept.comments
        wait_for(lambda: kept.comments > comments + 1, 5, "the other stream going on")
        assert kept.of("end") == []
        with pytest.raises(StreamRefusedError) as refused:
            EventStream(api_server.url, stolen)  # and it cannot reconnect
        assert refused.value.status == 401
    finally:
        stream.close()
        kept.close()


def test_an_open_stream_ends_when_its_token_expires(api_server: ApiServer) -> None:
    stream = EventStream(api_server.url, mint(ApiSettings(), "short-lived", "operator", ttl_s=2))
    try:
        started = time.monotonic()
        (end,) = wait_for(lambda: stream.of("end"), 5, "the expired stream's end")
        assert end.data == {"reason": "token expired"} and time.monotonic() - started < 3
    finally:
        stream.close()


def forge(settings: ApiSettings, lifetime_s: int, **drop: bool) -> str:
    """A token signed with the right key (a careless minting service) living ``lifetime_s``."""
    now = int(time.time())
    claims = {"sub": "long", "role": "admin", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "iat": now, "exp": now + lifetime_s, "jti": "forged-" + str(lifetime_s)}
    return jwt.encode({k: v for k, v in claims.items() if k not in drop}, settings.jwt_secret, algorithm=ALGORITHM)


def test_a_token_living_longer_than_the_maximum_is_refused_when_verified(client: TestClient) -> None:
    settings = ApiSettings()
    limit = settings.token_max_ttl_s
    assert session_status(client, forge(settings, limit)) == 200
    assert session_status(client, forge(settings, limit + 1)) == 401
    with pytest.raises(TokenError, match="more than CTT_TOKEN_MAX_TTL_S"):
        verify(settings, forge(settings, limit + 1))
    with pytest.raises(TokenError, match="at most"):
        mint(settings, "long", "admin", ttl_s=limit + 1)


@pytest.mark.parametrize("claim", ["iat", "jti"])
def test_a_token_without_issue_time_or_id_is_refused(client: TestClient, claim: str) -> None:
    # Without iat its lifetime is unknown; without jti it could never be revoked.
    assert session_status(client, forge(ApiSettings(), 60, **{claim: True})) == 401
