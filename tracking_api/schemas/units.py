"""Units officers belong to (a token's ``unit`` claim): an alert may be assigned to one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tracking_api.schemas.checks import NO_NUL
from tracking_api.schemas.geography import REGION_CODE

_EXAMPLE: dict[str, Any] = {"code": "MSA-MOBILE-1", "name": "Mombasa mobile team 1", "region": "KE-MSA"}


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Mombasa mobile team 1", "region": "KE-MSA"}]})

    name: Annotated[str, NO_NUL] = Field(min_length=1, max_length=200)
    region: str = Field(pattern=REGION_CODE, description="The region (GET /regions) it works in")


class Unit(UnitIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    code: str = Field(description="Upper-case letters, digits, - and _, at most 32")


class UnitList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE]}]})

    items: list[Unit]
