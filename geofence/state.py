"""Per-tracker detector state: explicit, serialisable, restorable.

A restarted ingest loads these and carries on exactly where it stopped, so an
alert is neither lost nor raised twice.
"""

from __future__ import annotations

import msgspec
import numpy as np

# A fix the detectors keep: time (epoch ms), degrees, metres in the route's
# projection, and whether it came as backlog. Packed, little-endian: a state is
# the same bytes on every machine.
CONTEXT = np.dtype([("t", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("x", "<f8"), ("y", "<f8"), ("backlog", "?")])


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
    context: bytes = b""  # those fixes as packed CONTEXT records
    n_window: int = 0

    @property
    def n_context(self) -> int:
        return len(self.context) // CONTEXT.itemsize


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DeviceState)


def dumps(state: DeviceState) -> bytes:
    return _encoder.encode(state)


def loads(data: bytes) -> DeviceState:
    """Decode a saved state; raises msgspec.DecodeError when it is not one."""
    return _decoder.decode(data)
