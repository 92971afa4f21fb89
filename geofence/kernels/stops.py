"""Stops as movingpandas' TrajectoryStopDetector finds them, in one pass, and
the multipath jumps kept away from them.

A stop is a run of fixes lasting at least ``min_duration`` (ms) whose minimum
rotated rectangle (GEOS's, as movingpandas measures it) has a diagonal under
``max_diameter`` (m); ``hull_rectangle`` says where a tie may differ from GEOS.
Coordinates are projected metres.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
