"""Topic names of the device contract (``ctt/v1/dev/{device_id}/{kind}``) and
the alert topic (``ctt/v1/alerts/{type}``)."""

from __future__ import annotations

import re
from typing import Literal

# A device id is also its MQTT client id and username (docs/protocol.md).
DEVICE_ID = r"[A-Za-z0-9_-]{1,64}"
DEVICE_ID_RE = re.compile(DEVICE_ID)
PREFIX = "ctt/v1/dev/"
ALERTS_PREFIX = "ctt/v1/alerts/"
ALERTS_FILTER = ALERTS_PREFIX + "#"
RecordKind = Literal["pos", "seal", "status"]
KINDS: tuple[RecordKind, ...] = ("pos", "seal", "status")
SUBSCRIPTIONS = tuple(f"{PREFIX}+/{kind}" for kind in KINDS)
SHARE_GROUP = DEVICE_ID  # a shared-subscription group name: no '/', '+' or '#' (MQTT 5, 4.8.2)
_TOPIC = re.compile(rf"ctt/v1/dev/({DEVICE_ID})/(pos|seal|status)")


class TopicError(ValueError):
    """A topic that is not one of the device record topics."""


def is_device_id(value: str) -> bool:
    return DEVICE_ID_RE.fullmatch(value) is not None


def parse_topic(topic: str) -> tuple[str, RecordKind]:
    """``ctt/v1/dev/T1/pos`` -> ``("T1", "pos")``."""
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise TopicError(f"topic {topic!r} is not ctt/v1/dev/<device_id>/(pos|seal|status)")
    kind: RecordKind = match[2]  # type: ignore[assignment]
    return match[1], kind


def record_topic(device_id: str, kind: RecordKind) -> str:
    return f"{PREFIX}{device_id}/{kind}"


def shared_subscriptions(group: str) -> tuple[str, ...]:
    """The device record topics as MQTT 5 shared subscriptions of ``group``: the
    broker hands each message to one member of the group (one ingest worker)."""
    if re.fullmatch(SHARE_GROUP, group) is None:
        raise TopicError(f"share group {group!r} is not 1-64 of A-Z a-z 0-9 _ -")
    return tuple(f"$share/{group}/{topic}" for topic in SUBSCRIPTIONS)


def ack_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/ack"


def alert_topic(alert_type: str) -> str:
    return f"{ALERTS_PREFIX}{alert_type}"
