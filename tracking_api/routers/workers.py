"""``/ingest/workers``: the ingest workers sharing the device topics, as they last
reported (``ingest_workers``): who leads, who has drained its backlog, who went
silent. Admins and operators only (docs/scaling.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tracking_api.auth import Principal
from tracking_api.deps import Conn, require
from tracking_api.schemas.errors import UNAUTHORIZED, error

router = APIRouter(prefix="/ingest", tags=["operations"])
Operator = Annotated[Principal, Depends(require("admin", "operator"))]

_SELECT = """
SELECT worker_id, started_at, heartbeat_at, drained, leader,
       extract(epoch FROM now() - heartbeat_at)::float8 AS silent_s
FROM ingest_workers ORDER BY worker_id
"""


class IngestWorker(BaseModel):
    worker_id: str = Field(description="CTT_WORKER_ID ('default' for a worker without one)")
    started_at: datetime = Field(description="When the worker's process started")
    heartbeat_at: datetime = Field(description="Its last heartbeat (every CTT_HEARTBEAT_S seconds)")
    silent_s: float = Field(description="Seconds since that heartbeat, on the database clock")
    drained: bool = Field(description="It had drained its broker backlog at that heartbeat")
    leader: bool = Field(description="It held the leader lock (runs the sweep and the officers' relay) then")


class IngestWorkers(BaseModel):
    items: list[IngestWorker]

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        "worker_id": "w1", "started_at": "2026-03-02T06:00:00Z", "heartbeat_at": "2026-03-02T08:15:00.5Z",
        "silent_s": 1.2, "drained": True, "leader": True}]}]})


@router.get("/workers", summary="The ingest workers and their last heartbeat", response_model=IngestWorkers,
            responses={**UNAUTHORIZED, **error(403, "Not an admin or operator", "role 'officer' may not do this")})
async def workers(conn: Conn, _caller: Operator) -> IngestWorkers:
    """Every worker that ever reported, oldest id first; one silent for longer than
    CTT_WORKER_EXPIRY_S no longer holds `signal_lost` back."""
    rows = await (await conn.execute(_SELECT)).fetchall()
    return IngestWorkers(items=[IngestWorker.model_validate(r) for r in rows])
