"""Alerts as the API documents them, and the officers' workflow requests.

``Alert`` describes ``protocol.alerts.Alert`` (the one alert object) for the
OpenAPI document, field for field; the routes answer with the protocol's own
encoding of it, as MQTT, the live stream and Web Push do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from protocol.alerts import (
    ALERT_STATUSES,
    ALERT_TYPES,
    OUTCOMES,
    AlertStatus,
    AlertType,
    Outcome,
    RiskLevel,
    Severity,
)
from tracking_api.schemas.checks import NO_NUL

__all__ = ["ALERT_STATUSES", "ALERT_TYPES", "OUTCOMES", "AlertStatus", "AlertType", "Outcome", "Severity"]

NOTE_MAX = 2000


def one_of(name: str, allowed: tuple[str, ...]) -> BeforeValidator:
    """Refuse a value outside ``allowed`` with a message naming the parameter and the value
    (pydantic's own Literal message does not repeat what the caller sent)."""

    def check(value: object) -> object:
        if value is not None and value not in allowed:
            raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        return value

    return BeforeValidator(check)


def _utc(value: datetime) -> datetime:
    # The session time zone is the server's; the API always answers in UTC ("Z").
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

_EXAMPLE: dict[str, Any] = {
    "id": 42, "type": "unscheduled_stop", "shipment": 7, "reference": "26KE4795554000003", "device": "trk-0042",
    "started_at": "2026-11-23T06:21:10.836000Z", "ended_at": None, "crossed_at": "2026-11-23T06:36:25.836000Z",
    "lat": -3.5762, "lon": 38.9047, "severity": "high", "status": "acknowledged", "late": False,
    "acknowledged_by": "officer-kemba-17", "acknowledged_at": "2026-11-23T06:40:02.114000Z",
    "resolved_by": None, "resolved_at": None, "note": "driver called, tyre change at km 212",
    "created_at": "2026-11-23T06:36:31.002000Z", "updated_at": "2026-11-23T06:40:02.114000Z", "withdrawn": False,
    "contested": False, "contested_reason": None, "country": "KEN", "incident": 42, "outcome": None,
    "risk_level": "medium", "vehicle": "KCB 123A", "detail": {},
    "assignee": "officer-kemba-17", "unit": None, "assigned_at": "2026-11-23T06:39:12.530000Z",
    "escalated_at": None, "escalation_level": 0,
}


class Alert(BaseModel):
    """The one alert object (``protocol.alerts.Alert``): the same fields on MQTT, the live
    stream, Web Push and here. Times are RFC 3339 in UTC (``Z``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    type: AlertType
    shipment: int = Field(description="Shipment id")
    reference: str = Field(description="Shipment reference (MRN-like)")
    device: str = Field(description="Device id of the tracker or e-seal that raised it")
    started_at: UtcDatetime = Field(description="First record of the condition (fix time)")
    ended_at: UtcDatetime | None = Field(description="Last record of the condition; null while it lasts")
    crossed_at: UtcDatetime = Field(description="Record at which the rule's threshold was crossed")
    lat: float | None
    lon: float | None
    severity: Severity
    status: AlertStatus = Field(description="Officers' workflow, independent of whether the condition lasts")
    late: bool = Field(description="Raised from store-and-forward backlog or out-of-order data")
    acknowledged_by: str | None
    acknowledged_at: UtcDatetime | None
    resolved_by: str | None
    resolved_at: UtcDatetime | None
    note: str | None = Field(description="The latest workflow note (each one is also in the audit log)")
    created_at: UtcDatetime
    updated_at: UtcDatetime = Field(description="Last change (wall time): the newest of two copies wins")
    withdrawn: bool = Field(description="Late data showed the condition never happened (kept, never deleted)")
    contested: bool = Field(description="Late data disputes an alert an officer already acknowledged or "
                                        "resolved: kept as it was, with the reason")
    contested_reason: str | None = Field(description="Why late data disputes it; null unless contested")
    # Issue 13 (schema/022): documented here field for field, as protocol.alerts.Alert carries them.
    country: str | None = Field(description="Whose ground (ISO 3166-1 alpha-3) the condition is on; null where no "
                                            "country is loaded")
    incident: int | None = Field(description="Alerts of one condition of one truck across its shipments share it "
                                             "(the first one's id)")
    outcome: Outcome | None = Field(description=(
        "How the officer who resolved it judged it (false_alarm, technical_fault, confirmed_irregularity, "
        "goods_seized, other); null until resolved with one. confirmed_irregularity and goods_seized count as "
        "confirmed in the risk scoring and GET /kpi/risk"))
    risk_level: RiskLevel = Field(description="The shipment's risk level in force (its severity shift applied)")
    vehicle: str | None = Field(description="The truck's plate, when declared")
    detail: dict[str, Any] = Field(description="Per type: office codes, crossing countries, a suspicious gap's "
                                               "unexplained minutes and reachable area (GeoJSON Polygon), a "
                                               "refusal's reason (docs/alerts.md)")
    # Issue 14 (schema/027).
    assignee: str | None = Field(description="The officer (token subject) it is assigned to; null: nobody")
    unit: str | None = Field(description="The unit (GET /units) it is assigned to; null: none")
    assigned_at: UtcDatetime | None = Field(description="When it was last assigned")
    escalated_at: UtcDatetime | None = Field(description=(
        "When its response time (per severity, GET /escalation/response-times) last passed with nobody "
        "acknowledging it: the region's supervisors were told"))
    escalation_level: int = Field(description="How many times it was escalated (0: never)")


class AlertPage(BaseModel):
    """One page of alerts, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE], "next_cursor": "aWQ6NDE"}]})

    items: list[Alert]
    next_cursor: str | None = Field(description="null on the last page")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("note must not be blank")
    return value


Note = Annotated[str, Field(min_length=1, max_length=NOTE_MAX), AfterValidator(_not_blank), NO_NUL]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "calling the driver"}]})

    note: Note | None = Field(default=None, description="Optional, 1 to 2000 characters")


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"note": "seal re-armed at Malaba, cargo checked", "outcome": "false_alarm"}]})

    note: Note = Field(description="Why the alert is closed: required, 1 to 2000 characters")
    outcome: Annotated[Outcome, one_of("outcome", OUTCOMES)] = Field(description=(
        "The verdict the risk unit counts (required): " + ", ".join(OUTCOMES) + "; confirmed_irregularity and "
        "goods_seized open a case on the shipment (or add the alert to its open case) with the evidence"))


Subject = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$"), NO_NUL]
UnitCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,31}$")]


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"assignee": "officer-kemba-17", "unit": None, "incident": False},
        {"assignee": None, "unit": "MSA-MOBILE-1", "incident": True}]})

    assignee: Subject | None = Field(default=None, description="The officer (token subject); null: nobody")
    unit: UnitCode | None = Field(default=None, description="The unit (GET /units); null: none. An officer or "
                                                            "supervisor may name a unit of their own region only")
    incident: bool = Field(default=False, description=(
        "Assign every alert of the same incident (one truck's condition) that the caller may see and that is not "
        "resolved, not only this one"))


class Assigned(BaseModel):
    """The alerts an assignment changed (one, or the incident's), newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE]}]})

    items: list[Alert]
