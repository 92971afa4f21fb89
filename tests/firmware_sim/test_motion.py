"""Truck kinematics and routes against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.corridors import NORTHERN_CORRIDOR
from firmware_sim.motion import ACCEL_MS2, BRAKE_MS2, Detour, Motion, Stop
from firmware_sim.route import RouteLine, haversine_m


def test_trapezoid_profile_times_and_distances() -> None:
    v = 20.0
    motion = Motion(10_000.0, [v], [])
    t_acc, t_brk = v / ACCEL_MS2, v / BRAKE_MS2
    d_acc, d_brk = v * v / (2 * ACCEL_MS2), v * v / (2 * BRAKE_MS2)
    assert motion.duration_s == pytest.approx(t_acc + (10_000 - d_acc - d_brk) / v + t_brk)
    assert motion.at(t_acc) == pytest.approx((d_acc, v))
    assert motion.at(motion.duration_s + 5) == (10_000.0, 0.0)


def test_truck_stands_still_during_a_stop() -> None:
    motion = Motion(20_000.0, [20.0, 20.0], [Stop(8_000.0, 1800.0)])
    stopped = [t for t in range(0, int(motion.duration_s)) if motion.at(t)[1] == 0.0 and t > 0]
    positions = {round(motion.at(t)[0], 6) for t in stopped}
    assert positions == {8_000.0}
    assert len(stopped) >= 1799


@given(st.floats(100, 5000), st.floats(5, 30))
def test_short_legs_never_overshoot(length: float, cruise: float) -> None:
    motion = Motion(length, [cruise], [])
    samples = [motion.at(t) for t in np.linspace(0, motion.duration_s, 200)]
    distances = [s for s, _ in samples]
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(distances))
    assert max(distances) == pytest.approx(length)
    assert max(v for _, v in samples) <= cruise + 1e-9


def test_corridor_length_and_named_stops() -> None:
    route = RouteLine.from_corridor(NORTHERN_CORRIDOR)
    legs = NORTHERN_CORRIDOR.waypoints
    straight = sum(
        float(haversine_m(np.array(a.lat), np.array(a.lon), np.array(b.lat), np.array(b.lon)))
        for a, b in itertools.pairwise(legs)
    )
    assert route.length_m == pytest.approx(straight, rel=1e-3)
    assert 1_400_000 < route.length_m < 1_900_000
    lat, lon, _ = route.position_at(route.stops["Malaba"])
    assert (lat, lon) == pytest.approx((0.6350, 34.2817), abs=1e-6)
    assert route.position_at(-5) == route.position_at(0)


def test_halt_time_is_when_the_truck_comes_to_rest() -> None:
    v = 20.0
    stop = Stop(8_000.0, 1800.0)
    motion = Motion(20_000.0, [v, v], [stop])
    expected = v / ACCEL_MS2 + (8_000 - v * v / (2 * ACCEL_MS2) - v * v / (2 * BRAKE_MS2)) / v + v / BRAKE_MS2
    assert motion.halt_s(stop) == pytest.approx(expected)
    assert motion.at(motion.halt_s(stop) - 1)[1] == pytest.approx(BRAKE_MS2 * 1.0)  # one second of braking left
    assert motion.at(motion.halt_s(stop) + 1799) == (8_000.0, 0.0)
    with pytest.raises(ValueError):
        motion.halt_s(Stop(9_000.0, 1800.0))


@given(st.floats(0, 30_000))
def test_time_at_inverts_the_distance(s: float) -> None:
    motion = Motion(30_000.0, [22.0, 15.0], [Stop(12_000.0, 600.0)])
    t = motion.time_at(s)
    assert motion.at(t)[0] == pytest.approx(s, abs=1e-6)
    assert t <= 1e-9 or motion.at(t - 0.5)[0] < s  # the first time there, not after the stop


def test_detour_ramps_holds_and_returns() -> None:
    d = Detour(start_s=100.0, ramp_s=120.0, hold_s=600.0, offset_m=-2000.0)
    assert [d.offset_at(t) for t in (100, 160, 220, 520, 820, 880, 940, 2000)] == [
        0.0, -1000.0, -2000.0, -2000.0, -2000.0, -1000.0, 0.0, 0.0]
    assert d.first_beyond_s(500.0) == pytest.approx(130.0)
    assert abs(d.offset_at(129.9)) < 500.0 < abs(d.offset_at(130.1))
    with pytest.raises(ValueError):
        d.first_beyond_s(2000.0)
