"""Per-tracker detector state: explicit, serialisable, restorable.

A restarted ingest loads these and carries on exactly where it stopped, so an
alert is neither lost nor raised twice.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

# A fix the detectors keep: time (epoch ms), degrees, metres in the route's
# projection, and whether it came as backlog. Packed, little-endian: a state is
# the same bytes on every machine.
CONTEXT = np.dtype([("t", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("x", "<f8"), ("y", "<f8"), ("backlog", "?")])
# The newer rules' state, one packed record per tracker (DeviceState.rules). Times are fix
# times (ms, -1 none), flags int8, countries alpha-3 (b"": none).
RULES = np.dtype([
    ("in_corridor", "i1"),  # suspicious_gap: was the newest fix inside the corridor
    # Itinerary (positions index the binding's offices): the office confirmed inside
    # (-1: none), its arrival (first fix inside), newest fix inside and where, time
    # of it spent stationary (ms), first fix outside it since (departure hysteresis)
    ("office_pos", "<i8"), ("office_in", "<i8"), ("office_last", "<i8"), ("office_lon", "<f8"),
    ("office_lat", "<f8"), ("office_still", "<i8"), ("office_out", "<i8"),
    # an office being entered, not yet confirmed: its first fix inside, where, stationary ms
    ("cand_pos", "<i8"), ("cand_in", "<i8"), ("cand_lon", "<f8"), ("cand_lat", "<f8"), ("cand_still", "<i8"),
    ("reached", "<i8"),  # bit p: arrived at position p
    ("skipped", "<i8"),  # bit p: office_skipped raised for position p
    ("dwell_open", "i1"),
    # route_reversal: the furthest chainage reached (m, NaN none), when and where
    ("furthest_m", "<f8"), ("furthest_t", "<i8"), ("furthest_lon", "<f8"), ("furthest_lat", "<f8"),
    ("reversal_open", "i1"),
    # Countries: of the newest fix with one, confirmed, a candidate change with its first
    # fix; the newest fix inside an itinerary office zone
    ("fix_country", "S3"), ("country", "S3"), ("country_cand", "S3"), ("country_cand_t", "<i8"),
    ("country_cand_lon", "<f8"), ("country_cand_lat", "<f8"), ("post_seen", "<i8"),
])
_COUNTRY_FIELDS = frozenset({"fix_country", "country", "country_cand"})
_FLAGS = frozenset({"in_corridor", "dwell_open", "reversal_open"})
RULE_FIELDS: tuple[str, ...] = tuple(RULES.names or ())


def _default_rules() -> bytes:
    record = np.zeros(1, dtype=RULES)
    for name in ("office_pos", "office_in", "office_last", "office_out", "cand_pos", "cand_in", "furthest_t",
                 "country_cand_t", "post_seen"):
        record[name] = -1
    record["furthest_m"] = np.nan
    return record.tobytes()


DEFAULT_RULES = _default_rules()


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
    # The itinerary, border, reversal and gap rules' fields as one packed RULES record
    # (empty: all defaults). Packed, because a field each would cost every tracker of
    # every batch more in Python than the rules themselves; read them with ``rule``.
    rules: bytes = b""

    @property
    def n_context(self) -> int:
        return len(self.context) // CONTEXT.itemsize

    def rule(self, name: str) -> Any:
        """One field of the rules record as Python: None for no chainage or country."""
        value = np.frombuffer(self.rules or DEFAULT_RULES, dtype=RULES)[0][name]
        if name in _COUNTRY_FIELDS:
            return value.decode() or None
        if name == "furthest_m":
            return None if np.isnan(value) else float(value)
        return bool(value) if name in _FLAGS else value.item()

    @property
    def office_pos(self) -> int:
        return int(self.rule("office_pos"))

    @property
    def dwell_open(self) -> bool:
        return bool(self.rule("dwell_open"))

    @property
    def reversal_open(self) -> bool:
        return bool(self.rule("reversal_open"))

    @property
    def country(self) -> str | None:
        """Where the tracker is (alpha-3), as last confirmed."""
        value: str | None = self.rule("country")
        return value


def with_rules(state: DeviceState, **fields: Any) -> DeviceState:
    """``state`` with some fields of its rules record replaced (countries as alpha-3 or None)."""
    record = np.frombuffer(state.rules or DEFAULT_RULES, dtype=RULES).copy()
    for name, value in fields.items():
        if name in _COUNTRY_FIELDS:
            value = (value or "").encode()
        elif name == "furthest_m" and value is None:
            value = np.nan
        record[name] = value
    return msgspec.structs.replace(state, rules=record.tobytes())


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DeviceState)


def dumps(state: DeviceState) -> bytes:
    return _encoder.encode(state)


def loads(data: bytes) -> DeviceState:
    """Decode a saved state; raises msgspec.DecodeError when it is not one."""
    return _decoder.decode(data)
