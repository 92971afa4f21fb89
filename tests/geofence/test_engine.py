"""The engine on hand-built tracks: transitions, hysteresis, zones, state round trips."""

from __future__ import annotations

import itertools
from dataclasses import replace

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import engine
from geofence.engine import Track, TrackError, Transition, evaluate, is_breach
from geofence.rules import Rules
from geofence.state import DeviceState, dumps, loads
from tests.geofence.tracks import BINDING, STEP_MS, T0, Trip, straight_network

NET = straight_network()
RULES = Rules()


def run(track: Track, state: DeviceState | None = None) -> tuple[list[Transition], DeviceState]:
    transitions, states = evaluate(NET, RULES, {"trk": (BINDING, state or DeviceState(shipment_id=7), track)})
    return transitions, states["trk"]


def kinds(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.event, t.type) for t in transitions]


def test_on_route_trip_raises_nothing_and_tracks_progress() -> None:
    transitions, state = run(Trip().drive(200).track())
    assert transitions == []
    # 199 steps of 333.3 m along a straight route starting at its first vertex
    assert state.chainage_m == pytest.approx(199 * 80 / 3.6 * 15, rel=1e-3)
    assert state.distance_m is not None and state.distance_m < 1.0


def test_deviation_opens_after_60_s_outside_and_ends_after_60_s_back() -> None:
    transitions, _ = run(Trip().drive(20).drive(8, north_m=900).drive(10, north_m=0).track())
    assert kinds(transitions) == [("opened", "route_deviation"), ("ended", "route_deviation")]
    opened, ended = transitions
    first_out = T0 + 20 * STEP_MS
    assert opened.started_ms == first_out and opened.crossed_ms == first_out + 60_000
    assert opened.lat == pytest.approx(900 / 111_320)
    assert ended.ended_ms == first_out + 7 * STEP_MS  # the last fix outside
    assert ended.crossed_ms == first_out + 8 * STEP_MS + 60_000  # 60 s after the first fix back


def test_short_excursions_and_edge_noise_raise_nothing() -> None:
    trip = Trip().drive(10).drive(4, north_m=900).drive(10, north_m=0)  # 45 s outside
    for k in range(40):  # hugging the corridor edge, in and out every fix
        trip.drive(1, north_m=480 if k % 2 else 520)
    assert run(trip.drive(5, north_m=0).track())[0] == []


def test_deviation_does_not_end_while_it_keeps_going_out() -> None:
    trip = Trip().drive(5).drive(6, north_m=900)
    for _ in range(5):
        trip.drive(3, north_m=0).drive(2, north_m=900)  # 45 s back, then out again
    transitions, state = run(trip.track())
    assert kinds(transitions) == [("opened", "route_deviation")]
    assert state.deviation_open


def test_unscheduled_stop_opens_at_15_min_and_ends_when_moving() -> None:
    transitions, state = run(Trip().drive(20).park(100).drive(10).track())
    assert kinds(transitions) == [("opened", "unscheduled_stop"), ("ended", "unscheduled_stop")]
    opened, ended = transitions
    stop_start = T0 + 20 * STEP_MS
    assert opened.started_ms == stop_start and opened.crossed_ms == stop_start + 15 * 60_000
    # the first fix of drive() is still at the parking spot: the stop ends one fix later
    assert ended.ended_ms == stop_start + 100 * STEP_MS
    assert state.stop_alert == 0


@pytest.mark.parametrize("lon", [30.199, 30.9995])
def test_stops_in_authorised_or_office_zones_raise_nothing(lon: float) -> None:
    transitions, state = run(Trip(lon=lon).drive(1, kmh=1).park(100).track())
    assert transitions == []
    assert state.stop_alert == 2  # decided: authorised


def test_stop_in_a_zone_of_another_route_is_unscheduled() -> None:
    transitions, _ = run(Trip(lon=30.6).drive(1, kmh=1).park(100).track())
    assert kinds(transitions) == [("opened", "unscheduled_stop")]


def test_a_multipath_jump_does_not_split_a_stop() -> None:
    transitions, _ = run(Trip().drive(20).park(40).jump(300).park(60).jump(-350).park(30).drive(10).track())
    assert kinds(transitions) == [("opened", "unscheduled_stop"), ("ended", "unscheduled_stop")]


def test_a_short_stop_raises_nothing() -> None:
    assert run(Trip().drive(20).park(55).drive(20).track())[0] == []


def test_backlog_marks_alerts_late() -> None:
    trip = Trip().drive(20).park(100).drive(10)
    track = trip.track()
    backlog = np.zeros(len(track.t), dtype=np.bool_)
    backlog[20:90] = True
    transitions, _ = run(Track(track.t, track.lon, track.lat, backlog))
    assert [t.late for t in transitions] == [True, False]


def test_fixes_before_departure_are_ignored() -> None:
    track = Trip(start_ms=T0 - 200 * STEP_MS).drive(10).park(240).track()  # parked until 12.5 min after departure
    assert run(track)[0] == []


def test_older_fix_needs_a_replay() -> None:
    _, state = run(Trip().drive(10).track())
    with pytest.raises(TrackError, match="device trk: fix at"):
        run(Trip().drive(3).track(), state)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(1, 300), max_size=12))
def test_any_batching_with_saved_state_gives_the_same_alerts(cuts: list[int]) -> None:
    track = (Trip().drive(20).drive(8, north_m=900).drive(10, north_m=0).park(80).jump(300).park(30)
             .drive(30).park(70).track())
    whole, final = run(track)
    assert kinds(whole) == [("opened", "route_deviation"), ("ended", "route_deviation"), ("opened", "unscheduled_stop"),
                           ("ended", "unscheduled_stop"), ("opened", "unscheduled_stop")]
    state = DeviceState(shipment_id=7)
    pieces: list[Transition] = []
    bounds = sorted({0, *[c for c in cuts if c < len(track.t)], len(track.t)})
    for a, b in itertools.pairwise(bounds):
        part = Track(track.t[a:b], track.lon[a:b], track.lat[a:b], track.backlog[a:b])
        transitions, state = run(part, state)
        state = loads(dumps(state))  # as if ingest restarted between batches
        pieces.extend(transitions)
    assert pieces == whole
    assert state == final


def test_seal_breach_rules() -> None:
    assert is_breach(NET, BINDING, "opened", 30.5, 0.0)
    assert is_breach(NET, BINDING, "cut", None, None)  # where it happened is unknown
    assert not is_breach(NET, BINDING, "opened", 31.001, 0.001)  # inside the destination office
    assert not is_breach(NET, BINDING, "armed", 30.5, 0.0)
    assert is_breach(NET, BINDING, "tampered", 30.2, 0.0)  # a stop zone is not the destination


def test_corridor_factor_narrows_the_corridor_per_device() -> None:
    track = Trip().drive(20).drive(8, north_m=300).drive(10, north_m=0).track()
    narrow = replace(BINDING, corridor_factor=0.5)  # 250 m each side
    assert run(track)[0] == []
    transitions, _ = evaluate(NET, RULES, {"a": (narrow, DeviceState(shipment_id=7), track),
                                                "b": (BINDING, DeviceState(shipment_id=7), track)})
    assert [(t.device_id, t.event, t.type) for t in transitions] == [
        ("a", "opened", "route_deviation"), ("a", "ended", "route_deviation")]


def test_stop_minimum_per_device() -> None:
    track = Trip().drive(20).park(30).drive(10).track()  # parked 7.5 min
    assert run(track)[0] == []
    short = replace(BINDING, stop_min_ms=5 * 60_000)
    transitions, _ = evaluate(NET, RULES, {"trk": (short, DeviceState(shipment_id=7), track)})
    assert kinds(transitions) == [("opened", "unscheduled_stop"), ("ended", "unscheduled_stop")]
    assert transitions[0].crossed_ms == T0 + 20 * STEP_MS + 5 * 60_000


def test_old_saved_states_still_decode() -> None:
    old = msgspec.msgpack.encode({"shipment_id": 7, "last_ts": 5, "deviation_open": True, "context": b"",
                                  "n_window": 0})
    state = loads(old)
    assert state.deviation_open and state.office_pos == -1 and state.country is None
    assert state.rule("furthest_m") is None and state.rule("post_seen") == -1 and not state.rule("in_corridor")


def test_events_beyond_the_first_room_are_found_by_a_second_run(monkeypatch: pytest.MonkeyPatch) -> None:
    track = (Trip().drive(20).drive(8, north_m=900).drive(10, north_m=0).park(80).drive(30).park(70)
             .drive(8, north_m=900).drive(10, north_m=0).track())
    whole, state = run(track)
    assert len(whole) >= 5
    monkeypatch.setattr(engine, "events_room", lambda fixes: 1)
    again, state_again = run(track)
    assert again == whole and state_again == state


def test_engine_alert_types_are_the_alert_kinds_not_milestones() -> None:
    assert engine.ENGINE_ALERT_TYPES == ("route_deviation", "unscheduled_stop", "office_skipped", "border_dwell",
                                         "route_reversal", "suspicious_gap", "border_bypass")
