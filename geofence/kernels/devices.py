"""The many-devices kernel: route deviation and unscheduled stops for every
device of a batch in one call.

Each rule is one function that runs over every device, reads and updates its
own columns of the device state and appends events through ``_emit``;
``evaluate_devices`` runs the rules one after the other. A new rule is a new
function and new state columns, not more parameters on every rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from geofence.kernels.corridor import locate_on_route
from geofence.kernels.stops import compress_window, is_spike, stop_step
from geofence.kernels.zones import zone_at
from geofence.types import FloatArray, IntArray

# Event kinds emitted by ``evaluate_devices``.
DEVIATION_OPENED = 1
DEVIATION_ENDED = 2
STOP_OPENED = 3
STOP_ENDED = 4
# Values of the per-device stop alert state.
STOP_NONE = 0
STOP_ALERTED = 1
STOP_AUTHORISED = 2

Int8Array = NDArray[np.int8]


class Fixes(NamedTuple):
    """Every device's points, one device after the other."""

    t: IntArray  # fix time, ms
    x: FloatArray  # metres in the route's projection
    y: FloatArray
    lon: FloatArray  # degrees
    lat: FloatArray


class CorridorState(NamedTuple):
    """DeviceState's route_deviation fields, one entry per device, updated in place."""

    dev_open: Int8Array
    out_since: IntArray
    out_lon: FloatArray
    out_lat: FloatArray
    last_out: IntArray
    in_since: IntArray
    chainage: FloatArray
    dist: FloatArray


class StopState(NamedTuple):
    """DeviceState's unscheduled_stop fields, one entry per device, updated in place;
    device d's new stop window is ``win[dev_start[d]:][:win_n[d]]``."""

    stopped: Int8Array
    alert: Int8Array
    win: IntArray
    win_n: IntArray


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


@njit(cache=True)
def _events(cap):  # type: ignore[no-untyped-def]
    return Events(np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
                  np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap), np.empty(cap),
                  np.empty(cap, dtype=np.int64))


@njit(cache=True, inline="always")
def _emit(ev, ne, d, kind, start, end, cross, lon, lat, point):  # type: ignore[no-untyped-def]
    """Append one event at ``ne``; returns the new count."""
    ev.dev[ne] = d
    ev.kind[ne] = kind
    ev.start[ne] = start
    ev.end[ne] = end
    ev.cross[ne] = cross
    ev.lon[ne] = lon
    ev.lat[ne] = lat
    ev.point[ne] = point
    return ne + 1


@njit(cache=True)
def _corridor_rule(fx, first, stop, route, grid, half_width, enter_ms, exit_ms, st, ev, ne):  # type: ignore[no-untyped-def]
    """Route deviation of each device d over its points ``[first[d], stop[d])`` on ``route[d]``.

    A deviation opens once the device has been outside the corridor for
    ``enter_ms`` and ends once it has been back for ``exit_ms``: GPS scatter
    at the corridor's edge does not flap the alert. ``grid`` is the route
    network in ``locate_on_route``'s argument order.
    """
    # Unpacked once, outside the device loop: taking an array out of a tuple
    # costs reference counting, and per device that made batches of a few
    # fixes per device a third slower.
    t, x, y, lon, lat = fx
    dev_open, out_since, out_lon, out_lat, last_out, in_since, chainage, dist_m = st
    (seg_ax, seg_ay, seg_bx, seg_by, seg_s0, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off,
     cell_keys, cell_seg_off, cell_segs) = grid
    for d in range(first.shape[0]):
        r = route[d]
        for i in range(first[d], stop[d]):
            dist, chain = locate_on_route(r, x[i], y[i], seg_ax, seg_ay, seg_bx, seg_by, seg_s0, grid_x0, grid_y0,
                                          grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys, cell_seg_off,
                                          cell_segs)
            dist_m[d] = dist
            if dist > half_width[r]:
                in_since[d] = -1
                if out_since[d] < 0:
                    out_since[d] = t[i]
                    out_lon[d] = lon[i]
                    out_lat[d] = lat[i]
                last_out[d] = t[i]
                if dev_open[d] == 0 and t[i] - out_since[d] >= enter_ms:
                    dev_open[d] = 1
                    ne = _emit(ev, ne, d, DEVIATION_OPENED, out_since[d], -1, t[i], out_lon[d], out_lat[d], i)
            else:
                chainage[d] = chain
                out_since[d] = -1
                if dev_open[d] == 1:
                    if in_since[d] < 0:
                        in_since[d] = t[i]
                    if t[i] - in_since[d] >= exit_ms:
                        dev_open[d] = 0
                        in_since[d] = -1
                        ne = _emit(ev, ne, d, DEVIATION_ENDED, -1, last_out[d], t[i], lon[i], lat[i], i)
    return ne


@njit(cache=True, inline="always")
def _centroid(lon, lat, w, n):  # type: ignore[no-untyped-def]
    clon = 0.0
    clat = 0.0
    for k in range(n):
        clon += lon[w[k]]
        clat += lat[w[k]]
    return clon / n, clat / n


@njit(cache=True)
def _stop_rule(fx, dev_start, dev_end, n_ctx, route, allowed, zones, max_diameter, min_duration,  # type: ignore[no-untyped-def]
               spike_m, st, ev, ne):
    """Unscheduled stops of each device d, whose points are ``[dev_start[d],
    dev_end[d])``, the first ``n_ctx[d]`` of them its saved stop window.

    A stop is decided once it has lasted ``min_duration``: inside a zone
    ``allowed[route[d]]`` it is authorised and raises nothing. The newest point
    waits for its successor, which shows whether it is a multipath jump.
    ``zones`` are the zone arrays in ``zone_at``'s argument order.
    """
    t, x, y, lon, lat = fx  # once, as in _corridor_rule
    stopped_col, alert, win, win_n = st
    longest = 0
    for d in range(dev_start.shape[0]):
        longest = max(longest, dev_end[d] - dev_start[d])
    hull = np.empty(longest + 2, dtype=np.int64)
    scratch = np.empty(longest + 2, dtype=np.int64)
    for d in range(dev_start.shape[0]):
        a = dev_start[d]
        b = dev_end[d]
        w = win[a:b]
        n = n_ctx[d]
        for k in range(n):
            w[k] = a + k
        stopped = stopped_col[d] == 1
        hull_n = -1
        for i in range(a + n_ctx[d], b - 1):
            if is_spike(x, y, w[n - 1] if n > 0 else -1, i, i + 1, spike_m):
                continue
            w[n] = i
            n, stopped, begin, end, hull_n = stop_step(t, x, y, w, n + 1, stopped, hull, hull_n, scratch,
                                                       max_diameter, min_duration)
            if not stopped and alert[d] != STOP_NONE:
                if alert[d] == STOP_ALERTED:
                    last = end if begin >= 0 else w[n - 1]
                    ne = _emit(ev, ne, d, STOP_ENDED, -1, t[last], t[i], lon[i], lat[i], i)
                alert[d] = STOP_NONE
            if stopped and alert[d] == STOP_NONE and t[w[n - 1]] - t[w[0]] >= min_duration:
                clon, clat = _centroid(lon, lat, w, n)
                if zone_at(clon, clat, allowed[route[d]], *zones) >= 0:
                    alert[d] = STOP_AUTHORISED
                else:
                    alert[d] = STOP_ALERTED
                    ne = _emit(ev, ne, d, STOP_OPENED, t[w[0]], -1, t[i], clon, clat, i)
            if stopped and alert[d] != STOP_NONE:  # decided: the centroid is no longer needed
                n = compress_window(t, w, n, hull, hull_n, min_duration)
        stopped_col[d] = 1 if stopped else 0
        win_n[d] = n
    return ne


@njit(cache=True)
def evaluate_devices(t, x, y, lon, lat, dev_start, dev_end, n_ctx_stop, n_ctx_dev, route,  # type: ignore[no-untyped-def]
                     s_dev_open, s_out_since, s_out_lon, s_out_lat, s_last_out, s_in_since,
                     s_stopped, s_stop_alert, s_chainage, s_dist,
                     win, win_n,
                     seg_ax, seg_ay, seg_bx, seg_by, seg_s0, half_width,
                     grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys, cell_seg_off,
                     cell_segs, route_zone_allowed, zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y,
                     zgrid, zcell_keys, zcell_off, zcell_zones,
                     enter_ms, exit_ms, max_diameter, min_duration, spike_m):
    """Route deviation and unscheduled stops for many devices on many routes in one call.

    Device d's points are ``[dev_start[d], dev_end[d])``, sorted by fix time
    (ms): first the ``n_ctx_stop[d]`` points of its stop window (already
    seen), then points the stop detector has not seen, of which the first
    ``n_ctx_dev[d] - n_ctx_stop[d]`` were already checked against the
    corridor. The newest point is kept back from the stop detector until its
    successor shows whether it is a multipath jump. State arrays ``s_*`` are
    updated in place; the new stop window is ``win[dev_start[d]:][:win_n[d]]``.
    Returns event arrays (device, kind, start ms, end ms, crossed ms, lon, lat, point),
    device by device, each device's deviation events before its stop events.
    """
    fx = Fixes(t, x, y, lon, lat)
    # Each point raises at most one event per rule.
    ev = _events(2 * t.shape[0] + 2)
    ne = _corridor_rule(fx, dev_start + n_ctx_dev, dev_end, route,
                        (seg_ax, seg_ay, seg_bx, seg_by, seg_s0, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny,
                         col_base, col_off, cell_keys, cell_seg_off, cell_segs),
                        half_width, enter_ms, exit_ms,
                        CorridorState(s_dev_open, s_out_since, s_out_lon, s_out_lat, s_last_out, s_in_since,
                                      s_chainage, s_dist),
                        ev, 0)
    ne = _stop_rule(fx, dev_start, dev_end, n_ctx_stop, route, route_zone_allowed,
                    (zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y, zgrid, zcell_keys, zcell_off,
                     zcell_zones),
                    max_diameter, min_duration, spike_m, StopState(s_stopped, s_stop_alert, win, win_n), ev, ne)
    # Each rule appended its events device by device; a stable sort on the
    # device puts each device's events together again, in rule order.
    order = np.argsort(ev.dev[:ne], kind="mergesort")
    return (ev.dev[order], ev.kind[order], ev.start[order], ev.end[order], ev.cross[order], ev.lon[order],
            ev.lat[order], ev.point[order])
