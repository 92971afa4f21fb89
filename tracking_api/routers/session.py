"""``/session``: a client logs in with its token, and learns what it may do.

``POST`` is the login: it checks the token, appends ``auth.login`` to the audit
log and answers the session; ``GET`` answers the same without recording
anything (a page reload). Refused logins are counted and logged, not audited:
anyone can send a bad token, and the audit log is append-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from tracking_api import audit
from tracking_api.access import capabilities
from tracking_api.auth import Principal
from tracking_api.deps import App, Caller, Conn, bearer, principal
from tracking_api.metrics import LOGINS
from tracking_api.schemas.errors import error
from tracking_api.schemas.session import Session

router = APIRouter(tags=["session"])
log = structlog.get_logger("tracking_api.session")


async def login_caller(request: Request, app: App,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller of a login; a refusal is counted and logged with its reason, and too many
    from one address within ``CTT_LOGIN_WINDOW_S`` make its next attempts a 429."""
    client = request.client.host if request.client else "unknown"
    wait_s = app.logins.retry_after(client)
    if wait_s is not None:
        LOGINS.labels("throttled").inc()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many refused logins from {client}: retry in {wait_s} s",
                            headers={"Retry-After": str(wait_s)})
    try:
        return await principal(app, credentials)
    except HTTPException as exc:
        LOGINS.labels("refused").inc()
        app.logins.failed(client)
        log.warning("login refused", reason=exc.detail, client=client)
        raise


def session(caller: Principal) -> Session:
    expires = datetime.fromtimestamp(caller.expires_at or 0, UTC)
    return Session(subject=caller.subject, role=caller.role, region=caller.region, unit=caller.unit,
                   expires_at=expires,
                   capabilities=capabilities(caller.role))


@router.post("/session", response_model=Session, summary="Log in with a token (recorded in the audit log)",
             responses=error(429, "Too many refused logins from this address (CTT_LOGIN_MAX_FAILURES within "
                                  "CTT_LOGIN_WINDOW_S); Retry-After says when to try again",
                             "too many refused logins from 203.0.113.9: retry in 42 s"))
async def login(caller: Annotated[Principal, Depends(login_caller)], conn: Conn) -> Session:
    """Checks the bearer token and records the login (`auth.login`, with the
    token's id and expiry) in the audit log. Every role may log in."""
    await audit.record(conn, caller, "auth.login", "principal", caller.subject,
                       {"region": caller.region, "token_id": caller.token_id, "expires_at": caller.expires_at})
    LOGINS.labels("accepted").inc()
    return session(caller)


@router.get("/session", response_model=Session, summary="The caller's session (not recorded)")
async def current(caller: Caller) -> Session:
    """Who the token says the caller is, until when, and what they may change."""
    return session(caller)
