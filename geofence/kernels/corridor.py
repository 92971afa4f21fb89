"""The route corridor: distance to a route's segments through a sparse grid.

Projected coordinates are metres. A route's grid lists, for each cell its
segments' padded bounding boxes touch, the segments that can be in reach of a
point in that cell, nearest the cell's centre first.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
def find_cell(keys, lo, hi, key):  # type: ignore[no-untyped-def]
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
    return find_cell(cell_keys, col_off[col], col_off[col + 1], ix * grid_ny[r] + np.int64(fy))


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
        # Written out, not called through _route_cell: in this loop that took a
        # third less time (bench/RESULTS.md).
        fx = (x[i] - grid_x0[r]) / grid_cell[r]
        fy = (y[i] - grid_y0[r]) / grid_cell[r]
        if not (fx >= 0.0 and fy >= 0.0 and fx < grid_nx[r] and fy < grid_ny[r]):
            continue  # also NaN
        ix = np.int64(fx)
        col = col_base[r] + ix
        c = find_cell(cell_keys, col_off[col], col_off[col + 1], ix * grid_ny[r] + np.int64(fy))
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
