"""The webhook event types and the body of each message.

The database writes each event's payload when the change commits (schema/029); the body
sent is rendered from it the same way at every attempt (same bytes, same signature for the
same timestamp). Alert events carry exactly the one alert object with ``event``
(``protocol.alerts.AlertChange``), shipment events
``{shipment, reference, kind, office, country, at, detail}``."""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from protocol.alerts import AlertChange

EventType = Literal["alert.opened", "alert.changed", "alert.escalated", "shipment.departed", "shipment.arrived",
                    "shipment.released", "shipment.border_crossed", "device.battery_low", "case.opened",
                    "case.closed"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
TEST = "webhook.test"  # a ping a subscriber asks for (POST /webhooks/{id}/test), never subscribed to
# Types whose data is the one alert object.
ALERT_TYPES = frozenset({"alert.opened", "alert.changed", "alert.escalated", "device.battery_low"})

_encoder = msgspec.json.Encoder()


def body(payload: dict[str, Any]) -> bytes:
    """The JSON body of an outbox payload ``{type, timestamp, data}`` (compact, UTF-8)."""
    if payload.get("type") in ALERT_TYPES:
        alert = msgspec.convert(payload["data"], AlertChange)
        payload = {**payload, "data": msgspec.to_builtins(alert)}
    return _encoder.encode(payload)


def message_id(outbox_id: int) -> str:
    """The ``webhook-id`` of an outbox event: the same at every attempt and redelivery."""
    return f"msg_{outbox_id}"
