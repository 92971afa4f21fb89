"""Topic names of the device contract (``ctt/v1/dev/{device_id}/{kind}``)."""

from __future__ import annotations

import re
from typing import Literal

PREFIX = "ctt/v1/dev/"
RecordKind = Literal["pos", "seal", "status"]
KINDS: tuple[RecordKind, ...] = ("pos", "seal", "status")
SUBSCRIPTIONS = tuple(f"{PREFIX}+/{kind}" for kind in KINDS)
_TOPIC = re.compile(r"ctt/v1/dev/([A-Za-z0-9_-]{1,64})/(pos|seal|status)")


class TopicError(ValueError):
    """A topic that is not one of the device record topics."""


def parse_topic(topic: str) -> tuple[str, RecordKind]:
    """``ctt/v1/dev/T1/pos`` -> ``("T1", "pos")``."""
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise TopicError(f"topic {topic!r} is not ctt/v1/dev/<device_id>/(pos|seal|status)")
    kind: RecordKind = match[2]  # type: ignore[assignment]
    return match[1], kind


def record_topic(device_id: str, kind: RecordKind) -> str:
    return f"{PREFIX}{device_id}/{kind}"


def ack_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/ack"

