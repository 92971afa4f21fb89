"""Itinerary rules of the many-devices kernel: arrival and departure milestones at
the offices of each device's itinerary, offices skipped, dwell at border posts.

Device d's itinerary is positions ``0..m-1`` (departure first, destination
last), their zones ``zone[off[d]:off[d + 1]]`` (-1: the office has no zone).
Times are fix times (ms); hysteresis on them keeps GPS scatter at a zone's
edge from making a truck arrive and leave many times.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from geofence.kernels.events import ARRIVED, DEPARTED, DWELL_ENDED, DWELL_OPENED, OFFICE_SKIPPED, emit
from geofence.kernels.zones import in_polygon
from geofence.types import BoolArray, FloatArray, IntArray

Int8Array = NDArray[np.int8]


class Itinerary(NamedTuple):
    """Every device's offices, flattened: device d's are ``[off[d], off[d + 1])``."""

    off: IntArray
    zone: IntArray  # zone index, -1 for none
    dwell_ms: IntArray  # border_dwell limit there, 0: not watched
    transit: BoolArray  # an office of transit: office_skipped watches it


class ItineraryState(NamedTuple):
    """DeviceState's itinerary fields, one entry per device, updated in place."""

    office_pos: IntArray
    office_in: IntArray
    office_last: IntArray
    office_lon: FloatArray
    office_lat: FloatArray
    office_still: IntArray
    office_out: IntArray
    cand_pos: IntArray
    cand_in: IntArray
    cand_lon: FloatArray
    cand_lat: FloatArray
    cand_still: IntArray
    reached: IntArray
    skipped: IntArray
    dwell_open: Int8Array


STILL_MPS = 1.0  # slower than this between two fixes inside an office zone counts as stationary


@njit(cache=True, inline="always")
def position_at(it, d, px, py, confirmed, cand, reached, zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y,  # type: ignore[no-untyped-def]
                zmax_x, zmax_y):
    """The itinerary position of device d whose zone contains (lon, lat), or -1.

    Where zones overlap: the office the truck is in or entering, then the
    first one not yet reached, then the first.
    """
    found = -1
    for k in range(it.off[d], it.off[d + 1]):
        z = it.zone[k]
        if z < 0 or not (zmin_x[z] <= px <= zmax_x[z] and zmin_y[z] <= py <= zmax_y[z]):
            continue
        if not in_polygon(z, px, py, zone_ring_off, ring_off, vx, vy):
            continue
        p = k - it.off[d]
        if p in (confirmed, cand):
            return p
        if found < 0 or ((reached >> found) & 1 == 1 and (reached >> p) & 1 == 0):
            found = p
    return found


@njit(cache=True)
def _depart(st, it, d, i, t, ev, ne):  # type: ignore[no-untyped-def]
    """Confirm device d's departure from its office at fix i: time = last fix inside."""
    p = st.office_pos[d]
    ne = emit(ev, ne, d, DEPARTED, st.office_in[d], st.office_last[d], t[i], st.office_lon[d],
              st.office_lat[d], i, p, st.office_still[d] / 1000.0)
    if st.dwell_open[d] == 1:
        st.dwell_open[d] = 0
        ne = emit(ev, ne, d, DWELL_ENDED, -1, st.office_last[d], t[i], st.office_lon[d], st.office_lat[d],
                  i, p, 0.0)
    st.office_pos[d] = -1
    st.office_out[d] = -1
    return ne


@njit(cache=True)
def _arrive(st, it, d, i, t, lon, lat, ev, ne):  # type: ignore[no-untyped-def]
    """Confirm device d's arrival at its candidate office at fix i: time = first fix inside.
    Every office of transit before it never arrived at is skipped, once."""
    p = st.cand_pos[d]
    st.reached[d] |= np.int64(1) << p
    st.office_pos[d] = p
    st.office_in[d] = st.cand_in[d]
    st.office_last[d] = t[i]
    st.office_lon[d] = lon[i]
    st.office_lat[d] = lat[i]
    st.office_still[d] = st.cand_still[d]
    st.office_out[d] = -1
    st.cand_pos[d] = -1
    ne = emit(ev, ne, d, ARRIVED, st.cand_in[d], -1, t[i], st.cand_lon[d], st.cand_lat[d], i, p, 0.0)
    base = it.off[d]
    for j in range(p):
        bit = np.int64(1) << j
        if it.transit[base + j] and it.zone[base + j] >= 0 and st.reached[d] & bit == 0 and st.skipped[d] & bit == 0:
            st.skipped[d] |= bit
            ne = emit(ev, ne, d, OFFICE_SKIPPED, st.cand_in[d], t[i], t[i], st.cand_lon[d], st.cand_lat[d],
                      i, j, float(p))
    return ne


@njit(cache=True)
def itinerary_rule(fx, dev_start, first, stop, it, zones, enter_ms, exit_ms, st, pt_office, ev, ne):  # type: ignore[no-untyped-def]
    """Milestones, skipped offices and border dwell of each device d over its new
    points ``[first[d], stop[d])`` (the point before ``first[d]``, when after
    ``dev_start[d]``, is its previous fix). Writes each new point's itinerary
    position (or -1) to ``pt_office``. ``zones``: the zone arrays in ``zone_at``'s order.
    """
    t, x, y, lon, lat = fx
    zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y = zones[:8]
    for d in range(first.shape[0]):
        if it.off[d + 1] == it.off[d]:
            for i in range(first[d], stop[d]):
                pt_office[i] = -1
            continue
        for i in range(first[d], stop[d]):
            pos = position_at(it, d, lon[i], lat[i], st.office_pos[d], st.cand_pos[d], st.reached[d], zone_ring_off,
                              ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y)
            pt_office[i] = pos
            if pos < 0 and st.office_pos[d] < 0:
                st.cand_pos[d] = -1
                continue  # the common case: on the road, in no office
            prev = i - 1 if i > dev_start[d] else -1
            dt = 0 if prev < 0 else t[i] - t[prev]
            still = prev >= 0 and math.hypot(x[i] - x[prev], y[i] - y[prev]) < STILL_MPS * dt / 1000.0
            if st.office_pos[d] >= 0:
                if pos == st.office_pos[d]:
                    if still and st.office_last[d] == t[prev]:
                        st.office_still[d] += dt
                    st.office_last[d] = t[i]
                    st.office_lon[d] = lon[i]
                    st.office_lat[d] = lat[i]
                    st.office_out[d] = -1
                    limit = it.dwell_ms[it.off[d] + pos]
                    if limit > 0 and st.dwell_open[d] == 0 and t[i] - st.office_in[d] >= limit:
                        st.dwell_open[d] = 1
                        ne = emit(ev, ne, d, DWELL_OPENED, st.office_in[d], -1, t[i], lon[i], lat[i], i, pos, 0.0)
                else:
                    if st.office_out[d] < 0:
                        st.office_out[d] = t[i]
                    if t[i] - st.office_out[d] >= exit_ms:
                        ne = _depart(st, it, d, i, t, ev, ne)
            if pos < 0 or pos == st.office_pos[d]:
                st.cand_pos[d] = -1
                continue
            if st.cand_pos[d] == pos:
                if still:
                    st.cand_still[d] += dt
            else:
                st.cand_pos[d] = pos
                st.cand_in[d] = t[i]
                st.cand_lon[d] = lon[i]
                st.cand_lat[d] = lat[i]
                st.cand_still[d] = 0
            if t[i] - st.cand_in[d] >= enter_ms:
                if st.office_pos[d] >= 0:  # straight from one office zone into the next
                    ne = _depart(st, it, d, i, t, ev, ne)
                ne = _arrive(st, it, d, i, t, lon, lat, ev, ne)
    return ne
