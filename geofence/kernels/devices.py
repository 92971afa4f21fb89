"""The many-devices kernel: route deviation and unscheduled stops for every
device of a batch in one call.

Each rule is one function that runs over every device, reads and updates its
own columns of the device state and appends events through ``events.emit``;
``evaluate_devices`` runs the rules one after the other. A new rule is a new
function and new state columns, not more parameters on every rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from geofence.kernels.borders import BorderState, border_rule, fix_countries
from geofence.kernels.corridor import locate_on_route
from geofence.kernels.events import (
    DEVIATION_ENDED,
    DEVIATION_OPENED,
    STOP_ENDED,
    STOP_OPENED,
    emit,
    new_events,
    trimmed,
)
from geofence.kernels.itinerary import Itinerary, ItineraryState, itinerary_rule
from geofence.kernels.progress import ReversalState, gap_rule, reversal_rule
from geofence.kernels.stops import compress_window, is_spike, stop_step
from geofence.kernels.zones import zone_at
from geofence.types import FloatArray, IntArray

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


@njit(cache=True)
def _corridor_rule(fx, dev_start, first, stop, route, grid, half_width, factor, enter_ms, exit_ms, st, in_corr,  # type: ignore[no-untyped-def]
                   pt_chain, ev, ne):
    """Route deviation of each device d over its points ``[first[d], stop[d])`` on ``route[d]``,
    whose corridor is ``half_width[route[d]] * factor[d]`` wide on each side.

    A deviation opens once the device has been outside the corridor for
    ``enter_ms`` and ends once it has been back for ``exit_ms``: GPS scatter
    at the corridor's edge does not flap the alert. ``grid`` is the route
    network in ``locate_on_route``'s argument order. Writes each point's chainage
    (NaN outside the corridor) to ``pt_chain``, the previous fix's too.
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
        width = half_width[r] * factor[d]
        if first[d] > dev_start[d]:
            pt_chain[first[d] - 1] = chainage[d] if in_corr[d] == 1 else np.nan
        for i in range(first[d], stop[d]):
            dist, chain = locate_on_route(r, x[i], y[i], seg_ax, seg_ay, seg_bx, seg_by, seg_s0, grid_x0, grid_y0,
                                          grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys, cell_seg_off,
                                          cell_segs)
            dist_m[d] = dist
            if dist > width:
                pt_chain[i] = np.nan
                in_corr[d] = 0
                in_since[d] = -1
                if out_since[d] < 0:
                    out_since[d] = t[i]
                    out_lon[d] = lon[i]
                    out_lat[d] = lat[i]
                last_out[d] = t[i]
                if dev_open[d] == 0 and t[i] - out_since[d] >= enter_ms:
                    dev_open[d] = 1
                    ne = emit(ev, ne, d, DEVIATION_OPENED, out_since[d], -1, t[i], out_lon[d], out_lat[d], i, -1,
                              0.0)
            else:
                pt_chain[i] = chain
                in_corr[d] = 1
                chainage[d] = chain
                out_since[d] = -1
                if dev_open[d] == 1:
                    if in_since[d] < 0:
                        in_since[d] = t[i]
                    if t[i] - in_since[d] >= exit_ms:
                        dev_open[d] = 0
                        in_since[d] = -1
                        ne = emit(ev, ne, d, DEVIATION_ENDED, -1, last_out[d], t[i], lon[i], lat[i], i, -1, 0.0)
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
def _stop_rule(fx, dev_start, dev_end, n_ctx, route, allowed, zones, max_diameter, stop_min,  # type: ignore[no-untyped-def]
               spike_m, st, ev, ne):
    """Unscheduled stops of each device d, whose points are ``[dev_start[d],
    dev_end[d])``, the first ``n_ctx[d]`` of them its saved stop window.

    A stop is decided once it has lasted ``stop_min[d]`` (ms): inside a zone
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
        min_duration = stop_min[d]
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
                    ne = emit(ev, ne, d, STOP_ENDED, -1, t[last], t[i], lon[i], lat[i], i, -1, 0.0)
                alert[d] = STOP_NONE
            if stopped and alert[d] == STOP_NONE and t[w[n - 1]] - t[w[0]] >= min_duration:
                clon, clat = _centroid(lon, lat, w, n)
                if zone_at(clon, clat, allowed[route[d]], *zones) >= 0:
                    alert[d] = STOP_AUTHORISED
                else:
                    alert[d] = STOP_ALERTED
                    ne = emit(ev, ne, d, STOP_OPENED, t[w[0]], -1, t[i], clon, clat, i, -1, 0.0)
            if stopped and alert[d] != STOP_NONE:  # decided: the centroid is no longer needed
                n = compress_window(t, w, n, hull, hull_n, min_duration)
        stopped_col[d] = 1 if stopped else 0
        win_n[d] = n
    return ne


class Limits(NamedTuple):
    """Rule thresholds in kernel units (ms, m, m/s) and the rule switches."""

    enter_ms: float
    exit_ms: float
    max_diameter: float
    spike_m: float
    office_enter_ms: float
    office_exit_ms: float
    border_confirm_ms: float
    post_grace_ms: float
    reversal_m: float
    reversal_end_m: float
    gap_min_ms: float
    normal_mps: float
    suspicious_s: float
    border_rules: bool
    reversal_rule: bool
    gap_rule: bool


@njit(cache=True)
def _evaluate(fx, dev_start, dev_end, n_ctx_stop, n_ctx_dev, route, factor, stop_min, itinerary,  # type: ignore[no-untyped-def]
              corridor_st, in_corr, stop_st, it_st, rev_st, border_st, grid, half_width, route_zone_allowed,
              zones, countries, n_countries, limits, cap):
    """Every rule for many devices on many routes in one call (``evaluate_devices``, grouped).

    Device d's points (``fx``: Fixes) are ``[dev_start[d], dev_end[d])``, sorted by
    fix time (ms): first the ``n_ctx_stop[d]`` points of its stop window (already
    seen), then points the stop detector has not seen, of which the first
    ``n_ctx_dev[d] - n_ctx_stop[d]`` (its previous newest fix) were already
    checked by the other rules. The newest point is kept back from the stop
    detector until its successor shows whether it is a multipath jump. Per
    device: corridor ``factor``, ``stop_min`` (ms), ``itinerary`` (Itinerary).
    State columns (``*_st``, ``in_corr``) are updated in place; the new stop
    window is ``win[dev_start[d]:][:win_n[d]]`` of ``stop_st``. ``grid``: the
    route arrays in ``locate_on_route``'s order; ``zones``: in ``zone_at``'s;
    ``countries``: in ``country_at``'s (``n_countries`` of them).
    Returns event columns (events.Events' order), each rule's device by device,
    each point's country index (-1: none; looked up with the border rules only)
    and how many events there were: more than ``cap`` means some found no room,
    and the caller runs again on fresh state columns with room for them all.
    """
    t = fx.t
    first = dev_start + n_ctx_dev
    ev = new_events(cap)
    pt_chain = np.empty(t.shape[0])
    ne = _corridor_rule(fx, dev_start, first, dev_end, route, grid, half_width, factor, limits.enter_ms,
                        limits.exit_ms, corridor_st, in_corr, pt_chain, ev, 0)
    ne = _stop_rule(fx, dev_start, dev_end, n_ctx_stop, route, route_zone_allowed, zones, limits.max_diameter,
                    stop_min, limits.spike_m, stop_st, ev, ne)
    pt_office = np.full(t.shape[0], -1, dtype=np.int64)
    if limits.border_rules:
        ne = itinerary_rule(fx, dev_start, first, dev_end, itinerary, zones, limits.office_enter_ms,
                            limits.office_exit_ms, it_st, pt_office, ev, ne)
    pt_country = np.full(t.shape[0], -1, dtype=np.int64)
    if limits.border_rules and n_countries > 0:
        fix_countries(fx, dev_start, first, dev_end, countries, border_st, pt_country)
        ne = border_rule(fx, first, dev_end, pt_country, pt_office, limits.border_confirm_ms,
                         limits.post_grace_ms, border_st, ev, ne)
    if limits.reversal_rule:
        ne = reversal_rule(fx, first, dev_end, pt_chain, limits.reversal_m, limits.reversal_end_m, rev_st, ev, ne)
    if limits.gap_rule:
        ne = gap_rule(fx, dev_start, first, dev_end, pt_chain, limits.gap_min_ms, limits.normal_mps,
                      limits.suspicious_s, ev, ne)
    return trimmed(ev, min(ne, cap)), pt_country, ne


@njit(cache=True)
def evaluate_devices(t, x, y, lon, lat, dev_start, dev_end, n_ctx_stop, n_ctx_dev, route, factor, stop_min, it_off,  # type: ignore[no-untyped-def]
                     it_zone, it_dwell, it_transit, c_dev_open, c_out_since, c_out_lon, c_out_lat, c_last_out,
                     c_in_since, c_chainage, c_dist, in_corr, s_stopped, s_alert, win, win_n, i_office_pos,
                     i_office_in, i_office_last, i_office_lon, i_office_lat, i_office_still, i_office_out,
                     i_cand_pos, i_cand_in, i_cand_lon, i_cand_lat, i_cand_still, i_reached, i_skipped,
                     i_dwell_open, r_furthest, r_furthest_t, r_furthest_lon, r_furthest_lat, r_open, b_fix_country,
                     b_country, b_cand, b_cand_t, b_cand_lon, b_cand_lat, b_post_seen, seg_ax, seg_ay, seg_bx,
                     seg_by, seg_s0, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys,
                     cell_seg_off, cell_segs, half_width, route_zone_allowed, zone_ring_off, ring_off, vx, vy,
                     zmin_x, zmin_y, zmax_x, zmax_y, zgrid, zcell_keys, zcell_off, zcell_zones, k_grid, k_col_off,
                     k_run_iy, k_run_country, k_run_ref_x, k_run_ref_y, k_run_edge_off, k_entry_edge,
                     k_entry_country, k_entry_ref_inside, k_vx, k_vy, n_countries, enter_ms, exit_ms, max_diameter,
                     spike_m, office_enter_ms, office_exit_ms, border_confirm_ms, post_grace_ms, reversal_m,
                     reversal_end_m, gap_min_ms, normal_mps, suspicious_s, border_rules, reversal_rule, gap_rule,
                     cap):
    """Every rule for many devices on many routes in one call, on flat arguments.

    Flat, because numba's dispatcher types an array argument in C but a tuple of
    them element by element in Python: grouped arguments cost a single-tracker
    call (a live fix, a replay chunk) twice the time. The groups are those of
    ``_evaluate``, in the order of their NamedTuples' fields.
    """
    return _evaluate(
        Fixes(t, x, y, lon, lat), dev_start, dev_end, n_ctx_stop, n_ctx_dev, route, factor, stop_min,
        Itinerary(it_off, it_zone, it_dwell, it_transit),
        CorridorState(c_dev_open, c_out_since, c_out_lon, c_out_lat, c_last_out, c_in_since, c_chainage, c_dist),
        in_corr, StopState(s_stopped, s_alert, win, win_n),
        ItineraryState(i_office_pos, i_office_in, i_office_last, i_office_lon, i_office_lat, i_office_still,
                       i_office_out, i_cand_pos, i_cand_in, i_cand_lon, i_cand_lat, i_cand_still, i_reached,
                       i_skipped, i_dwell_open),
        ReversalState(r_furthest, r_furthest_t, r_furthest_lon, r_furthest_lat, r_open),
        BorderState(b_fix_country, b_country, b_cand, b_cand_t, b_cand_lon, b_cand_lat, b_post_seen),
        (seg_ax, seg_ay, seg_bx, seg_by, seg_s0, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off,
         cell_keys, cell_seg_off, cell_segs),
        half_width, route_zone_allowed,
        (zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y, zgrid, zcell_keys, zcell_off, zcell_zones),
        (k_grid, k_col_off, k_run_iy, k_run_country, k_run_ref_x, k_run_ref_y, k_run_edge_off, k_entry_edge,
         k_entry_country, k_entry_ref_inside, k_vx, k_vy),
        n_countries,
        Limits(enter_ms, exit_ms, max_diameter, spike_m, office_enter_ms, office_exit_ms, border_confirm_ms,
               post_grace_ms, reversal_m, reversal_end_m, gap_min_ms, normal_mps, suspicious_s, border_rules,
               reversal_rule, gap_rule),
        cap)
