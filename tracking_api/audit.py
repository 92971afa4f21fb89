"""Appending to the hash-chained audit log (the database computes the chain)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tracking_api.auth import Principal

_APPEND = """
INSERT INTO audit_log (actor, role, action, object_type, object_id, detail) VALUES (%s, %s, %s, %s, %s, %s)
"""


async def record(conn: AsyncConnection[Any], who: Principal, action: str, object_type: str,
                 object_id: object, detail: dict[str, Any] | None = None) -> None:
    """Append one state change, in the caller's transaction (it commits or rolls back with the change)."""
    await conn.execute(_APPEND, (who.subject, who.role, action, object_type,
                                 None if object_id is None else str(object_id), Jsonb(detail or {})))
