"""Idempotency keys: an action sent again with the same ``Idempotency-Key`` (an officer's
phone retrying its queued actions) is done once; the repeats get the first response back.

The key (1-64 characters ``[A-Za-z0-9_-]``) belongs to the caller (token subject): two
callers' equal keys are unrelated. The first request's response (status, media type and the
exact body bytes) is stored with its request hash (SHA-256 over the method, the path with
its query, and the body) in the action's own transaction: a key exists only together with
the work it did. Then:

- the same key and the same request: the stored response, byte for byte, with
  ``Idempotent-Replayed: true``, and nothing done;
- the same key and another request: 422 naming ``Idempotency-Key``;
- two requests with one key at once: a transaction-scoped advisory lock on (caller, key)
  makes the second wait for the first's commit, then it gets the replay (one does the work);
- a refusal (4xx, 5xx) is not stored: it rolls back with the action, and the key stays free
  (a retry after the state changed gets the answer of that moment).

Keys live ``CTT_IDEMPOTENCY_TTL_S`` seconds; an expired key is a new key, and the escalation
sweep deletes expired rows (``expire``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from psycopg import AsyncConnection

from tracking_api.deps import Caller, Settings
from tracking_api.schemas.errors import invalid

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# The key's alphabet and length (the same as a device id's, by coincidence: not that definition).
KEY_CHARS = "A-Za-z0-9_-"
KEY_MAX = 64
PATTERN = rf"^[{KEY_CHARS}]{{1,{KEY_MAX}}}$"
# pg_advisory_xact_lock(int, int) class reserved for idempotency keys (a space apart from the
# one-bigint locks the sweeps take).
LOCK_CLASS = 0x1DE0
# Expired keys deleted per sweep round at most.
EXPIRE_BATCH = 10_000

_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s || ':' || %s))"
_FIND = """
SELECT request_hash, method, path, status, media_type, body FROM idempotency_keys
WHERE subject = %s AND key = %s AND expires_at > now()
"""
_STORE = """
INSERT INTO idempotency_keys (subject, key, method, path, request_hash, status, media_type, body, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))
ON CONFLICT (subject, key) DO UPDATE SET
    method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
    media_type = EXCLUDED.media_type, body = EXCLUDED.body, created_at = now(), expires_at = EXCLUDED.expires_at
"""
_EXPIRE = """
DELETE FROM idempotency_keys WHERE (subject, key) IN (
    SELECT subject, key FROM idempotency_keys WHERE expires_at <= now() LIMIT %s)
"""

Action = Callable[[], Awaitable[Response]]


@dataclass(frozen=True)
class Idempotency:
    """One request's key (None: no header, the action simply runs) and what identifies the request."""

    key: str | None
    subject: str
    method: str
    path: str
    request_hash: bytes
    ttl_s: float

    async def run(self, conn: AsyncConnection[Any], action: Action) -> Response:
        """``action``'s response, or the stored one if this key already did this request."""
        if self.key is None:
            return await action()
        async with conn.transaction():
            await conn.execute(_LOCK, (LOCK_CLASS, self.subject, self.key))
            stored = await (await conn.execute(_FIND, (self.subject, self.key))).fetchone()
            if stored is not None:
                return self._replay(stored)
            response = await action()
            if 200 <= response.status_code < 300:
                await conn.execute(_STORE, (self.subject, self.key, self.method, self.path, self.request_hash,
                                            response.status_code, response.media_type or "application/octet-stream",
                                            bytes(response.body), self.ttl_s))
            return response

    def _replay(self, stored: Any) -> Response:
        if bytes(stored["request_hash"]) != self.request_hash:
            raise invalid((("header", HEADER), f"key {self.key!r} was used for another request "
                                               f"({stored['method']} {stored['path']}); use a new key per action"))
        return Response(bytes(stored["body"]), status_code=stored["status"], media_type=stored["media_type"],
                        headers={REPLAYED: "true"})


def request_hash(method: str, path: str, body: bytes) -> bytes:
    """SHA-256 over the method, the path with its query, and the body (NUL-separated)."""
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).digest()


async def idempotency(
    request: Request, caller: Caller, settings: Settings,
    key: Annotated[str | None, Header(alias=HEADER, pattern=PATTERN, description=(
        "Sends this action at most once: a repeat with the same key and request gets the first response "
        "again (header `Idempotent-Replayed: true`); the same key with another request is a 422"))] = None,
) -> Idempotency:
    """The request's ``Idempotency-Key`` and hash (the body is read here; FastAPI caches it)."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body() if key is not None else b""
    return Idempotency(key, caller.subject, request.method, path, request_hash(request.method, path, body),
                       settings.idempotency_ttl_s)


Idempotent = Annotated[Idempotency, Depends(idempotency)]


async def expire(conn: AsyncConnection[Any]) -> int:
    """Deletes up to ``EXPIRE_BATCH`` expired keys; how many."""
    cursor = await conn.execute(_EXPIRE, (EXPIRE_BATCH,))
    return cursor.rowcount
