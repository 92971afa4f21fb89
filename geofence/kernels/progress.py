"""Progress rules of the many-devices kernel, on each fix's chainage (m along the
route, NaN outside the corridor): route reversal and suspicious reporting gaps."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from geofence.kernels.events import GAP, REVERSAL_ENDED, REVERSAL_OPENED, emit
from geofence.types import FloatArray, IntArray


class ReversalState(NamedTuple):
    """DeviceState's route_reversal fields, one entry per device, updated in place."""

    furthest: FloatArray  # m, NaN: none yet
    furthest_t: IntArray
    furthest_lon: FloatArray
    furthest_lat: FloatArray
    open: NDArray[np.int8]


@njit(cache=True)
def reversal_rule(fx, first, stop, pt_chain, reversal_m, end_m, st, ev, ne):  # type: ignore[no-untyped-def]
    """Route reversal of each device d over its new points ``[first[d], stop[d])``:
    opens when the chainage falls ``reversal_m`` below the furthest reached (started
    there), ends when it is back within ``end_m`` of it. Fixes outside the corridor
    say nothing about progress and are skipped."""
    t, lon, lat = fx.t, fx.lon, fx.lat
    for d in range(first.shape[0]):
        for i in range(first[d], stop[d]):
            c = pt_chain[i]
            if math.isnan(c):
                continue
            if math.isnan(st.furthest[d]) or c > st.furthest[d]:
                st.furthest[d] = c
                st.furthest_t[d] = t[i]
                st.furthest_lon[d] = lon[i]
                st.furthest_lat[d] = lat[i]
            behind = st.furthest[d] - c
            if st.open[d] == 1 and behind <= end_m:
                st.open[d] = 0
                ne = emit(ev, ne, d, REVERSAL_ENDED, -1, t[i], t[i], lon[i], lat[i], i, -1, 0.0)
            elif st.open[d] == 0 and behind >= reversal_m:
                st.open[d] = 1
                ne = emit(ev, ne, d, REVERSAL_OPENED, st.furthest_t[d], -1, t[i], st.furthest_lon[d],
                          st.furthest_lat[d], i, -1, 0.0)
    return ne


@njit(cache=True)
def gap_rule(fx, dev_start, first, stop, pt_chain, gap_min_ms, normal_mps, suspicious_s, ev, ne):  # type: ignore[no-untyped-def]
    """Suspicious gaps of each device d: between a new point and the fix before it
    (the point before ``first[d]`` is the previous batch's newest, when there is one),
    a gap of at least ``gap_min_ms`` whose time the distance covered at ``normal_mps``
    leaves ``suspicious_s`` or more unexplained. The distance is along the route
    when both fixes are in the corridor, else straight."""
    t, x, y, lon, lat = fx
    for d in range(first.shape[0]):
        for i in range(max(first[d], dev_start[d] + 1), stop[d]):
            prev = i - 1
            gap = t[i] - t[prev]
            if gap < gap_min_ms:
                continue
            if math.isnan(pt_chain[i]) or math.isnan(pt_chain[prev]):
                dist = math.hypot(x[i] - x[prev], y[i] - y[prev])
            else:
                dist = abs(pt_chain[i] - pt_chain[prev])
            unexplained = gap / 1000.0 - dist / normal_mps
            if unexplained >= suspicious_s:
                ne = emit(ev, ne, d, GAP, t[prev], t[i], t[i], lon[prev], lat[prev], i, prev, unexplained)
    return ne
