"""Per-tracker detector state: explicit, serialisable, restorable.

A restarted ingest loads these and carries on exactly where it stopped, so an
alert is neither lost nor raised twice.
"""

from __future__ import annotations

import msgspec


class DeviceState(msgspec.Struct, kw_only=True):
    """Where a tracker's detectors stand. Times are fix times (epoch ms), -1 for none."""

    shipment_id: int
    last_ts: int = -1  # newest fix evaluated
    # route_deviation
    deviation_open: bool = False
    out_since: int = -1  # first fix of the current run outside the corridor
    out_lon: float = 0.0
    out_lat: float = 0.0
    last_out: int = -1  # newest fix outside the corridor
    in_since: int = -1  # first fix back inside while a deviation is open
    distance_m: float | None = None  # from the route, at the newest fix (None: farther than the grid reaches)
    chainage_m: float | None = None  # progress along the route at the newest fix inside the corridor
    # unscheduled_stop: the detector's window, then (at most) one fix held back
    # until its successor shows whether it is a multipath jump
    stopped: bool = False
    stop_alert: int = 0  # kernels.STOP_NONE / STOP_ALERTED / STOP_AUTHORISED
    ctx_t: list[int] = msgspec.field(default_factory=list)
    ctx_lon: list[float] = msgspec.field(default_factory=list)
    ctx_lat: list[float] = msgspec.field(default_factory=list)
    ctx_backlog: list[bool] = msgspec.field(default_factory=list)
    n_window: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DeviceState)


def dumps(state: DeviceState) -> bytes:
    return _encoder.encode(state)


def loads(data: bytes) -> DeviceState:
    """Decode a saved state; raises msgspec.DecodeError when it is not one."""
    return _decoder.decode(data)
