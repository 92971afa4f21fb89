"""Single-use, short-lived tickets for ``GET /stream``.

A browser's EventSource cannot send an ``Authorization`` header, and a bearer token in
the URL lands in access logs. A page posts its bearer token to ``/stream/tickets`` and
opens the stream with the ticket instead: random, stored only as its SHA-256
(schema/017_stream_tickets.sql), valid for seconds and deleted by its first use, so a
logged URL holds nothing that opens a stream again. The ticket carries the token's
principal, expiry and id: the stream it opens still ends when that token does.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from tracking_api.auth import ROLES, Principal

TICKET_BYTES = 32

_ISSUE = """
INSERT INTO stream_tickets (digest, subject, role, region, token_id, token_expires_at, expires_at)
VALUES (%(digest)s, %(subject)s, %(role)s, %(region)s, %(token_id)s, %(token_expires_at)s, %(expires_at)s)
"""
_PURGE = "DELETE FROM stream_tickets WHERE expires_at < now()"
# Deleted whether fresh or not: a ticket is read once.
_REDEEM = "DELETE FROM stream_tickets WHERE digest = %s RETURNING *, expires_at > now() AS fresh"


class TicketError(ValueError):
    """A ticket that opens nothing: unknown (forged, or already used) or expired."""


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


async def issue(conn: AsyncConnection[DictRow], caller: Principal, ttl_s: float) -> tuple[str, datetime]:
    """A new ticket for ``caller`` and when it expires (``ttl_s`` from now, never after the token)."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    token_expires_at = datetime.fromtimestamp(caller.expires_at, UTC) if caller.expires_at is not None else None
    if token_expires_at is not None:
        expires_at = min(expires_at, token_expires_at)
    await conn.execute(_PURGE)
    await conn.execute(_ISSUE, {"digest": _digest(ticket), "subject": caller.subject, "role": caller.role,
                                "region": caller.region, "token_id": caller.token_id,
                                "token_expires_at": token_expires_at, "expires_at": expires_at})
    return ticket, expires_at


async def redeem(conn: AsyncConnection[DictRow], ticket: str) -> Principal:
    """The principal ``ticket`` was issued to, once; raises TicketError otherwise."""
    row = await (await conn.execute(_REDEEM, (_digest(ticket),))).fetchone()
    if row is None:
        raise TicketError("unknown stream ticket (forged, or already used)")
    if not row["fresh"]:
        raise TicketError("stream ticket expired")
    role = row["role"]
    assert role in ROLES, role
    expires = row["token_expires_at"]
    return Principal(row["subject"], role, row["region"], int(expires.timestamp()) if expires else None,
                     row["token_id"])
