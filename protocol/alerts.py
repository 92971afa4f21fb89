"""The one alert object: what ``ctt/v1/alerts/{type}`` carries, what the live
stream's ``alert`` events and Web Push carry, and what ``GET /alerts`` returns.

Every producer builds it with ``Alert`` from the database's ``alert_view`` row
and encodes it with ``encode_change``; times are RFC 3339 in UTC with a ``Z``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import msgspec

AlertType = Literal["route_deviation", "unscheduled_stop", "seal_breach", "transit_overdue", "signal_lost",
                    "device_tamper", "border_bypass", "office_skipped", "border_dwell", "seal_mismatch",
                    "low_battery", "suspicious_gap", "gps_jamming", "route_reversal", "device_battery"]
Severity = Literal["critical", "high", "medium", "low"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
# How officers closed it: what the risk unit's KPIs count (confirmed vs false alarms).
Outcome = Literal["false_alarm", "technical_fault", "confirmed_irregularity", "goods_seized", "other"]
RiskLevel = Literal["low", "medium", "high"]
# What happened to an alert: the engine opens, ends, updates, withdraws (late data showed it
# never happened) or contests it (late data disputes an alert an officer already acted on);
# officers acknowledge, assign and resolve it; unanswered past its response time, it is escalated.
AlertEvent = Literal["opened", "ended", "updated", "withdrawn", "contested", "acknowledged", "resolved",
                     "assigned", "escalated"]

ALERT_TYPES: tuple[str, ...] = get_args(AlertType)
SEVERITIES: tuple[str, ...] = get_args(Severity)
ALERT_STATUSES: tuple[str, ...] = get_args(AlertStatus)
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
CONFIRMED: frozenset[str] = frozenset({"confirmed_irregularity", "goods_seized"})
RISK_LEVELS: tuple[str, ...] = get_args(RiskLevel)
# Base severities, for a medium-risk shipment: the database shifts them one step up
# for high risk and one down for low risk (risk_profiles.severity_shift, schema/022).
SEVERITY: dict[str, Severity] = {
    "seal_breach": "critical",
    "device_tamper": "critical",
    "border_bypass": "critical",
    "route_deviation": "high",
    "unscheduled_stop": "high",
    "office_skipped": "high",
    "seal_mismatch": "high",
    "suspicious_gap": "high",
    "gps_jamming": "high",
    "route_reversal": "high",
    "signal_lost": "medium",
    "transit_overdue": "medium",
    "border_dwell": "medium",
    "device_battery": "medium",
    "low_battery": "low",
}


class Alert(msgspec.Struct, kw_only=True):
    """An alert as every consumer sees it. Times are fix times (``started_at``,
    ``ended_at``, ``crossed_at``) or wall times (the rest), all UTC."""

    id: int
    type: AlertType
    shipment: int
    reference: str
    device: str
    started_at: datetime
    ended_at: datetime | None
    crossed_at: datetime
    lat: float | None
    lon: float | None
    severity: Severity
    status: AlertStatus
    late: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    withdrawn: bool
    contested: bool
    contested_reason: str | None
    # Whose ground (ISO 3166-1 alpha-3) the condition is on; null where no country is loaded.
    country: str | None = None
    # Alerts of one condition of one truck across its shipments share it (the first one's id).
    incident: int | None = None
    outcome: Outcome | None = None
    risk_level: RiskLevel = "medium"
    vehicle: str | None = None
    # Per type: office codes, crossing countries, a suspicious gap's unexplained minutes and
    # reachable area (GeoJSON Polygon), a refusal's reason (docs/alerts.md).
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    # Who answers it: an officer (token subject) and/or a unit (units.code); null: nobody yet.
    assignee: str | None = None
    unit: str | None = None
    assigned_at: datetime | None = None
    # When its response time last passed unanswered, and how many times (supervisors were told).
    escalated_at: datetime | None = None
    escalation_level: int = 0


class AlertChange(Alert, kw_only=True):
    """An alert after a change, with what the change was (MQTT, stream, push)."""

    event: AlertEvent


FIELDS: tuple[str, ...] = Alert.__struct_fields__


def utc(value: datetime) -> datetime:
    """``value`` in UTC: msgspec then writes it with a ``Z``, whatever the session time zone."""
    return value.astimezone(UTC)


def _normalised(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items() if k in _CHANGE_FIELDS}


_CHANGE_FIELDS = frozenset(AlertChange.__struct_fields__)


def alert(row: Mapping[str, Any]) -> Alert:
    """The alert from an ``alert_view`` row (extra columns are ignored): ``GET /alerts``."""
    return msgspec.convert(_normalised(row), Alert)


def alert_change(event: str, row: Mapping[str, Any]) -> AlertChange:
    """The change message from an ``alert_view`` row (extra columns are ignored)."""
    return msgspec.convert({**_normalised(row), "event": event}, AlertChange)


_encoder = msgspec.json.Encoder()


def encode(value: Alert) -> bytes:
    return _encoder.encode(value)


def to_dict(value: Alert) -> dict[str, Any]:
    """Plain JSON-ready values (strings for times), for JSON encoders other than msgspec's."""
    return msgspec.to_builtins(value)  # type: ignore[no-any-return]
