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
    # suspicious_gap: was the newest fix inside the corridor (its chainage is chainage_m)
    in_corridor: bool = False
    # Itinerary (positions index the binding's offices): the office confirmed inside
    # (-1: none), its arrival (first fix inside), newest fix inside and where, seconds
    # of it spent stationary (ms), first fix outside it since (departure hysteresis)
    office_pos: int = -1
    office_in: int = -1
    office_last: int = -1
    office_lon: float = 0.0
    office_lat: float = 0.0
    office_still: int = 0
    office_out: int = -1
    # an office being entered, not yet confirmed: its first fix inside and where
    cand_pos: int = -1
    cand_in: int = -1
    cand_lon: float = 0.0
    cand_lat: float = 0.0
    cand_still: int = 0
    reached: int = 0  # bit p: arrived at position p
    skipped: int = 0  # bit p: office_skipped raised for position p
    dwell_open: bool = False
    # route_reversal: the furthest chainage reached (m), when and where
    furthest_m: float | None = None
    furthest_t: int = -1
    furthest_lon: float = 0.0
    furthest_lat: float = 0.0
    reversal_open: bool = False
    # Countries (alpha-3): of the newest fix with one, confirmed, and a candidate
    # change with its first fix; newest fix inside an itinerary office zone
    fix_country: str | None = None
    country: str | None = None
    country_cand: str | None = None
    country_cand_t: int = -1
    country_cand_lon: float = 0.0
    country_cand_lat: float = 0.0
    post_seen: int = -1

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
