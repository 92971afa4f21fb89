"""Numba kernels on plain contiguous arrays: corridor distance, zones, stops.

Nothing here allocates objects or validates input: ``geometry.py`` and
``engine.py`` check and convert once at the Python boundary, then trust.
Projected coordinates are metres; zone coordinates are WGS84 degrees (lon, lat)
because GeoJSON polygon edges are straight in that space (RFC 7946).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---------------------------------------------------------------- distances


@njit(cache=True, inline="always")
def segment_distance(px, py, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """Distance (m) from P to segment AB, computed the way GEOS does, so that a
    point exactly as far as shapely says is classified exactly as shapely does."""
    if ax == bx and ay == by:
        return math.sqrt((px - ax) * (px - ax) + (py - ay) * (py - ay))
    dx = bx - ax
    dy = by - ay
    len2 = dx * dx + dy * dy
    r = ((px - ax) * dx + (py - ay) * dy) / len2
    if r <= 0.0:
        return math.sqrt((px - ax) * (px - ax) + (py - ay) * (py - ay))
    if r >= 1.0:
        return math.sqrt((px - bx) * (px - bx) + (py - by) * (py - by))
    s = ((ay - py) * dx - (ax - px) * dy) / len2
    return abs(s) * math.sqrt(len2)


@njit(cache=True, inline="always")
def _find_cell(keys, lo, hi, key):  # type: ignore[no-untyped-def]
    """Index of ``key`` in the sorted ``keys[lo:hi]``, or -1."""
    while lo < hi:
        mid = (lo + hi) >> 1
        k = keys[mid]
        if k < key:
            lo = mid + 1
        elif k > key:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True, inline="always")
def _route_cell(r, x, y, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys):  # type: ignore[no-untyped-def]
    """The grid cell (index into cell_keys) of point (x, y) on route r, or -1.

    A route's cells are sorted by (column, row) and indexed by column, so the
    search runs over one column's few cells, not the route's thousands.
    """
    fx = (x - grid_x0[r]) / grid_cell[r]
    fy = (y - grid_y0[r]) / grid_cell[r]
    if not (fx >= 0.0 and fy >= 0.0 and fx < grid_nx[r] and fy < grid_ny[r]):
        return -1  # also rejects NaN
    ix = np.int64(fx)
    col = col_base[r] + ix
    return _find_cell(cell_keys, col_off[col], col_off[col + 1], ix * grid_ny[r] + np.int64(fy))


@njit(cache=True)
def centre_distances(keys, offsets, items, x0, y0, cell, ny, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """For each (cell, segment) pair of a grid, the distance (m) from the cell's
    centre to the segment: cells list their nearest segments first, so a point
    inside the corridor usually stops at the first one."""
    out = np.empty(items.shape[0])
    for c in range(keys.shape[0]):
        cx = x0 + (keys[c] // ny + 0.5) * cell
        cy = y0 + (keys[c] % ny + 0.5) * cell
        for k in range(offsets[c], offsets[c + 1]):
            s = items[k]
            out[k] = segment_distance(cx, cy, ax[s], ay[s], bx[s], by[s])
    return out


@njit(cache=True)
def within_routes(route_of, x, y, seg_ax, seg_ay, seg_bx, seg_by, half_width,  # type: ignore[no-untyped-def]
                  grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys, cell_seg_off,
                  cell_segs):
    """For each point i: is it within ``half_width[route_of[i]]`` metres of that route?

    Every segment is registered in each grid cell its padded bounding box
    touches, so the point's own cell holds every segment that can be in reach.
    """
    n = x.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        r = route_of[i]
        fx = (x[i] - grid_x0[r]) / grid_cell[r]
        fy = (y[i] - grid_y0[r]) / grid_cell[r]
        if not (fx >= 0.0 and fy >= 0.0 and fx < grid_nx[r] and fy < grid_ny[r]):
            continue  # also NaN
        ix = np.int64(fx)
        col = col_base[r] + ix
        c = _find_cell(cell_keys, col_off[col], col_off[col + 1], ix * grid_ny[r] + np.int64(fy))
        if c < 0:
            continue
        d = half_width[r]
        for k in range(cell_seg_off[c], cell_seg_off[c + 1]):
            s = cell_segs[k]
            if segment_distance(x[i], y[i], seg_ax[s], seg_ay[s], seg_bx[s], seg_by[s]) <= d:
                out[i] = True
                break
    return out


@njit(cache=True)
def locate_on_route(r, px, py, seg_ax, seg_ay, seg_bx, seg_by, seg_s0,  # type: ignore[no-untyped-def]
                    grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys, cell_seg_off,
                    cell_segs):
    """(distance m, chainage m) of P to route r; (inf, nan) when nothing is in reach."""
    best = np.inf
    chain = np.nan
    c = _route_cell(r, px, py, grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off, cell_keys)
    if c < 0:
        return best, chain
    for k in range(cell_seg_off[c], cell_seg_off[c + 1]):
        s = cell_segs[k]
        d = segment_distance(px, py, seg_ax[s], seg_ay[s], seg_bx[s], seg_by[s])
        if d < best:
            best = d
            dx = seg_bx[s] - seg_ax[s]
            dy = seg_by[s] - seg_ay[s]
            len2 = dx * dx + dy * dy
            t = 0.0 if len2 == 0.0 else ((px - seg_ax[s]) * dx + (py - seg_ay[s]) * dy) / len2
            t = min(max(t, 0.0), 1.0)
            chain = seg_s0[s] + t * math.sqrt(len2)
    return best, chain


# -------------------------------------------------------------------- zones


@njit(cache=True)
def in_polygon(z, px, py, zone_ring_off, ring_off, vx, vy):  # type: ignore[no-untyped-def]
    """Even-odd crossing test of (lon, lat) against every ring of zone z (holes included)."""
    inside = False
    for ring in range(zone_ring_off[z], zone_ring_off[z + 1]):
        a = ring_off[ring]
        b = ring_off[ring + 1]
        for k in range(a, b - 1):
            x1 = vx[k]
            y1 = vy[k]
            x2 = vx[k + 1]
            y2 = vy[k + 1]
            if (y1 > py) != (y2 > py) and px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


@njit(cache=True)
def zone_at(px, py, allowed, zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y,  # type: ignore[no-untyped-def]
            zgrid, zcell_keys, zcell_off, zcell_zones):
    """First zone z with ``allowed[z]`` that contains (lon, lat), or -1.

    ``zgrid`` = (x0, y0, cell, nx, ny) of a grid over zone bounding boxes.
    """
    fx = (px - zgrid[0]) / zgrid[2]
    fy = (py - zgrid[1]) / zgrid[2]
    if not (fx >= 0.0 and fy >= 0.0 and fx < zgrid[3] and fy < zgrid[4]):
        return -1
    key = np.int64(fx) * np.int64(zgrid[4]) + np.int64(fy)
    c = _find_cell(zcell_keys, 0, zcell_keys.shape[0], key)
    if c < 0:
        return -1
    for k in range(zcell_off[c], zcell_off[c + 1]):
        z = zcell_zones[k]
        if (allowed[z] and zmin_x[z] <= px <= zmax_x[z] and zmin_y[z] <= py <= zmax_y[z]
                and in_polygon(z, px, py, zone_ring_off, ring_off, vx, vy)):
            return z
    return -1


@njit(cache=True)
def zones_of_points(px, py, zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y,  # type: ignore[no-untyped-def]
                    zgrid, zcell_keys, zcell_off, zcell_zones):
    """For each (lon, lat) point the first zone containing it, or -1."""
    allowed = np.ones(zmin_x.shape[0], dtype=np.bool_)
    out = np.empty(px.shape[0], dtype=np.int64)
    for i in range(px.shape[0]):
        out[i] = zone_at(px[i], py[i], allowed, zone_ring_off, ring_off, vx, vy, zmin_x, zmin_y, zmax_x, zmax_y,
                         zgrid, zcell_keys, zcell_off, zcell_zones)
    return out


# -------------------------------------------------------------------- stops


@njit(cache=True)
def _cross(ox, oy, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@njit(cache=True)
def convex_hull(x, y, idx, n, out):  # type: ignore[no-untyped-def]
    """Monotone chain hull of points ``idx[:n]``: writes its vertices (indices,
    counter-clockwise from the least (x, y), collinear points dropped) to
    ``out`` and returns how many. ``out`` needs room for n + 1."""
    xs = np.empty(n)
    ys = np.empty(n)
    for k in range(n):
        xs[k] = x[idx[k]]
        ys[k] = y[idx[k]]
    order = np.argsort(ys, kind="mergesort")
    order = order[np.argsort(xs[order], kind="mergesort")]  # stable: sorted by (x, y)
    chain = np.empty(2 * n + 1, dtype=np.int64)
    m = 0
    for k in range(n):
        p = idx[order[k]]
        while m >= 2 and _cross(x[chain[m - 2]], y[chain[m - 2]], x[chain[m - 1]], y[chain[m - 1]], x[p], y[p]) <= 0:
            m -= 1
        chain[m] = p
        m += 1
    lower = m + 1
    for k in range(n - 2, -1, -1):
        p = idx[order[k]]
        while m >= lower and _cross(x[chain[m - 2]], y[chain[m - 2]], x[chain[m - 1]], y[chain[m - 1]],
                                    x[p], y[p]) <= 0:
            m -= 1
        chain[m] = p
        m += 1
    m = max(m - 1, 1)  # the last vertex repeats the first
    for k in range(m):
        out[k] = chain[k]
    return m


@njit(cache=True)
def hull_rectangle(x, y, hull, m):  # type: ignore[no-untyped-def]
    """(area m², diagonal m, rectangles tied for the least area) of the minimum-area
    rectangle around the convex hull ``hull[:m]`` (rotating calipers, as GEOS).

    When several rectangles have the least area (three points forming an acute
    triangle give three), GEOS's choice rests on its hull order and rounding;
    this takes the smallest diagonal of them. A hull of one or two points is a
    degenerate rectangle: its diagonal is the distance between the points.
    """
    if m <= 1:
        return 0.0, 0.0, 1
    if m == 2:
        return 0.0, math.hypot(x[hull[1]] - x[hull[0]], y[hull[1]] - y[hull[0]]), 1
    best_area = np.inf
    best_diag = 0.0
    ties = 0
    for e in range(m):
        ax, ay = x[hull[e]], y[hull[e]]
        bx, by = x[hull[(e + 1) % m]], y[hull[(e + 1) % m]]
        ln = math.hypot(bx - ax, by - ay)
        if ln == 0.0:
            continue
        ux, uy = (bx - ax) / ln, (by - ay) / ln
        lo_u, hi_u, hi_v = 0.0, 0.0, 0.0
        for k in range(m):
            du = (x[hull[k]] - ax) * ux + (y[hull[k]] - ay) * uy
            dv = -(x[hull[k]] - ax) * uy + (y[hull[k]] - ay) * ux
            lo_u = min(lo_u, du)
            hi_u = max(hi_u, du)
            hi_v = max(hi_v, abs(dv))
        area = (hi_u - lo_u) * hi_v
        diag = math.hypot(hi_u - lo_u, hi_v)
        if area < best_area * (1.0 - 1e-12):
            best_area, best_diag, ties = area, diag, 1
        elif area <= best_area * (1.0 + 1e-12):
            best_diag = min(best_diag, diag)
            ties += 1
    return best_area, best_diag, ties


@njit(cache=True)
def mrr(x, y, idx, n):  # type: ignore[no-untyped-def]
    """(area, diagonal, ties) of GEOS's minimum rotated rectangle of points ``idx[:n]``; see hull_rectangle."""
    hull = np.empty(n + 1, dtype=np.int64)
    return hull_rectangle(x, y, hull, convex_hull(x, y, idx, n, hull))


@njit(cache=True)
def mrr_diagonal(x, y, idx, n):  # type: ignore[no-untyped-def]
    """Diagonal (m) of the minimum rotated rectangle of points ``idx[:n]``: the stop diameter of movingpandas."""
    return mrr(x, y, idx, n)[1]


@njit(cache=True)
def _strictly_inside(x, y, hull, m, p):  # type: ignore[no-untyped-def]
    if m < 3:
        return False
    for e in range(m):
        a = hull[e]
        b = hull[(e + 1) % m]
        if _cross(x[a], y[a], x[b], y[b], x[p], y[p]) <= 0.0:
            return False
    return True


@njit(cache=True)
def stop_step(t, x, y, win, n, stopped, hull, hull_n, scratch,  # type: ignore[no-untyped-def]
              max_diameter, min_duration):
    """Add the point ``win[n-1]`` to the stop window ``win[:n]`` (indices into t, x, y).

    One step of movingpandas' TrajectoryStopDetector: while not stopped the
    window is trimmed to under ``min_duration`` (ms); the points are a stop
    while the window's minimum rotated rectangle has a diagonal under
    ``max_diameter`` (m). Returns (new n, stopped, ended stop begin index or -1,
    ended stop end index or -1, new hull_n); the window is compacted in place.

    While stopped the window only grows, and its rectangle depends on its
    convex hull alone: ``hull[:hull_n]`` keeps that hull (hull_n -1: not known),
    so a fix inside it costs nothing and one outside it costs a rectangle over
    the hull's few corners, not over hours of parked fixes. ``scratch`` needs
    room for n + 2 indices.
    """
    p = win[n - 1]
    if not stopped:
        first = 0
        while n - first > 2 and t[win[n - 1]] - t[win[first]] >= min_duration:
            first += 1
        if first:
            for k in range(n - first):
                win[k] = win[k + first]
            n -= first
    now_stopped = False
    new_hull_n = -1
    if n > 1:
        if stopped and hull_n >= 3 and _strictly_inside(x, y, hull, hull_n, p):
            now_stopped = True  # the same hull, the same rectangle
            new_hull_n = hull_n
        else:
            if stopped and hull_n >= 1:
                cand = hull[:hull_n + 1]
                cand[hull_n] = p
                n_cand = hull_n + 1
            else:
                cand = win
                n_cand = n
            minx, maxx, miny, maxy = np.inf, -np.inf, np.inf, -np.inf
            for k in range(n_cand):
                minx = min(minx, x[cand[k]])
                maxx = max(maxx, x[cand[k]])
                miny = min(miny, y[cand[k]])
                maxy = max(maxy, y[cand[k]])
            if math.hypot(maxx - minx, maxy - miny) < max_diameter * 1.5:
                m = convex_hull(x, y, cand, n_cand, scratch)
                if hull_rectangle(x, y, scratch, m)[1] < max_diameter:
                    now_stopped = True
                    for k in range(m):
                        hull[k] = scratch[k]
                    new_hull_n = m
    begin, end = -1, -1
    if not now_stopped and stopped and n > 1 and t[win[n - 2]] - t[win[0]] >= min_duration:
        begin, end = win[0], win[n - 2]
        win[0] = win[n - 1]
        n = 1
    return n, now_stopped, begin, end, new_hull_n


@njit(cache=True)
def compress_window(t, win, n, hull, hull_n, min_duration):  # type: ignore[no-untyped-def]
    """Shrink a stopped window that already spans ``min_duration`` to its first fix,
    its hull and its last fix; returns the new length.

    From then on the stop can only grow or end (and ending resets the window),
    and both depend on nothing else: the rectangle on the hull, the stop's
    times on its first and last fixes. A truck parked for a day keeps a state
    of a few dozen fixes, not thousands.
    """
    if hull_n < 1 or n <= 2 * hull_n + 8 or t[win[n - 1]] - t[win[0]] < min_duration:
        return n
    first = win[0]
    last = win[n - 1]
    m = 1
    for k in range(hull_n):
        if hull[k] != first and hull[k] != last:
            win[m] = hull[k]
            m += 1
    win[m] = last
    return m + 1


@njit(cache=True)
def detect_stops(t, x, y, max_diameter, min_duration):  # type: ignore[no-untyped-def]
    """Stops of one track in one pass: arrays of (first index, last index).

    ``t`` in ms (sorted), ``x``/``y`` in metres, ``min_duration`` in ms.
    """
    n_pts = t.shape[0]
    win = np.empty(n_pts, dtype=np.int64)
    hull = np.empty(n_pts + 2, dtype=np.int64)
    scratch = np.empty(n_pts + 2, dtype=np.int64)
    begins = np.empty(n_pts, dtype=np.int64)
    ends = np.empty(n_pts, dtype=np.int64)
    found = 0
    n = 0
    hull_n = -1
    stopped = False
    for i in range(n_pts):
        win[n] = i
        n, stopped, b, e, hull_n = stop_step(t, x, y, win, n + 1, stopped, hull, hull_n, scratch, max_diameter,
                                             min_duration)
        if stopped:
            n = compress_window(t, win, n, hull, hull_n, min_duration)
        if b >= 0:
            begins[found], ends[found] = b, e
            found += 1
    if stopped and n > 0 and t[win[n - 1]] - t[win[0]] >= min_duration:
        begins[found], ends[found] = win[0], win[n - 1]
        found += 1
    return begins[:found], ends[:found]


@njit(cache=True)
def is_spike(x, y, a, i, j, spike_m):  # type: ignore[no-untyped-def]
    """Is point i a multipath jump: far from the accepted point a before it and
    the point j after it, while a and j are close to each other?"""
    if a < 0:
        return False
    d_ai = math.hypot(x[i] - x[a], y[i] - y[a])
    d_ij = math.hypot(x[j] - x[i], y[j] - y[i])
    d_aj = math.hypot(x[j] - x[a], y[j] - y[a])
    return d_ai > spike_m and d_ij > spike_m and d_aj <= spike_m


# ------------------------------------------------------------------- engine

# Event kinds emitted by ``evaluate_devices``.
DEVIATION_OPENED = 1
DEVIATION_ENDED = 2
STOP_OPENED = 3
STOP_ENDED = 4
# Values of the per-device stop alert state.
STOP_NONE = 0
STOP_ALERTED = 1
STOP_AUTHORISED = 2


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
    Returns event arrays (device, kind, start ms, end ms, crossed ms, lon, lat, point).
    """
    cap = 2 * t.shape[0] + 2
    ev_dev = np.empty(cap, dtype=np.int64)
    ev_kind = np.empty(cap, dtype=np.int64)
    ev_start = np.empty(cap, dtype=np.int64)
    ev_end = np.empty(cap, dtype=np.int64)
    ev_cross = np.empty(cap, dtype=np.int64)
    ev_lon = np.empty(cap)
    ev_lat = np.empty(cap)
    ev_point = np.empty(cap, dtype=np.int64)
    longest = 0
    for d in range(dev_start.shape[0]):
        longest = max(longest, dev_end[d] - dev_start[d])
    hull = np.empty(longest + 2, dtype=np.int64)
    scratch = np.empty(longest + 2, dtype=np.int64)
    ne = 0
    for d in range(dev_start.shape[0]):
        a = dev_start[d]
        b = dev_end[d]
        r = route[d]
        for i in range(a + n_ctx_dev[d], b):
            dist, chain = locate_on_route(r, x[i], y[i], seg_ax, seg_ay, seg_bx, seg_by, seg_s0,
                                          grid_x0, grid_y0, grid_cell, grid_nx, grid_ny, col_base, col_off,
                                          cell_keys, cell_seg_off, cell_segs)
            s_dist[d] = dist
            if dist > half_width[r]:
                s_in_since[d] = -1
                if s_out_since[d] < 0:
                    s_out_since[d] = t[i]
                    s_out_lon[d] = lon[i]
                    s_out_lat[d] = lat[i]
                s_last_out[d] = t[i]
                if s_dev_open[d] == 0 and t[i] - s_out_since[d] >= enter_ms:
                    s_dev_open[d] = 1
                    ev_dev[ne], ev_kind[ne], ev_start[ne], ev_end[ne] = d, DEVIATION_OPENED, s_out_since[d], -1
                    ev_cross[ne], ev_lon[ne], ev_lat[ne], ev_point[ne] = t[i], s_out_lon[d], s_out_lat[d], i
                    ne += 1
            else:
                s_chainage[d] = chain
                s_out_since[d] = -1
                if s_dev_open[d] == 1:
                    if s_in_since[d] < 0:
                        s_in_since[d] = t[i]
                    if t[i] - s_in_since[d] >= exit_ms:
                        s_dev_open[d] = 0
                        s_in_since[d] = -1
                        ev_dev[ne], ev_kind[ne], ev_start[ne], ev_end[ne] = d, DEVIATION_ENDED, -1, s_last_out[d]
                        ev_cross[ne], ev_lon[ne], ev_lat[ne], ev_point[ne] = t[i], lon[i], lat[i], i
                        ne += 1
        w = win[a:b]
        n = n_ctx_stop[d]
        for k in range(n):
            w[k] = a + k
        stopped = s_stopped[d] == 1
        hull_n = -1
        for i in range(a + n_ctx_stop[d], b - 1):
            if is_spike(x, y, w[n - 1] if n > 0 else -1, i, i + 1, spike_m):
                continue
            w[n] = i
            n, stopped, begin, end, hull_n = stop_step(t, x, y, w, n + 1, stopped, hull, hull_n, scratch,
                                                       max_diameter, min_duration)
            if not stopped and s_stop_alert[d] != STOP_NONE:
                if s_stop_alert[d] == STOP_ALERTED:
                    last = end if begin >= 0 else w[n - 1]
                    ev_dev[ne], ev_kind[ne], ev_start[ne], ev_end[ne] = d, STOP_ENDED, -1, t[last]
                    ev_cross[ne], ev_lon[ne], ev_lat[ne], ev_point[ne] = t[i], lon[i], lat[i], i
                    ne += 1
                s_stop_alert[d] = STOP_NONE
            if stopped and s_stop_alert[d] == STOP_NONE and t[w[n - 1]] - t[w[0]] >= min_duration:
                clon = 0.0
                clat = 0.0
                for k in range(n):
                    clon += lon[w[k]]
                    clat += lat[w[k]]
                clon /= n
                clat /= n
                z = zone_at(clon, clat, route_zone_allowed[r], zone_ring_off, ring_off, vx, vy,
                            zmin_x, zmin_y, zmax_x, zmax_y, zgrid, zcell_keys, zcell_off, zcell_zones)
                if z >= 0:
                    s_stop_alert[d] = STOP_AUTHORISED
                else:
                    s_stop_alert[d] = STOP_ALERTED
                    ev_dev[ne], ev_kind[ne], ev_start[ne], ev_end[ne] = d, STOP_OPENED, t[w[0]], -1
                    ev_cross[ne], ev_lon[ne], ev_lat[ne], ev_point[ne] = t[i], clon, clat, i
                    ne += 1
            if stopped and s_stop_alert[d] != STOP_NONE:  # decided: the centroid is no longer needed
                n = compress_window(t, w, n, hull, hull_n, min_duration)
        s_stopped[d] = 1 if stopped else 0
        win_n[d] = n
    return (ev_dev[:ne], ev_kind[:ne], ev_start[:ne], ev_end[:ne], ev_cross[:ne], ev_lon[:ne], ev_lat[:ne],
            ev_point[:ne])
