"""Countries: which country contains a point, in a few edge tests.

Country outlines have thousands of vertices (Kenya 6.5k, Tanzania 20k), so no
query tests a whole polygon. A grid over (lon, lat) degrees is stored column by
column as runs of cells: a run without edges lies wholly in one country (or in
none); a boundary cell is a run of its own that keeps the edges crossing it and
a reference point inside it whose country was decided at build time. A query in
a boundary cell counts, per country, the edges the segment point -> reference
crosses: an odd count means the point is on the other side of that country's
outline than the reference (even-odd, so holes and multipolygons need nothing
special).

Arrays (``CountryIndex.args()`` order, after the point):
``grid`` = (x0, y0, cell, nx, ny); column ix's runs are ``col_off[ix]:col_off[ix + 1]``,
each starting at row ``run_iy``; ``run_country`` is the run's country (its
reference's for a boundary cell), -1 none; ``run_ref_x/y`` the reference point;
``run_edge_off`` delimits the run's entries, sorted by country; entry k is the
edge from vertex ``entry_edge[k]`` to the next one (``vx``, ``vy``) of country
``entry_country[k]``, and ``entry_ref_inside[k]`` says whether the run's
reference is inside that country. For a boundary cell ``run_country`` is the
lowest country containing the reference among those with no edge in the cell.

Where countries overlap (claims the data set leaves double), the lowest country
index wins, everywhere alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def crosses(px, py, rx, ry, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """Does segment P->R cross edge AB? Vertices on the line PR count as on its
    right (half-open), so an outline passing through a vertex is counted once."""
    sa = (rx - px) * (ay - py) - (ry - py) * (ax - px) > 0.0
    sb = (rx - px) * (by - py) - (ry - py) * (bx - px) > 0.0
    if sa == sb:
        return False
    op = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    orr = (bx - ax) * (ry - ay) - (by - ay) * (rx - ax)
    return (op > 0.0) != (orr > 0.0)


@njit(cache=True)
def country_at(px, py, grid, col_off, run_iy, run_country, run_ref_x, run_ref_y,  # type: ignore[no-untyped-def]
               run_edge_off, entry_edge, entry_country, entry_ref_inside, vx, vy):
    """Index of the country containing (lon, lat) degrees, or -1 for none."""
    fx = (px - grid[0]) / grid[2]
    fy = (py - grid[1]) / grid[2]
    if not (fx >= 0.0 and fy >= 0.0 and fx < grid[3] and fy < grid[4]):
        return -1
    ix = np.int64(fx)
    iy = np.int64(fy)
    lo = col_off[ix]
    hi = col_off[ix + 1]
    if lo == hi or run_iy[lo] > iy:
        return -1
    while hi - lo > 1:  # last run starting at or below row iy
        mid = (lo + hi) >> 1
        if run_iy[mid] <= iy:
            lo = mid
        else:
            hi = mid
    background = run_country[lo]
    k = run_edge_off[lo]
    end = run_edge_off[lo + 1]
    if k == end:
        return background
    rx = run_ref_x[lo]
    ry = run_ref_y[lo]
    while k < end:  # countries ascending: the first one containing the point is the lowest
        c = entry_country[k]
        ref_inside = entry_ref_inside[k]
        odd = False
        while k < end and entry_country[k] == c:
            e = entry_edge[k]
            if crosses(px, py, rx, ry, vx[e], vy[e], vx[e + 1], vy[e + 1]):
                odd = not odd
            k += 1
        if ref_inside != odd:
            return c if background < 0 or c < background else background
    return background


@njit(cache=True)
def countries_of_points(px, py, grid, col_off, run_iy, run_country, run_ref_x, run_ref_y,  # type: ignore[no-untyped-def]
                        run_edge_off, entry_edge, entry_country, entry_ref_inside, vx, vy):
    """For each (lon, lat) point the index of its country, or -1."""
    out = np.empty(px.shape[0], dtype=np.int64)
    for i in range(px.shape[0]):
        out[i] = country_at(px[i], py[i], grid, col_off, run_iy, run_country, run_ref_x, run_ref_y,
                            run_edge_off, entry_edge, entry_country, entry_ref_inside, vx, vy)
    return out


# --- build time (CountryIndex.build) ---------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _first_odd(odd, n_odd, xor_odd):  # type: ignore[no-untyped-def]
    if n_odd == 0:
        return -1
    if n_odd == 1:
        return xor_odd
    for c in range(odd.shape[0]):
        if odd[c]:
            return c
    return -1


@njit(cache=True)
def parity_by_ray(px, py, vx, vy, edge_start, edge_country, n_countries):  # type: ignore[no-untyped-def]
    """Which countries contain (lon, lat), by a vertical ray through every edge: slow,
    for the few reference points the sweep cannot place (same rule as ``sweep_columns``)."""
    odd = np.zeros(n_countries, dtype=np.bool_)
    for k in range(edge_start.shape[0]):
        e = edge_start[k]
        ax, ay, bx, by = vx[e], vy[e], vx[e + 1], vy[e + 1]
        if (ax > px) != (bx > px) and ay + (px - ax) * (by - ay) / (bx - ax) < py:
            odd[edge_country[k]] = not odd[edge_country[k]]
    return odd


@njit(cache=True)
def set_reference(odd, a, b, entry_country, entry_ref_inside, has_edges):  # type: ignore[no-untyped-def]
    """Record, for a boundary cell whose entries are ``a:b``, which countries contain its
    reference (``odd``); returns its background country (see the module docstring).
    ``has_edges`` is scratch, all False on entry and on return."""
    for k in range(a, b):
        entry_ref_inside[k] = odd[entry_country[k]]
        has_edges[entry_country[k]] = True
    background = -1
    for c in range(odd.shape[0]):
        if odd[c] and not has_edges[c]:
            background = c
            break
    for k in range(a, b):
        has_edges[entry_country[k]] = False
    return background


@njit(cache=True)
def sweep_columns(fill, grid, n_countries, vx, vy, edge_start, edge_country, col_edge_off,  # type: ignore[no-untyped-def]
                  col_edges, cell_keys, cell_entry_off, entry_country, col_off, run_iy, run_country, run_ref_x,
                  run_ref_y, run_edge_off, cell_run, entry_ref_inside):
    """Decide the country of every cell centre by a vertical ray up each column and
    cut the columns into runs; returns the number of runs.

    Called twice: ``fill`` False only counts (the output arrays may be empty),
    True writes them. Edge i runs from vertex ``edge_start[i]`` to the next one;
    column ix's candidate edges are ``col_edges[col_edge_off[ix]:col_edge_off[ix + 1]]``.
    ``cell_keys`` (ix * ny + iy, sorted) are the boundary cells, ``cell_entry_off``
    their entry ranges; ``cell_run`` receives each one's run and ``entry_ref_inside``
    the side of its reference.
    """
    x0, y0, cell = grid[0], grid[1], grid[2]
    nx, ny = np.int64(grid[3]), np.int64(grid[4])
    odd = np.zeros(n_countries, dtype=np.bool_)
    has_edges = np.zeros(n_countries, dtype=np.bool_)
    n_runs = 0
    b = 0  # next boundary cell
    for ix in range(nx):
        if fill:
            col_off[ix] = n_runs
        xc = x0 + (ix + 0.5) * cell
        lo, hi = col_edge_off[ix], col_edge_off[ix + 1]
        ys = np.empty(hi - lo)
        cs = np.empty(hi - lo, dtype=np.int64)
        m = 0
        for k in range(lo, hi):
            i = col_edges[k]
            e = edge_start[i]
            ax, ay, bx, by = vx[e], vy[e], vx[e + 1], vy[e + 1]
            if (ax > xc) != (bx > xc):
                ys[m] = ay + (xc - ax) * (by - ay) / (bx - ax)
                cs[m] = edge_country[i]
                m += 1
        order = np.argsort(ys[:m])
        odd[:] = False
        n_odd = 0
        xor_odd = 0
        j = 0
        last_interior = -2  # country of the column's last run when it has no edges, else -2
        for iy in range(ny):
            yc = y0 + (iy + 0.5) * cell
            while j < m and ys[order[j]] < yc:
                c = cs[order[j]]
                odd[c] = not odd[c]
                n_odd += 1 if odd[c] else -1
                xor_odd ^= c
                j += 1
            here = _first_odd(odd, n_odd, xor_odd)
            if b < cell_keys.shape[0] and cell_keys[b] == ix * ny + iy:
                if fill:
                    run_iy[n_runs] = iy
                    run_country[n_runs] = set_reference(odd, cell_entry_off[b], cell_entry_off[b + 1],
                                                        entry_country, entry_ref_inside, has_edges)
                    run_ref_x[n_runs] = xc
                    run_ref_y[n_runs] = yc
                    run_edge_off[n_runs] = cell_entry_off[b]
                    cell_run[b] = n_runs
                n_runs += 1
                b += 1
                last_interior = -2
            elif here != last_interior:
                if fill:
                    run_iy[n_runs] = iy
                    run_country[n_runs] = here
                    run_ref_x[n_runs] = xc
                    run_ref_y[n_runs] = yc
                    run_edge_off[n_runs] = cell_entry_off[b]  # empty range: b's entries start here
                n_runs += 1
                last_interior = here
    if fill:
        col_off[nx] = n_runs
        run_edge_off[n_runs] = cell_entry_off[cell_keys.shape[0]]
    return n_runs


@njit(cache=True)
def min_ref_distance(cell_run, cell_entry_off, entry_edge, vx, vy, run_ref_x, run_ref_y):  # type: ignore[no-untyped-def]
    """For each boundary cell, the distance (degrees) from its reference point to its nearest edge."""
    out = np.empty(cell_run.shape[0])
    for b in range(cell_run.shape[0]):
        r = cell_run[b]
        px, py = run_ref_x[r], run_ref_y[r]
        best = np.inf
        for k in range(cell_entry_off[b], cell_entry_off[b + 1]):
            e = entry_edge[k]
            ax, ay, bx, by = vx[e], vy[e], vx[e + 1], vy[e + 1]
            dx, dy = bx - ax, by - ay
            ll = dx * dx + dy * dy
            t = 0.0 if ll == 0.0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / ll))
            qx, qy = ax + t * dx - px, ay + t * dy - py
            best = min(best, np.sqrt(qx * qx + qy * qy))
        out[b] = best
    return out
