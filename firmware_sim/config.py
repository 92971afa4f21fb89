"""Simulator settings: the broker from the ``CTT_*`` base, the corridor from ``CTT_SIM_CORRIDOR``."""

from __future__ import annotations

from pydantic import Field

from ctt_common.settings import ServiceSettings


class SimSettings(ServiceSettings):
    corridor: str = Field(default="northern", validation_alias="CTT_SIM_CORRIDOR")
