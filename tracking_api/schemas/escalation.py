"""Response times per severity: how long an alert may stay unacknowledged before it escalates."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A week at most: past that an escalation tells nobody anything new.
Seconds = Annotated[int, Field(ge=1, le=604_800)]


class ResponseTimes(BaseModel):
    """Seconds to acknowledge an alert of each severity; the n-th escalation comes after
    ``seconds * 2^(n-1)``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"critical": 300, "high": 900, "medium": 3600, "low": 14400}]})

    critical: Seconds
    high: Seconds
    medium: Seconds
    low: Seconds
