"""Device states as the kernel's columns (one array per field) and back.

Fields are taken positionally from ``msgspec.structs.astuple``, in C: per
field per device work in Python would cost more than the rules for a large
fleet. A field the kernel cannot hold as None uses a stand-in (NaN chainage,
infinite distance); countries travel as indices into the network's codes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from geofence.state import DeviceState

FIELDS: tuple[str, ...] = DeviceState.__struct_fields__
# Kernel columns: field -> dtype. Bools are int8 (numba writes them as 0/1).
_DTYPES: dict[str, type] = {
    "deviation_open": np.int8, "out_since": np.int64, "out_lon": np.float64, "out_lat": np.float64,
    "last_out": np.int64, "in_since": np.int64, "chainage_m": np.float64, "distance_m": np.float64,
    "stopped": np.int8, "stop_alert": np.int8, "in_corridor": np.int8,
    "office_pos": np.int64, "office_in": np.int64, "office_last": np.int64, "office_lon": np.float64,
    "office_lat": np.float64, "office_still": np.int64, "office_out": np.int64, "cand_pos": np.int64,
    "cand_in": np.int64, "cand_lon": np.float64, "cand_lat": np.float64, "cand_still": np.int64,
    "reached": np.int64, "skipped": np.int64, "dwell_open": np.int8,
    "furthest_m": np.float64, "furthest_t": np.int64, "furthest_lon": np.float64, "furthest_lat": np.float64,
    "reversal_open": np.int8,
    "fix_country": np.int64, "country": np.int64, "country_cand": np.int64, "country_cand_t": np.int64,
    "country_cand_lon": np.float64, "country_cand_lat": np.float64, "post_seen": np.int64,
}
_NONE: dict[str, float] = {"chainage_m": math.nan, "distance_m": math.inf, "furthest_m": math.nan}
_BOOLS = frozenset(name for name, dtype in _DTYPES.items() if dtype is np.int8 and name != "stop_alert")
_COUNTRIES = ("fix_country", "country", "country_cand")


class StateColumns:
    """The kernel columns of many states, updated in place by the kernel."""

    def __init__(self, states: Sequence[DeviceState], codes: Sequence[str]) -> None:
        rows = list(zip(*(msgspec.structs.astuple(s) for s in states), strict=True))
        index = {code: k for k, code in enumerate(codes)}
        self.codes = list(codes)
        self.col: dict[str, np.ndarray] = {}
        for k, name in enumerate(FIELDS):
            if name not in _DTYPES:
                continue
            values: Sequence[Any] = rows[k]
            if name in _COUNTRIES:
                values = [-1 if v is None else index.get(v, -1) for v in values]
            elif name in _NONE:
                values = [_NONE[name] if v is None else v for v in values]
            self.col[name] = np.array(values, dtype=_DTYPES[name])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.col[name]

    def states(self, fixed: dict[str, list[Any]]) -> list[DeviceState]:
        """The states after the kernel ran; ``fixed`` gives the fields kept outside the
        columns (shipment_id, last_ts, context, n_window), one list each."""
        lists: dict[str, list[Any]] = {}
        for name, arr in self.col.items():
            values: list[Any] = arr.tolist()
            if name in _BOOLS:
                values = [bool(v) for v in values]
            elif name in _NONE:
                values = [v if math.isfinite(v) else None for v in values]
            elif name in _COUNTRIES:
                values = [self.codes[v] if v >= 0 else None for v in values]
            lists[name] = values
        lists.update(fixed)
        names = list(lists)
        return [DeviceState(**dict(zip(names, row, strict=True)))
                for row in zip(*(lists[n] for n in names), strict=True)]
