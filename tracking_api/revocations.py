"""Revoked bearer tokens (schema/018_revoked_tokens.sql), known in memory.

The stream hub loads the list when its database listener starts and again on every
``ctt_revocations`` notification (``ctt token revoke``), so checking a request costs a
set lookup. While the listener is down the list may be stale: ``is_revoked`` then asks
the database.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

CHANNEL = "ctt_revocations"
# Tokens that expired are refused anyway: only the others need remembering.
_ACTIVE = "SELECT token_id FROM revoked_tokens WHERE expires_at IS NULL OR expires_at > now()"
# The token's expiry, when a login recorded it (auth.login): the row is needed until then.
_REVOKE = """
INSERT INTO revoked_tokens (token_id, revoked_by, expires_at)
SELECT %(id)s, %(by)s, (SELECT to_timestamp(max((detail->>'expires_at')::bigint)) FROM audit_log
                        WHERE action = 'auth.login' AND detail->>'token_id' = %(id)s)
ON CONFLICT (token_id) DO NOTHING
"""
_ONE = "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = %s) AS revoked"


async def revoke(conn: AsyncConnection[Any], token_id: str, by: str) -> bool:
    """Revoke ``token_id`` (in the caller's transaction); False if it already was."""
    if not token_id.strip():
        raise ValueError(f"token id {token_id!r} is empty")
    cur = await conn.execute(_REVOKE, {"id": token_id, "by": by})
    return cur.rowcount == 1


class Revocations:
    """The ids of revoked tokens; ``current`` says whether the set follows the database."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._ids: frozenset[str] = frozenset()
        self.current = False

    async def load(self) -> frozenset[str]:
        """Read the list again; return the ids revoked since the previous read."""
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_ACTIVE)).fetchall()
        ids = frozenset(str(r["token_id"]) for r in rows)
        added, self._ids = ids - self._ids, ids
        return added

    def known(self, token_id: str | None) -> bool:
        """True if ``token_id`` is on the list in memory."""
        return token_id is not None and token_id in self._ids

    async def is_revoked(self, token_id: str | None) -> bool:
        """True if ``token_id`` is revoked: from memory while the list is current, else from the database."""
        if token_id is None:
            return False
        if self.current:
            return token_id in self._ids
        async with self._pool.connection() as conn:
            row = await (await conn.cursor(row_factory=dict_row).execute(_ONE, (token_id,))).fetchone()
        return bool(row and row["revoked"])
