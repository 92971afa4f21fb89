"""Countries in the engine: border_crossed milestones, border_bypass, countries of transitions."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.engine import Track, Transition, evaluate
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import DeviceState, dumps, loads
from tests.geofence.tracks import BORDER_BINDING, BORDER_LON, M_PER_DEG, STEP_MS, Trip, border_network

THROUGH = border_network()
AROUND = border_network(post_lat=0.03)  # the post 3.3 km off the road: the truck never enters it
RULES = Rules()


def run(track: Track, network: Network, state: DeviceState | None = None,
        rules: Rules = RULES) -> tuple[list[Transition], DeviceState]:
    transitions, states = evaluate(network, rules, {"trk": (BORDER_BINDING, state or DeviceState(shipment_id=9),
                                                            track)})
    return transitions, states["trk"]


def border(transitions: list[Transition]) -> list[Transition]:
    return [t for t in transitions if t.type in ("border_crossed", "border_bypass")]


def first_east(track: Track, lon: float = BORDER_LON) -> int:
    return int(np.flatnonzero(track.lon > lon)[0])


def test_through_the_post_gives_a_milestone_and_no_alert() -> None:
    track = Trip().drive_to(31.0).park(4).track()
    transitions, state = run(track, THROUGH)
    (crossed,) = border(transitions)
    k = first_east(track)
    assert crossed.event == "milestone" and crossed.type == "border_crossed"
    assert crossed.started_ms == track.t[k] and crossed.crossed_ms == track.t[k] + 60_000  # border_confirm_s
    assert crossed.detail == {"from": "KEN", "to": "UGA"} and crossed.country == "UGA"
    assert crossed.lon == track.lon[k]
    assert [(t.type, t.office, t.country) for t in transitions if t.type == "arrived"] == [
        ("arrived", 0, "KEN"), ("arrived", 1, "UGA"), ("arrived", 2, "UGA")]
    assert state.country == "UGA" and state.rule("fix_country") == "UGA"


def test_around_the_post_is_a_bypass() -> None:
    track = Trip().drive_to(31.0).park(4).track()
    transitions, _ = run(track, AROUND)
    crossed, bypass = border(transitions)
    assert crossed.type == "border_crossed"
    assert bypass.event == "opened" and bypass.type == "border_bypass" and bypass.instantaneous
    assert bypass.started_ms == crossed.started_ms and bypass.ended_ms == bypass.crossed_ms == crossed.crossed_ms
    assert bypass.detail == {"from": "KEN", "to": "UGA"} and bypass.country == "UGA"
    assert [t.detail for t in transitions if t.type == "office_skipped"] == [
        {"office": "BUSIA", "position": 1, "reached": "UGDST"}]


def test_a_crossing_soon_after_leaving_a_post_zone_is_excused() -> None:
    # Into the off-road post on the KEN side, back to the road, and across within the 15 minutes' grace
    trip = Trip(lon=BORDER_LON - 0.05).drive(2)
    trip.lon = BORDER_LON - 0.002
    trip.drive(4, north_m=0.03 * M_PER_DEG, kmh=1).drive(4, north_m=0.0, kmh=1)
    trip.lon = BORDER_LON - 0.01
    trip.drive(40)
    transitions, _ = run(trip.track(), AROUND)
    assert [t.type for t in border(transitions)] == ["border_crossed"]
    late = Rules(post_grace_s=60)  # the same with a minute's grace: too long after
    assert [t.type for t in border(run(trip.track(), AROUND, rules=late)[0])] == ["border_crossed", "border_bypass"]


def test_gps_scatter_along_the_border_does_not_flap() -> None:
    trip = Trip(lon=BORDER_LON - 0.02).drive(10, kmh=10)
    for k in range(80):  # 20 minutes parked on the border, every fix on the other side
        trip.lon = BORDER_LON + (15 if k % 2 else -15) / M_PER_DEG
        trip.park(1)
    trip.lon = BORDER_LON - 30 / M_PER_DEG
    transitions, state = run(trip.back(10, kmh=10).track(), AROUND)
    assert border(transitions) == []
    assert state.country == "KEN"
    three = Trip(lon=BORDER_LON - 0.02).drive(10, kmh=10)  # three fixes (30 s) across, then back: no crossing
    three.lon = BORDER_LON + 20 / M_PER_DEG
    three.park(3)
    three.lon = BORDER_LON - 20 / M_PER_DEG
    assert border(run(three.park(10).track(), AROUND)[0]) == []


def test_fixes_without_a_country_keep_the_previous_one() -> None:
    network = border_network(post_lat=0.03, gap_deg=0.02)  # 2.2 km of no data either side
    track = Trip().drive_to(31.0).track()
    transitions, _ = run(track, network)
    crossed, _ = border(transitions)
    k = first_east(track, BORDER_LON + 0.02)
    assert crossed.started_ms == track.t[k]  # the first fix in UGA, not in the gap
    assert crossed.detail == {"from": "KEN", "to": "UGA"}
    gap_fix = first_east(track, BORDER_LON)
    deviation = evaluate(network, RULES, {"trk": (BORDER_BINDING, DeviceState(shipment_id=9),
                                                  Trip(lon=float(track.lon[gap_fix])).drive(1).drive(8, north_m=900)
                                                  .track())})[0]
    assert [(t.type, t.country) for t in deviation] == [("route_deviation", None)]  # nothing known yet


def test_transitions_carry_the_country_of_their_fix() -> None:
    trip = Trip(lon=BORDER_LON + 0.1).drive(5).drive(8, north_m=900).drive(8, north_m=0)
    transitions, _ = run(trip.track(), THROUGH)
    assert [(t.event, t.type, t.country) for t in transitions] == [
        ("opened", "route_deviation", "UGA"), ("ended", "route_deviation", "UGA")]


def test_no_countries_loaded_or_rules_off_leave_country_none() -> None:
    track = Trip().drive_to(31.0).track()
    transitions, _ = run(track, THROUGH, rules=Rules(border_rules=False))
    assert border(transitions) == [] and {t.country for t in transitions} <= {None}
    no_countries = Network.build([], [])
    assert no_countries.countries.codes == []


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 400), max_size=8), scatter=st.booleans())
def test_any_batching_gives_the_same_crossings(cuts: list[int], scatter: bool) -> None:
    trip = Trip(lon=BORDER_LON - 0.05).drive(15)
    if scatter:
        for k in range(30):
            trip.lon = BORDER_LON + (15 if k % 3 else -15) / M_PER_DEG
            trip.park(1)
    track = trip.drive(60).track()
    whole, final = run(track, AROUND)
    state = DeviceState(shipment_id=9)
    pieces: list[Transition] = []
    for a, b in itertools.pairwise(sorted({0, *[c for c in cuts if c < len(track.t)], len(track.t)})):
        part, state = run(Track(track.t[a:b], track.lon[a:b], track.lat[a:b], track.backlog[a:b]), AROUND, state)
        state = loads(dumps(state))
        pieces.extend(part)
    assert pieces == whole
    assert state == final
    assert [t.type for t in border(whole)] == ["border_crossed", "border_bypass"]
    assert STEP_MS == 15_000
