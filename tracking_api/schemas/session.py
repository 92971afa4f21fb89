"""The caller's session: who the token says they are and what they may change."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tracking_api.access import Capability
from tracking_api.auth import Role


class Session(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "subject": "officer.malaba", "role": "officer", "region": "KE-WEST", "unit": "MLB-MOBILE-1",
        "expires_at": "2026-11-23T23:00:00Z",
        "capabilities": ["move_shipments", "act_on_alerts"]}]})

    subject: str = Field(description="The token's `sub`")
    role: Role
    region: str | None = Field(description="An officer's region code; null for other roles")
    unit: str | None = Field(default=None, description="The unit (GET /units) the token names; alerts assigned to "
                                                       "it are the caller's too (GET /alerts?assigned=me)")
    expires_at: datetime = Field(description="When the token expires (UTC)")
    capabilities: list[Capability] = Field(description=(
        "What the role may change: define_geography (routes, zones), define_regions, register_shipments, "
        "move_shipments (depart/arrive/close), act_on_alerts (ack/resolve). Reading is open to every role; "
        "an officer sees their region only"))
