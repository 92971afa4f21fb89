"""Route reversal and suspicious gaps on hand-built tracks; the gap's prism against shapely."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from geofence.engine import Track, Transition, evaluate
from geofence.prism import VERTICES, ellipse
from geofence.rules import Rules
from geofence.state import DeviceState
from tests.geofence.tracks import BINDING, STEP_MS, Trip, straight_network

NET = straight_network()
RULES = Rules()


def run(track: Track, state: DeviceState | None = None, rules: Rules = RULES) -> tuple[list[Transition], DeviceState]:
    transitions, states = evaluate(NET, rules, {"trk": (BINDING, state or DeviceState(shipment_id=7), track)})
    return transitions, states["trk"]


def of_type(transitions: list[Transition], type_: str) -> list[Transition]:
    return [t for t in transitions if t.type == type_]


def test_a_u_turn_of_3_km_opens_a_reversal_that_ends_back_near_the_furthest_point() -> None:
    trip = Trip().drive(40, kmh=60).back(12, kmh=64).drive(30, kmh=60)  # 267 m a fix: 3.2 km back, then on
    track = trip.track()
    transitions, state = run(track)
    opened, ended = of_type(transitions, "route_reversal")
    furthest = 40  # the first fix of back() is where drive() left the truck
    assert opened.event == "opened" and opened.started_ms == track.t[furthest]
    assert opened.lon == pytest.approx(track.lon[furthest])
    # 267 m a fix back from the furthest point: 2 km behind 8 fixes later (2,133 m)
    assert opened.crossed_ms == track.t[furthest + 8]
    # 3,200 m behind, then east at 250 m a fix: within 500 m 11 fixes later (450 m)
    assert ended.event == "ended" and ended.ended_ms == ended.crossed_ms == track.t[furthest + 12 + 11]
    assert not state.reversal_open and state.rule("furthest_m") is not None


def test_backing_up_a_kilometre_or_leaving_the_corridor_is_no_reversal() -> None:
    assert of_type(run(Trip().drive(40, kmh=60).back(4).drive(30, kmh=60).track())[0], "route_reversal") == []
    # 3 km west but 900 m north of the road: outside the corridor, the chainage is not known there
    trip = Trip().drive(40, kmh=60).drive(1, north_m=900, kmh=60).back(12)
    assert of_type(run(trip.track())[0], "route_reversal") == []
    assert of_type(run(Trip().drive(40, kmh=60).back(12).track(), rules=Rules(reversal_rule=False))[0],
                   "route_reversal") == []


def test_a_90_min_gap_hiding_a_detour_is_suspicious() -> None:
    # 60 km of progress in 90 minutes: an hour at normal speed, half an hour unexplained
    trip = Trip().drive(20, kmh=60).silence(90, 60).drive(20, kmh=60)
    track = trip.track()
    transitions, _ = run(track)
    (gap,) = of_type(transitions, "suspicious_gap")
    assert gap.event == "opened" and gap.instantaneous
    assert gap.started_ms == track.t[19] and gap.ended_ms == gap.crossed_ms == track.t[20]
    assert gap.lon == pytest.approx(track.lon[19])
    assert gap.detail["gap_min"] == 90.0
    assert gap.detail["unexplained_min"] == pytest.approx(30 - 0.25, abs=0.01)  # the last step before: 250 m


def test_a_60_min_gap_the_distance_explains_raises_nothing() -> None:
    trip = Trip().drive(20, kmh=60).silence(60, 55).drive(20, kmh=60)  # unexplained 4.75 min < 12.4
    assert of_type(run(trip.track())[0], "suspicious_gap") == []
    assert RULES.suspicious_gap_s == pytest.approx(600 + 4000 / (100 / 3.6))


def test_a_gap_across_batches_is_found_from_the_saved_state() -> None:
    track = Trip().drive(20, kmh=60).silence(90, 60).drive(20, kmh=60).track()
    whole, _ = run(track)
    first, state = run(Track(track.t[:20], track.lon[:20], track.lat[:20], track.backlog[:20]))
    second, _ = run(Track(track.t[20:], track.lon[20:], track.lat[20:], track.backlog[20:]), state)
    assert first + second == whole and of_type(whole, "suspicious_gap")


def test_a_gap_off_the_route_is_measured_straight() -> None:
    # 90 minutes, ends 900 m north of the road (outside the corridor) 60 km further east
    trip = Trip().drive(20, kmh=60).silence(90, 60).drive(20, north_m=900, kmh=60)
    (gap,) = of_type(run(trip.track())[0], "suspicious_gap")
    assert gap.detail["unexplained_min"] == pytest.approx(30 - 0.25, abs=0.05)


def test_the_prism_is_the_ellipse_with_the_two_fixes_as_foci() -> None:
    track = Trip().drive(20, kmh=60).silence(90, 60).drive(20, kmh=60).track()
    (gap,) = of_type(run(track)[0], "suspicious_gap")
    area = gap.detail["area"]
    assert area["type"] == "Polygon" and len(area["coordinates"]) == 1
    ring = np.array(area["coordinates"][0])
    assert len(ring) == VERTICES + 1 and (ring[0] == ring[-1]).all()
    tr = NET.transformers[0]
    x, y = tr.transform(ring[:, 0], ring[:, 1])
    (ax, bx), (ay, by) = tr.transform(track.lon[19:21], track.lat[19:21])
    reach = 100 / 3.6 * 90 * 60
    sums = np.hypot(x - ax, y - ay) + np.hypot(x - bx, y - by)
    assert sums == pytest.approx(np.full(len(sums), reach), abs=0.5)  # coordinates rounded to 1e-7 degrees
    polygon = shapely.Polygon(np.column_stack([x, y]))
    assert polygon.is_valid and polygon.contains(shapely.Point(ax, ay)) and polygon.contains(shapely.Point(bx, by))
    a = reach / 2
    b = math.sqrt(a * a - (math.hypot(bx - ax, by - ay) / 2) ** 2)
    assert polygon.area == pytest.approx(math.pi * a * b, rel=0.01)


def test_an_unreachable_fix_degenerates_the_ellipse_to_the_segment() -> None:
    x, y = ellipse(0.0, 0.0, 1000.0, 0.0, 500.0)
    assert np.allclose(y, 0.0) and x.min() == pytest.approx(0.0) and x.max() == pytest.approx(1000.0)
    assert STEP_MS == 15_000
