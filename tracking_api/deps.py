"""Dependencies of the routes, typed: the settings, a database connection, the
live-stream hub, the Web Push notifier, the caller and role checks.

The app's lifespan (``tracking_api.main``) stores one ``Services`` in
``app.state``; ``services()`` is the one place that reads it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from tracking_api.auth import Principal, Role, TokenError, verify
from tracking_api.config import ApiSettings
from tracking_api.login_throttle import LoginThrottle
from tracking_api.push import PushNotifier
from tracking_api.stream import Hub

bearer = HTTPBearer(auto_error=False, description="A token from `ctt token --role ROLE`")


@dataclass(frozen=True)
class Services:
    """What the lifespan opens for every request: ``pool`` makes dict-row connections;
    ``push`` is None when Web Push is off (no VAPID key)."""

    settings: ApiSettings
    pool: AsyncConnectionPool
    hub: Hub
    push: PushNotifier | None
    logins: LoginThrottle


def services(request: Request) -> Services:
    found = getattr(request.app.state, "services", None)
    if not isinstance(found, Services):
        raise RuntimeError("the app's services are not open: its lifespan has not started")
    return found


App = Annotated[Services, Depends(services)]


def settings(request: Request) -> ApiSettings:
    return services(request).settings


def pool(app: App) -> AsyncConnectionPool:
    return app.pool


def hub(app: App) -> Hub:
    return app.hub


def push_notifier(app: App) -> PushNotifier | None:
    return app.push


async def connection(app: App) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled connection, in a transaction committed when the request succeeds."""
    async with app.pool.connection() as conn:  # the pool makes dict-row connections (main.lifespan)
        yield conn  # type: ignore[misc]


async def principal(app: App,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid, unrevoked token."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        caller = verify(app.settings, credentials.credentials)
    except TokenError as exc:
        raise invalid_token(str(exc)) from exc
    await refuse_revoked(app, caller)
    return caller


async def refuse_revoked(app: Services, caller: Principal) -> None:
    """401 if ``caller``'s token was revoked (``ctt token revoke``)."""
    if await app.hub.revocations.is_revoked(caller.token_id):
        raise invalid_token(f"token {caller.token_id} was revoked")


def invalid_token(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason,
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


Settings = Annotated[ApiSettings, Depends(settings)]
Pool = Annotated[AsyncConnectionPool, Depends(pool)]
LiveHub = Annotated[Hub, Depends(hub)]
Push = Annotated[PushNotifier | None, Depends(push_notifier)]
Conn = Annotated[AsyncConnection[DictRow], Depends(connection)]
Caller = Annotated[Principal, Depends(principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 otherwise, naming the role)."""

    def check(caller: Caller) -> Principal:
        if caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {caller.role!r} may not do this (allowed: {', '.join(roles)})")
        return caller

    return check
