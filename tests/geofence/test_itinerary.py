"""Itinerary rules on hand-built tracks: milestones with hysteresis, skipped offices, border dwell."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.engine import Binding, Track, TrackError, Transition, evaluate
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import DeviceState, dumps, loads
from tests.geofence.tracks import (
    M_PER_DEG,
    POST_LONS,
    STEP_MS,
    T0,
    Trip,
    itinerary_binding,
    itinerary_network,
)

NET = itinerary_network()
RULES = Rules()
ITINERARY_ONLY = Rules(reversal_rule=False, gap_rule=False)
BINDING = itinerary_binding()


def run(track: Track, binding: Binding = BINDING, network: Network = NET, state: DeviceState | None = None,
        rules: Rules = RULES) -> tuple[list[Transition], DeviceState]:
    transitions, states = evaluate(network, rules, {"trk": (binding, state or DeviceState(shipment_id=8), track)})
    return transitions, states["trk"]


def seen(transitions: list[Transition]) -> list[tuple[str, str, int]]:
    return [(t.event, t.type, t.office) for t in transitions]


def full_trip() -> Trip:
    """Departure office, ten minutes parked at the first post, through the second, into the destination."""
    return Trip().drive_to(POST_LONS[0]).park(40).drive_to(POST_LONS[1]).drive_to(31.0).park(10)


def test_a_trip_through_every_office_gives_its_milestones_in_order() -> None:
    transitions, state = run(full_trip().track())
    assert seen(transitions) == [
        ("milestone", "arrived", 0), ("milestone", "departed", 0), ("milestone", "arrived", 1),
        ("milestone", "departed", 1), ("milestone", "arrived", 2), ("milestone", "departed", 2),
        ("milestone", "arrived", 3)]
    assert state.rule("reached") == 0b1111 and state.office_pos == 3


def test_milestone_times_are_first_and_last_fix_inside_confirmed_by_hysteresis() -> None:
    trip = full_trip()
    track = trip.track()
    transitions, _ = run(track)
    half = 500 / M_PER_DEG
    inside = np.flatnonzero(np.abs(track.lon - POST_LONS[0]) <= half)
    arrived, departed = (t for t in transitions if t.office == 1)
    assert arrived.started_ms == track.t[inside[0]]
    assert arrived.crossed_ms == track.t[inside[0]] + 30_000  # office_enter_s
    assert arrived.ended_ms is None
    assert departed.started_ms == track.t[inside[-1]]
    assert departed.crossed_ms == track.t[inside[-1] + 1] + 60_000  # office_exit_s after the first fix outside
    assert departed.detail["position"] == 1
    assert departed.detail["inside_s"] == (track.t[inside[-1]] - track.t[inside[0]]) / 1000
    # 40 fixes parked: 40 intervals of 15 s at no speed (the one into the parking spot too)
    assert departed.detail["stationary_s"] == pytest.approx(40 * 15, abs=15)


def test_an_office_never_arrived_at_is_skipped_once_on_arrival_further_on() -> None:
    network = itinerary_network(post_lats=(0.03, 0.0))  # the first post 3.3 km off the road
    transitions, state = run(full_trip().track(), network=network)
    skipped = [t for t in transitions if t.type == "office_skipped"]
    assert len(skipped) == 1
    alert = skipped[0]
    assert alert.event == "opened" and alert.office == 1 and alert.instantaneous
    assert alert.detail == {"office": "KEPOST", "position": 1, "reached": "UGPOST"}
    arrival = next(t for t in transitions if t.type == "arrived" and t.office == 2)
    assert alert.started_ms == arrival.started_ms and alert.ended_ms == alert.crossed_ms == arrival.crossed_ms
    assert state.rule("skipped") == 0b10


def test_an_office_without_a_zone_is_not_watched() -> None:
    binding = Binding(8, 0, 3, T0, offices=(0, -1, 2, 3), transit=(False, True, True, False))
    transitions, _ = run(full_trip().track(), binding=binding)
    assert "office_skipped" not in [t.type for t in transitions]


def test_border_dwell_opens_at_the_limit_and_ends_at_departure() -> None:
    trip = Trip().drive_to(POST_LONS[0]).park(300).drive_to(30.45)  # 75 min at the post, limit 60
    transitions, _ = run(trip.track())
    dwell = [t for t in transitions if t.type == "border_dwell"]
    assert [t.event for t in dwell] == ["opened", "ended"]
    arrived = next(t for t in transitions if t.type == "arrived" and t.office == 1)
    departed = next(t for t in transitions if t.type == "departed" and t.office == 1)
    assert dwell[0].started_ms == arrived.started_ms
    assert dwell[0].crossed_ms is not None and arrived.started_ms is not None
    assert arrived.started_ms + 3_600_000 <= dwell[0].crossed_ms < arrived.started_ms + 3_600_000 + STEP_MS
    assert dwell[0].detail == {"office": "KEPOST", "position": 1, "limit_s": 3600.0}
    assert dwell[1].ended_ms == departed.started_ms and dwell[1].crossed_ms == departed.crossed_ms


def test_a_short_stay_raises_no_dwell_and_unwatched_offices_none() -> None:
    transitions, _ = run(Trip().drive_to(POST_LONS[0]).park(200).drive_to(30.45).track())  # 50 min
    assert "border_dwell" not in [t.type for t in transitions]
    transitions, _ = run(Trip().park(300).drive(10).track())  # 75 min at the departure office: not watched
    assert "border_dwell" not in [t.type for t in transitions]


def test_gps_scatter_at_a_zone_edge_neither_arrives_nor_departs() -> None:
    edge = POST_LONS[0] - 500 / M_PER_DEG
    trip = Trip().drive_to(30.2)
    trip.lon = edge
    for k in range(60):  # in and out every fix, 20 m either side of the edge
        trip.lon = edge + (20 if k % 2 else -20) / M_PER_DEG
        trip.park(1)
    transitions, _ = run(trip.track())
    assert not [t for t in transitions if t.office == 1]
    trip = Trip().drive_to(POST_LONS[0]).park(10)  # arrived; now scatter at the far edge
    far = POST_LONS[0] + 500 / M_PER_DEG
    for k in range(60):
        trip.lon = far + (20 if k % 2 else -20) / M_PER_DEG
        trip.park(1)
    transitions, _ = run(trip.track())
    assert [t.type for t in transitions if t.office == 1] == ["arrived"]


def test_rules_switch_off_the_itinerary_and_bad_bindings_are_refused() -> None:
    transitions, _ = run(full_trip().track(), rules=Rules(border_rules=False))
    assert transitions == []
    with pytest.raises(TrackError, match="device trk: itinerary of 4 offices with 2 dwell limits"):
        run(full_trip().track(), binding=Binding(8, 0, 3, T0, offices=(0, 1, 2, 3), dwell_ms=(1, 2)))
    with pytest.raises(TrackError, match=r"device trk: itinerary zones \(0, 4\) not all in -1..3"):
        run(full_trip().track(), binding=Binding(8, 0, 3, T0, offices=(0, 4)))


# The slow reference: plain Python over runs of fixes inside and outside one zone.

def reference(t: list[int], inside: list[bool], enter_ms: int, exit_ms: int) -> list[tuple[str, int, int]]:
    """(milestone, time, confirmed at) for one zone: a run of fixes inside that lasts
    ``enter_ms`` arrives (at its first fix) unless already inside; a run outside that
    lasts ``exit_ms`` departs (at the last fix inside before it) unless already outside."""
    runs = [(flag, [t[i] for i in idx]) for flag, grp in itertools.groupby(range(len(t)), key=lambda i: inside[i])
            for idx in [list(grp)]]
    out: list[tuple[str, int, int]] = []
    there = False
    last_inside = -1
    for flag, times in runs:
        if flag and not there:
            confirm = next((u for u in times if u - times[0] >= enter_ms), None)
            if confirm is not None:
                out.append(("arrived", times[0], confirm))
                there = True
        elif not flag and there:
            confirm = next((u for u in times if u - times[0] >= exit_ms), None)
            if confirm is not None:
                out.append(("departed", last_inside, confirm))
                there = False
        if flag:
            last_inside = times[-1]
    return out


@settings(max_examples=120, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=80),
       cuts=st.lists(st.integers(1, 79), max_size=6))
def test_milestones_match_the_slow_reference_under_any_batching(steps: list[tuple[int, bool]],
                                                                  cuts: list[int]) -> None:
    t = list(itertools.accumulate((s * 5_000 for s, _ in steps), initial=T0))[1:]
    inside = [flag for _, flag in steps]
    lon = [POST_LONS[0] if flag else POST_LONS[0] - 0.02 for flag in inside]
    track = Track.of(t, lon, [0.0] * len(t))
    binding = Binding(8, 0, 3, T0, offices=(1,), transit=(True,))
    state = DeviceState(shipment_id=8)
    found: list[Transition] = []
    for a, b in itertools.pairwise(sorted({0, *[c for c in cuts if c < len(t)], len(t)})):
        part, state = run(Track(track.t[a:b], track.lon[a:b], track.lat[a:b], track.backlog[a:b]), binding=binding,
                          state=state, rules=ITINERARY_ONLY)
        state = loads(dumps(state))
        found.extend(part)
    got = [(tr.type, tr.started_ms, tr.crossed_ms) for tr in found if tr.event == "milestone"]
    assert got == reference(t, inside, 30_000, 60_000)
