"""Webhook subscriptions, their delivery log, and the answers that show a secret (once)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tracking_api.webhooks.events import EventType, message_id

URL_MAX = 2048
# Printable ASCII without spaces: keeps NUL and control characters out of the database and the logs.
URL_PATTERN = r"^[!-~]+$"
DESCRIPTION_MAX = 500
DeliveryState = Literal["pending", "failed", "delivered", "dead"]

_SECRET_EXAMPLE = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oDOD8bNkFGIRQ="
WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 7, "url": "https://sw.example.org/ctt/hooks", "description": "National single window",
    "event_types": ["alert.opened", "shipment.arrived"], "enabled": True, "disabled_reason": None,
    "disabled_at": None, "allow_private": False, "created_by": "sw-ke", "created_at": "2026-12-01T09:00:00Z",
    "updated_at": "2026-12-01T09:00:00Z", "failing_since": None}
_ATTEMPT_EXAMPLE: dict[str, Any] = {"at": "2026-12-01T10:15:02.2Z", "status": 204, "latency_ms": 38.5, "error": None}
_DELIVERY_EXAMPLE: dict[str, Any] = {
    "outbox_id": 4711, "message_id": "msg_4711", "type": "alert.opened", "created_at": "2026-12-01T10:15:02.1Z",
    "state": "delivered", "attempts": 1, "next_attempt_at": None, "delivered_at": "2026-12-01T10:15:02.2Z",
    "last_status": 204, "last_error": None, "last_latency_ms": 38.5, "attempt_log": [_ATTEMPT_EXAMPLE]}


def _distinct(types: list[str]) -> list[str]:
    if len(set(types)) != len(types):
        raise ValueError("event_types lists a type twice")
    return types


EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=20,
                                              description="The event types to receive"),
                       AfterValidator(_distinct)]
Url = Annotated[str, Field(min_length=1, max_length=URL_MAX, pattern=URL_PATTERN,
                           description="Where to POST: https, to a host whose every address is public (http and "
                                       "private addresses only with allow_private)")]


class WebhookIn(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "url": "https://sw.example.org/ctt/hooks", "description": "National single window",
        "event_types": ["alert.opened", "shipment.arrived"]}]})

    url: Url
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    event_types: EventTypes
    allow_private: bool = Field(default=False, description="Allow http and private or loopback addresses "
                                                           "(admins and operators only)")


class WebhookPatch(BaseModel):
    """A change: only the fields given change. ``enabled: true`` enables a disabled subscription again."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    url: Url | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    event_types: EventTypes | None = None
    enabled: bool | None = None
    allow_private: bool | None = None


class Webhook(BaseModel):
    """A subscription as every read shows it (never its secret)."""

    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why it was disabled (persistent failure, 410 Gone, a user)")
    disabled_at: datetime | None
    allow_private: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = Field(description="First failure of the current run of failures")


class WebhookCreated(Webhook):
    """The new subscription with its signing secret: shown this once."""

    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE | {"secret": _SECRET_EXAMPLE}]})

    secret: str = Field(description="whsec_<base64>: verify the webhook-signature header with it")


class WebhookSecret(BaseModel):
    """A rotated secret: shown this once; the previous one signs nothing from now on."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 7, "secret": _SECRET_EXAMPLE}]})

    id: int
    secret: str


class Attempt(BaseModel):
    at: datetime
    status: int | None = Field(description="The receiver's HTTP status; null: no answer")
    latency_ms: float
    error: str | None


class Delivery(BaseModel):
    """One event to this subscription and its attempts (newest last, at most the last 50)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_EXAMPLE]})

    outbox_id: int = Field(description="The event; the webhook-id header is msg_<outbox_id>")
    message_id: str
    type: str
    created_at: datetime = Field(description="When the change committed")
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = Field(description="Null once delivered or dead")
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_latency_ms: float | None
    attempt_log: list[Attempt]


class DeliveryPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_DELIVERY_EXAMPLE], "next_cursor": None}]})

    items: list[Delivery]
    next_cursor: str | None = Field(description="Pass as `cursor` for older deliveries; null on the last page")


class TestSent(BaseModel):
    """An event queued for delivery (a ``webhook.test`` ping, or a redelivery)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"outbox_id": 4712, "message_id": "msg_4712"}]})

    outbox_id: int
    message_id: str


def delivery(row: dict[str, Any]) -> Delivery:
    """A delivery-log row (``_LOG`` of the router) as the API answers it."""
    done = row["state"] in ("delivered", "dead")
    return Delivery.model_validate({**row, "message_id": message_id(row["outbox_id"]),
                                    "next_attempt_at": None if done else row["next_attempt_at"]})
