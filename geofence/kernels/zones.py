"""Zones: which polygon contains a point.

Zone coordinates are WGS84 degrees (lon, lat), not projected metres, because
GeoJSON polygon edges are straight in that space (RFC 7946).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from geofence.kernels.corridor import find_cell


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
    c = find_cell(zcell_keys, 0, zcell_keys.shape[0], key)
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
