"""When a truck's true path (no GPS error) enters and leaves a zone or crosses a
boundary line: what a scenario's expected milestones and alerts are timed by.

The path is sampled every second; degrees are treated as planar, which is
exact enough for rings and lines a few km across.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from firmware_sim.devices import Truck

STEP_MS = 1000

Ring = Sequence[tuple[float, float]]  # (lon, lat), closed


@dataclass(frozen=True)
class Path:
    """Where a truck is every ``STEP_MS`` from ``t[0]`` (epoch ms) to its arrival."""

    t: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    @classmethod
    def of(cls, truck: Truck, from_ms: int | None = None) -> Path:
        t = np.arange(truck.departure_ms if from_ms is None else from_ms, truck.arrival_ms + 1, STEP_MS,
                      dtype=np.int64)
        at = [truck.at(int(ms)) for ms in t]
        return cls(t, np.array([p[1] for p in at]), np.array([p[0] for p in at]))

    def spans_inside(self, ring: Ring) -> list[tuple[int, int]]:
        """(first, last) sample times (epoch ms) of each stretch of the path inside ``ring``."""
        inside = np.concatenate([[False], _inside(self.lon, self.lat, ring), [False]]).astype(np.int8)
        change = np.diff(inside)
        starts, ends = np.flatnonzero(change == 1), np.flatnonzero(change == -1) - 1
        return [(int(self.t[a]), int(self.t[b])) for a, b in zip(starts, ends, strict=True)]

    def crossings(self, line: Sequence[tuple[float, float]]) -> list[int]:
        """Sample times (epoch ms) just after each crossing of the polyline ``line`` (lon, lat)."""
        px, py = self.lon[:-1], self.lat[:-1]
        qx, qy = self.lon[1:], self.lat[1:]
        hit = np.zeros(len(px), dtype=bool)
        for (ax, ay), (bx, by) in itertools.pairwise(line):
            d1, d2 = _side(ax, ay, bx, by, px, py), _side(ax, ay, bx, by, qx, qy)
            d3, d4 = _side(px, py, qx, qy, ax, ay), _side(px, py, qx, qy, bx, by)
            hit |= (d1 * d2 < 0) & (d3 * d4 < 0)
        return [int(self.t[i + 1]) for i in np.flatnonzero(hit)]


def _side(ax: object, ay: object, bx: object, by: object, px: object, py: object) -> NDArray[np.float64]:
    """Sign of the turn a -> b -> p (positive: p left of a -> b), elementwise."""
    a_x, a_y, b_x, b_y = (np.asarray(v, dtype=np.float64) for v in (ax, ay, bx, by))
    p_x, p_y = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    return np.asarray((b_x - a_x) * (p_y - a_y) - (b_y - a_y) * (p_x - a_x), dtype=np.float64)


def _inside(x: NDArray[np.float64], y: NDArray[np.float64], ring: Ring) -> NDArray[np.bool_]:
    """Even-odd rule for every point (x[i], y[i]) against a closed ring."""
    inside = np.zeros(len(x), dtype=bool)
    for (ax, ay), (bx, by) in itertools.pairwise(ring):
        if ay == by:
            continue
        spans = (ay > y) != (by > y)
        cross_x = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= spans & (x < cross_x)
    return inside
