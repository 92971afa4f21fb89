"""Device states as the kernel's columns (one array per field) and back.

The original fields are read with ``operator.attrgetter`` (in C); the newer
rules' fields travel as one packed record per state
(``state.RULES``), joined and split as bytes: per field per device work in
Python would cost more than the rules for a large fleet. A field the kernel
cannot hold as None uses a stand-in (NaN chainage, infinite distance);
countries are indices into the network's codes in the kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from geofence.state import DEFAULT_RULES, RULE_FIELDS, RULES, DeviceState

# Original kernel columns: field -> dtype. Bools are int8 (numba writes them as 0/1).
_DTYPES: dict[str, type] = {
    "deviation_open": np.int8, "out_since": np.int64, "out_lon": np.float64, "out_lat": np.float64,
    "last_out": np.int64, "in_since": np.int64, "chainage_m": np.float64, "distance_m": np.float64,
    "stopped": np.int8, "stop_alert": np.int8,
}
_NONE: dict[str, float] = {"chainage_m": math.nan, "distance_m": math.inf}
_BOOLS = frozenset({"deviation_open", "stopped"})
_COUNTRIES = ("fix_country", "country", "country_cand")


class StateColumns:
    """The kernel columns of many states, updated in place by the kernel."""

    def __init__(self, states: Sequence[DeviceState], codes: Sequence[str]) -> None:
        self.codes = list(codes)
        self.col: dict[str, np.ndarray] = {}
        for name, dtype in _DTYPES.items():
            values: Sequence[Any] = list(map(attrgetter(name), states))
            if name in _NONE:
                values = [_NONE[name] if v is None else v for v in values]
            self.col[name] = np.array(values, dtype=dtype)
        # One writable copy; the kernel updates its fields in place, through strided views
        # (a contiguous copy per field cost a single-tracker call more than its rules).
        self.record = np.frombuffer(b"".join([s.rules or DEFAULT_RULES for s in states]), dtype=RULES).copy()
        for name in RULE_FIELDS:
            self.col[name] = self._indices(self.record[name]) if name in _COUNTRIES else self.record[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.col[name]

    def _indices(self, alpha3: np.ndarray) -> np.ndarray:
        """Codes (S3, b"": none) as indices into ``self.codes``, -1 for none or one not loaded."""
        if not self.codes:
            return np.full(len(alpha3), -1, dtype=np.int64)
        index = {c.encode(): k for k, c in enumerate(self.codes)}
        return np.array([index.get(v, -1) for v in alpha3.tolist()], dtype=np.int64)

    def _rules_blobs(self) -> list[bytes]:
        record = self.record
        if self.codes:  # with none loaded the kernel left the countries as the states said
            table = np.array([c.encode() for c in self.codes] + [b""], dtype="S3")
            for name in _COUNTRIES:
                record[name] = table[self.col[name]]
        blob = record.tobytes()
        size = RULES.itemsize
        return [blob[k * size:(k + 1) * size] for k in range(len(record))]

    def states(self, shipment_id: list[int], last_ts: list[int], context: list[bytes],
               n_window: list[int]) -> list[DeviceState]:
        """The states after the kernel ran, with the fields kept outside the columns."""
        c = self.col
        bools = {n: (c[n] == 1).tolist() for n in _BOOLS}
        nones = {n: [v if math.isfinite(v) else None for v in c[n].tolist()] for n in _NONE}
        columns = zip(shipment_id, last_ts, bools["deviation_open"], c["out_since"].tolist(), c["out_lon"].tolist(),
                      c["out_lat"].tolist(), c["last_out"].tolist(), c["in_since"].tolist(), nones["distance_m"],
                      nones["chainage_m"], bools["stopped"], c["stop_alert"].tolist(), context, n_window,
                      self._rules_blobs(), strict=True)
        # Keywords spelled out: building a dict per state would cost a microsecond more each.
        return [DeviceState(shipment_id=sid, last_ts=ts, deviation_open=dev, out_since=out, out_lon=olon, out_lat=olat,
                            last_out=lout, in_since=ins, distance_m=dist, chainage_m=chain, stopped=stp,
                            stop_alert=alert, context=ctx, n_window=nw, rules=rules)
                for (sid, ts, dev, out, olon, olat, lout, ins, dist, chain, stp, alert, ctx, nw, rules) in columns]
