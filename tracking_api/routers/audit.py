"""``/audit/checkpoints``: the audit chain's signed heads (``ctt audit checkpoint``).

A copy of what the signer exported: an auditor compares them with the exported
file, or re-checks each signature with the public key (message format in
``ctt.audit_anchor.Checkpoint.message``). Admins and operators only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tracking_api.auth import Principal
from tracking_api.deps import Conn, require
from tracking_api.pagination import Paging
from tracking_api.schemas.errors import UNAUTHORIZED

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require("admin", "operator"))]

_SELECT = """
SELECT id, head_id, encode(head_hash, 'hex') AS head_hash, signed_at, encode(signature, 'hex') AS signature, key_id
FROM audit_checkpoints WHERE id < coalesce(%s, 9223372036854775807) ORDER BY id DESC LIMIT %s
"""


class AuditCheckpoint(BaseModel):
    id: int = Field(description="Checkpoint number: 1, 2, 3... without gaps")
    head_id: int = Field(description="The audit_log row signed (the chain's head then)")
    head_hash: str = Field(description="That row's hash, hex")
    signed_at: datetime
    signature: str = Field(description="Ed25519 signature, hex, over the canonical message")
    key_id: str = Field(description="First 16 hex digits of the SHA-256 of the raw public key")


class AuditCheckpoints(BaseModel):
    items: list[AuditCheckpoint]
    next_cursor: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        "id": 12, "head_id": 40211, "head_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "signed_at": "2026-03-02T08:15:00.123456Z", "signature": "5c1f" + "0" * 124, "key_id": "3a7bd3e2360a3d29"}],
        "next_cursor": "aWQ6MTI"}]})


@router.get("/checkpoints", summary="Signed checkpoints of the audit chain", response_model=AuditCheckpoints,
            responses=UNAUTHORIZED)
async def checkpoints(conn: Conn, _caller: Auditor, page: Paging) -> AuditCheckpoints:
    """The signed heads of the audit log, newest first, in pages (follow `next_cursor`)."""
    rows = await (await conn.execute(_SELECT, (page.below, page.fetch))).fetchall()
    items = [AuditCheckpoint.model_validate(r) for r in rows[:page.limit]]
    return AuditCheckpoints(items=items, next_cursor=page.next_cursor([i.id for i in items], len(rows)))
