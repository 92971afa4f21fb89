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
                    "device_tamper"]
Severity = Literal["critical", "high", "medium", "low"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
# What happened to an alert: the engine opens, ends, updates, withdraws (late data showed it
# never happened) or contests it (late data disputes an alert an officer already acted on);
# officers acknowledge and resolve it.
AlertEvent = Literal["opened", "ended", "updated", "withdrawn", "contested", "acknowledged", "resolved"]

ALERT_TYPES: tuple[str, ...] = get_args(AlertType)
SEVERITIES: tuple[str, ...] = get_args(Severity)
ALERT_STATUSES: tuple[str, ...] = get_args(AlertStatus)
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)
SEVERITY: dict[str, Severity] = {
    "seal_breach": "critical",
    "device_tamper": "critical",
    "route_deviation": "high",
    "unscheduled_stop": "high",
    "signal_lost": "medium",
    "transit_overdue": "medium",
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
