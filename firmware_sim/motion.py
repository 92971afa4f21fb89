"""Truck kinematics: piecewise-constant acceleration phases along a route.

A trip is legs between planned stops; each leg accelerates to a cruise speed,
cruises, and brakes to a halt (a triangle profile when the leg is short).
Evaluating a phase is closed-form, so a 20-hour trip costs nothing to sample.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

ACCEL_MS2 = 0.4  # loaded truck, m/s^2
BRAKE_MS2 = 0.6


@dataclass(frozen=True)
class Phase:
    t0: float  # seconds from departure
    s0: float  # metres along the route
    v0: float  # m/s
    a: float  # m/s^2
    t1: float

    def at(self, t: float) -> tuple[float, float]:
        dt = min(max(t - self.t0, 0.0), self.t1 - self.t0)
        return self.s0 + self.v0 * dt + 0.5 * self.a * dt * dt, self.v0 + self.a * dt


@dataclass(frozen=True)
class Stop:
    at_m: float  # metres along the route
    duration_s: float


@dataclass(frozen=True)
class Detour:
    """The truck leaves the route sideways (a parallel track, a yard off the road)
    and comes back, while its progress along the route goes on.

    Times in seconds from departure: the offset ramps linearly from 0 to
    ``offset_m`` metres (positive to the right of travel) over ``ramp_s``, holds
    for ``hold_s``, and ramps back over ``ramp_s``.
    """

    start_s: float
    ramp_s: float
    hold_s: float
    offset_m: float

    @property
    def end_s(self) -> float:
        return self.start_s + 2 * self.ramp_s + self.hold_s

    def offset_at(self, t: float) -> float:
        """Signed lateral offset (m) at ``t`` seconds from departure."""
        u = t - self.start_s
        if u <= 0 or t >= self.end_s:
            return 0.0
        if u < self.ramp_s:
            return self.offset_m * u / self.ramp_s
        if u <= self.ramp_s + self.hold_s:
            return self.offset_m
        return self.offset_m * (self.end_s - t) / self.ramp_s

    def first_beyond_s(self, distance_m: float) -> float:
        """Seconds from departure after which the offset first exceeds ``distance_m`` metres."""
        if abs(self.offset_m) <= distance_m:
            raise ValueError(f"a detour of {self.offset_m} m never goes beyond {distance_m} m")
        return self.start_s + self.ramp_s * distance_m / abs(self.offset_m)


@dataclass(frozen=True)
class Reversal:
    """A U-turn: at ``start_s`` seconds from departure the truck turns and drives ``back_m``
    metres back towards the origin at ``speed_ms``, then turns again and drives forward the
    same distance; its trip then goes on where it turned (``end_s`` - ``start_s`` later)."""

    start_s: float
    back_m: float
    speed_ms: float

    @property
    def end_s(self) -> float:
        return self.start_s + 2 * self.back_m / self.speed_ms

    def at(self, t: float, turned_at_m: float) -> tuple[float, bool]:
        """(metres along the route, driving back) at ``t`` seconds from departure, within the reversal."""
        u = t - self.start_s
        half = self.back_m / self.speed_ms
        if u < half:
            return turned_at_m - self.speed_ms * u, True
        return turned_at_m - self.back_m + self.speed_ms * (u - half), False

    def back_by_s(self, distance_m: float) -> float:
        """Seconds from departure when the truck is ``distance_m`` metres behind where it turned."""
        return self.start_s + distance_m / self.speed_ms


class Motion:
    """Distance and speed along the route as a function of time since departure."""

    def __init__(self, length_m: float, cruise_ms: list[float], stops: list[Stop]) -> None:
        if len(cruise_ms) != len(stops) + 1:
            raise ValueError(f"need {len(stops) + 1} cruise speeds for {len(stops)} stops, got {len(cruise_ms)}")
        self.phases: list[Phase] = []
        self.stops = tuple(stops)
        self._halts: list[float] = []
        t, s = 0.0, 0.0
        ends = [st.at_m for st in stops] + [length_m]
        for end, v, stop in zip(ends, cruise_ms, [*stops, None], strict=True):
            t, s = self._leg(t, s, end, v)
            if stop is not None:
                self._halts.append(t)
                self.phases.append(Phase(t, s, 0.0, 0.0, t + stop.duration_s))
                t += stop.duration_s
        self.duration_s = t
        self.length_m = length_m
        self._starts = [p.t0 for p in self.phases]

    def _leg(self, t: float, s: float, end: float, v: float) -> tuple[float, float]:
        dist = end - s
        if dist <= 0:
            return t, s
        d_acc, d_brk = v * v / (2 * ACCEL_MS2), v * v / (2 * BRAKE_MS2)
        if d_acc + d_brk > dist:  # short leg: peak speed below cruise
            v = (2 * dist * ACCEL_MS2 * BRAKE_MS2 / (ACCEL_MS2 + BRAKE_MS2)) ** 0.5
            d_acc, d_brk = v * v / (2 * ACCEL_MS2), v * v / (2 * BRAKE_MS2)
        t_acc, t_brk = v / ACCEL_MS2, v / BRAKE_MS2
        t_cruise = (dist - d_acc - d_brk) / v
        self.phases.append(Phase(t, s, 0.0, ACCEL_MS2, t + t_acc))
        self.phases.append(Phase(t + t_acc, s + d_acc, v, 0.0, t + t_acc + t_cruise))
        self.phases.append(Phase(t + t_acc + t_cruise, end - d_brk, v, -BRAKE_MS2, t + t_acc + t_cruise + t_brk))
        return t + t_acc + t_cruise + t_brk, end

    def at(self, t: float) -> tuple[float, float]:
        """(metres along the route, speed m/s) at ``t`` seconds after departure."""
        if t <= 0 or not self.phases:
            return 0.0, 0.0
        if t >= self.duration_s:
            return self.length_m, 0.0
        i = bisect.bisect_right(self._starts, t) - 1
        return self.phases[i].at(t)

    def halt_s(self, stop: Stop) -> float:
        """Seconds from departure when the truck comes to rest at ``stop`` (one of its stops)."""
        return self._halts[self.stops.index(stop)]

    def time_at(self, s: float) -> float:
        """Seconds from departure when the truck first reaches ``s`` metres along the route."""
        if s <= 0:
            return 0.0
        for p in self.phases:
            if (p.v0 > 0 or p.a > 0) and s <= p.at(p.t1)[0]:
                ds = s - p.s0
                if p.a == 0:
                    return p.t0 + ds / p.v0
                # The earlier root of s0 + v0 dt + a dt^2 / 2 = s, for braking too.
                return p.t0 + (math.sqrt(max(p.v0 * p.v0 + 2 * p.a * ds, 0.0)) - p.v0) / p.a
        return self.duration_s
