"""Risk: a shipment's score and level (with the reasons and an operator's override),
the sensitive-goods list and the thresholds of each level. Scoring rules and the
profiles' defaults: docs/alerts.md, "Risk-based monitoring"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from protocol.alerts import RISK_LEVELS, RiskLevel
from tracking_api.schemas.alerts import UtcDatetime

__all__ = ["RISK_LEVELS", "RiskLevel"]

Factor = Literal["goods", "operator", "route", "undeclared"]
REASON_MAX = 500
LABEL_MAX = 200
# As the database checks it (schema/022 sensitive_goods.hs_prefix): an HS heading or a longer prefix.
HS_PREFIX = r"^[0-9]{2,10}$"


class RiskReason(BaseModel):
    factor: Factor = Field(description="goods: a sensitive HS code; undeclared: no goods declared; operator: "
                                       "confirmed alerts on its shipments; route: the route's record")
    points: int = Field(description="What this factor adds to the score")
    detail: str = Field(description="Why, in words (the HS code and list entry, the counts)")


class RiskOverride(BaseModel):
    level: RiskLevel
    reason: str
    by: str = Field(description="Who set it (token subject)")
    at: UtcDatetime


class Risk(BaseModel):
    """A shipment's risk: the computed score and level with their reasons, and the level in
    force (``level``: the override's when there is one, else the computed one)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "level": "high", "score": 55, "computed": "high",
        "reasons": [{"factor": "goods", "points": 40, "detail": "HS 271019 matches 2710 fuel (petroleum oils, "
                                                                "not crude): 40 points"},
                    {"factor": "operator", "points": 15, "detail": "1 confirmed alert on operator ACME "
                                                                   "LOGISTICS's shipments in 12 months"}]}]})

    level: RiskLevel = Field(description="The level in force: the thresholds and severities follow it")
    score: int | None = Field(description="Sum of the reasons' points; null: never assessed")
    computed: RiskLevel | None = Field(description="Level from the score: >= 50 high, >= 20 medium, else low")
    reasons: list[RiskReason]
    override: RiskOverride | None = None


def risk(stored: Mapping[str, Any], level: str) -> Risk:
    """The API's view of ``shipments.risk`` (jsonb, possibly ``{}`` for a shipment never
    assessed) and ``shipments.risk_level``."""
    return Risk.model_validate({"score": None, "computed": None, "reasons": [], **stored, "level": level})


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX), AfterValidator(_not_blank)]


class OverrideIn(BaseModel):
    """``PUT /shipments/{id}/risk``: set the level in force (null: back to the computed one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"level": "high", "reason": "intelligence report 2026/311 on this consignee"}]})

    level: RiskLevel | None = Field(description="The level to force; null clears the override")
    reason: Reason = Field(description="Why (audited): 1 to 500 characters")


class SensitiveGoodsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"label": "fuel (petroleum oils, not crude)", "points": 40}]})

    label: Annotated[str, Field(min_length=1, max_length=LABEL_MAX), AfterValidator(_not_blank)]
    points: int = Field(ge=0, le=100, description="Added to the score of a shipment declaring such goods")


GOODS_EXAMPLE: dict[str, Any] = {"hs_prefix": "2710", "label": "fuel (petroleum oils, not crude)", "points": 40,
                                 "updated_at": "2026-11-20T09:12:00Z", "updated_by": "risk-unit-3"}
PROFILE_EXAMPLE: dict[str, Any] = {"level": "high", "corridor_factor": 0.6, "stop_min_s": 600.0,
                                   "report_interval_s": 600.0, "border_dwell_factor": 0.5, "severity_shift": 1,
                                   "updated_at": "2026-11-20T09:12:00Z", "updated_by": None}


class SensitiveGoods(SensitiveGoodsIn):
    model_config = ConfigDict(json_schema_extra={"examples": [GOODS_EXAMPLE]})

    hs_prefix: str = Field(description="HS code prefix (2 to 10 digits): a declared code starting with it matches")
    updated_at: UtcDatetime
    updated_by: str | None


class ProfileIn(BaseModel):
    """A risk level's thresholds; every field required (a PUT replaces the profile)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"corridor_factor": 0.6, "stop_min_s": 600, "report_interval_s": 600, "border_dwell_factor": 0.5,
         "severity_shift": 1}]})

    corridor_factor: float = Field(gt=0, le=1, allow_inf_nan=False,
                                   description="Scales the route's corridor half-width (never widens it)")
    stop_min_s: float = Field(gt=0, le=7 * 86400, allow_inf_nan=False,
                              description="Unscheduled stop minimum duration, seconds")
    report_interval_s: float = Field(gt=0, le=7 * 86400, allow_inf_nan=False,
                                     description="Expected reporting interval (signal_lost, gps_jamming), seconds")
    border_dwell_factor: float = Field(gt=0, le=100, allow_inf_nan=False,
                                       description="Scales a border post's dwell limit")
    severity_shift: int = Field(ge=-1, le=1, description="Alert severity moved this many steps (-1, 0, 1)")


class Profile(ProfileIn):
    model_config = ConfigDict(json_schema_extra={"examples": [PROFILE_EXAMPLE]})

    level: RiskLevel
    updated_at: UtcDatetime
    updated_by: str | None
