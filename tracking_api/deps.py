"""Dependencies of the routes: a database connection, the caller, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from tracking_api.auth import Principal, Role, TokenError, verify
from tracking_api.config import ApiSettings

bearer = HTTPBearer(auto_error=False, description="A token from `ctt token --role ROLE`")


def settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def connection(request: Request) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled connection, in a transaction committed when the request succeeds."""
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:  # the pool makes dict-row connections (main.lifespan)
        yield conn  # type: ignore[misc]


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid token."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify(settings(request), credentials.credentials)
    except TokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc


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
