"""The event columns every rule of the many-devices kernel appends to, and the kinds.

``ref`` and ``value`` say what a kind needs beyond times and a position: an
itinerary position, a country index, a fix index, seconds (see each kind).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from geofence.types import FloatArray, IntArray

# Event kinds emitted by ``evaluate_devices``.
DEVIATION_OPENED = 1
DEVIATION_ENDED = 2
STOP_OPENED = 3
STOP_ENDED = 4
ARRIVED = 5  # ref: itinerary position; start: first fix inside
DEPARTED = 6  # ref: position; start: arrival, end: last fix inside; value: stationary seconds
OFFICE_SKIPPED = 7  # ref: the skipped position; value: the position reached
DWELL_OPENED = 8  # ref: position
DWELL_ENDED = 9  # ref: position
REVERSAL_OPENED = 10
REVERSAL_ENDED = 11
GAP = 12  # ref: index of the fix before the gap; value: unexplained seconds
BORDER_CROSSED = 13  # ref: country index now; value: country index before (as float)
BORDER_BYPASS = 14  # as BORDER_CROSSED


class Events(NamedTuple):
    """Event columns, filled up to a count the caller carries."""

    dev: IntArray
    kind: IntArray
    start: IntArray  # ms, -1 for none
    end: IntArray
    cross: IntArray
    lon: FloatArray
    lat: FloatArray
    point: IntArray  # index of the fix that raised it
    ref: IntArray
    value: FloatArray


@njit(cache=True)
def new_events(cap):  # type: ignore[no-untyped-def]
    return Events(np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap), np.empty(cap),
                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap))


@njit(cache=True, inline="always")
def emit(ev, ne, d, kind, start, end, cross, lon, lat, point, ref, value):  # type: ignore[no-untyped-def]
    """Write one event at ``ne`` if the columns have room; returns ``ne + 1`` either way,
    so that the caller learns how many there were and can run again with room for all.

    Never growing the columns in place keeps them one object for the whole call: a
    rule that rebinds them in its loop pays reference counting on every fix (measured:
    the kernel took 70 % longer).
    """
    if ne >= ev.dev.shape[0]:
        return ne + 1
    ev.dev[ne] = d
    ev.kind[ne] = kind
    ev.start[ne] = start
    ev.end[ne] = end
    ev.cross[ne] = cross
    ev.lon[ne] = lon
    ev.lat[ne] = lat
    ev.point[ne] = point
    ev.ref[ne] = ref
    ev.value[ne] = value
    return ne + 1


@njit(cache=True)
def trimmed(ev, ne):  # type: ignore[no-untyped-def]
    """The first ``ne`` events as a tuple of columns (Events' order); ``ne`` at most the room."""
    return (ev.dev[:ne], ev.kind[:ne], ev.start[:ne], ev.end[:ne], ev.cross[:ne], ev.lon[:ne], ev.lat[:ne],
            ev.point[:ne], ev.ref[:ne], ev.value[:ne])
