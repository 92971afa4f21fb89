"""Device records and the device ack: the payloads of docs/protocol.md as
msgspec structs. Devices (the simulator) encode with them and ingest decodes
with them, so the two cannot drift. Ranges are plausibility limits."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: an absolute floor; ingest also bounds the age
MAX_INT64 = 2**63 - 1

Seq = Annotated[int, Meta(ge=0, le=MAX_INT64)]
EpochMs = Annotated[int, Meta(ge=MIN_TS_MS, le=MAX_INT64)]
Lat = Annotated[float, Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0)]
Speed = Annotated[float, Meta(ge=0.0, le=400.0)]  # km/h; a road vehicle never exceeds it
Heading = Annotated[float, Meta(ge=0.0, le=360.0)]
Accuracy = Annotated[float, Meta(ge=0.0, le=100_000.0)]
Percent = Annotated[float, Meta(ge=0.0, le=100.0)]
ShortText = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
SealEventName = Literal["armed", "closed", "opened", "tampered", "cut", "low_battery"]
DeviceState = Literal["online", "offline", "lost"]
# A record's signature (protocol/signing.py): base64url HMAC-SHA256, 43 characters; optional in v1.
Signature = Annotated[str, Meta(min_length=1, max_length=128)]


class Fix(msgspec.Struct, frozen=True, omit_defaults=True):
    """One position fix. ``ts`` in Unix epoch milliseconds (UTC), speed km/h,
    heading degrees from north, accuracy metres, battery percent."""

    seq: Seq
    ts: EpochMs
    lat: Lat
    lon: Lon
    spd: Speed | None = None
    hdg: Heading | None = None
    acc: Accuracy | None = None
    bat: Percent | None = None
    v: Literal[1] | None = None
    sig: Signature | None = None


class SealEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """An e-seal event; position in WGS84 degrees when the seal has one."""

    seq: Seq
    ts: EpochMs
    seal_id: ShortText
    event: SealEventName
    lat: Lat | None = None
    lon: Lon | None = None
    bat: Percent | None = None
    v: Literal[1] | None = None
    sig: Signature | None = None


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    """Device status (retained); the Last Will carries ``state = "lost"``."""

    ts: EpochMs
    state: DeviceState
    fw: ShortText | None = None
    bat: Percent | None = None
    buffered: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None
    sig: Signature | None = None


class DeviceAck(msgspec.Struct, frozen=True):
    """Backend -> device: every record with seq <= ``seq`` is stored durably."""

    seq: int


encode = msgspec.json.Encoder().encode
