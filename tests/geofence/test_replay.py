"""Replay from the nearest checkpoint: same alerts and state as from departure, in a short window."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.engine import Binding, Track, Transition, evaluate
from geofence.geometry import Network
from geofence.replay import (
    CHECKPOINT_INTERVAL_MS,
    Checkpoint,
    Interval,
    ReplayResult,
    due,
    intervals,
    nearest,
    replay,
    same_future,
    splice,
    splice_milestones,
)
from geofence.rules import Rules
from geofence.state import DeviceState, with_rules
from tests.geofence.tracks import (
    BINDING,
    BORDER_BINDING,
    POST_LONS,
    STEP_MS,
    Trip,
    border_network,
    itinerary_binding,
    itinerary_network,
    straight_network,
)

NET = straight_network()
RULES = Rules()
INTERVAL_MS = 5 * 60_000  # short, so that hand-built tracks hold many checkpoints
FORGET_MS = int(RULES.stop_min_duration_s * 1000)


@dataclass
class Tracker:
    """What ingest keeps of one tracker: stored fixes, live state, checkpoints, alert intervals."""

    full: Track
    interval_ms: int = INTERVAL_MS
    net: Network = field(default_factory=lambda: NET)
    binding: Binding = BINDING
    milestones: list[Transition] = field(default_factory=list)
    stored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # indices into full
    late: set[int] = field(default_factory=set)
    live: DeviceState | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    alerts: list[Interval] = field(default_factory=list)
    windows: list[ReplayResult] = field(default_factory=list)

    def receive(self, idx: list[int]) -> None:
        """One array of fixes arrives (any order)."""
        t = self.full.t[idx]
        self.stored = np.union1d(self.stored, idx)
        if self.live is None or int(t.min()) > self.live.last_ts:
            self._live(idx)
        else:
            self.late.update(idx)
            self._replay(int(t.min()), int(t.max()))

    def track(self, idx: np.ndarray, replaying: bool = False) -> Track:
        """Fixes by index; a replay marks them all as backlog, as ingest does."""
        flags = np.full(len(idx), True) if replaying else np.isin(idx, list(self.late))
        return Track(self.full.t[idx], self.full.lon[idx], self.full.lat[idx], flags)

    def _live(self, idx: list[int]) -> None:
        before = self.live or DeviceState(shipment_id=self.binding.shipment_id)
        transitions, states = evaluate(self.net, RULES, {"trk": (self.binding, before, self.track(np.sort(idx)))})
        new = states["trk"]
        window = ReplayResult(transitions, intervals(self.live, transitions), before.last_ts + 1, new.last_ts,
                              False, new, [])
        self.alerts = splice(self.alerts, window)
        self.milestones = splice_milestones(self.milestones, window)
        self.live = new
        if due(self.checkpoints[-1].last_ts if self.checkpoints else None, new, self.interval_ms):
            self.checkpoints.append(Checkpoint(new.last_ts, new))

    def _replay(self, earliest: int, newest: int) -> None:
        assert self.live is not None
        start, later = nearest(self.checkpoints, earliest)
        result = replay(self.net, RULES, self.binding, start, [*later, Checkpoint(self.live.last_ts, self.live)],
                        self.track(self.stored, replaying=True), newest, device_id="trk", interval_ms=self.interval_ms)
        self.windows.append(result)
        self.alerts = splice(self.alerts, result)
        self.milestones = splice_milestones(self.milestones, result)
        kept = [c for c in self.checkpoints if not result.from_ms <= c.last_ts <= result.to_ms]
        self.checkpoints = sorted(kept + result.checkpoints, key=lambda c: c.last_ts)
        if result.state is not None:
            self.live = result.state


def from_departure(track: Track, net: Network = NET, binding: Binding = BINDING) -> ReplayResult:
    return replay(net, RULES, binding, None, [], track, int(track.t[-1]), device_id="trk")


def shape(found: list[Interval]) -> list[tuple[object, ...]]:
    """What an alert interval says, without how late its data came."""
    return [(i.type, i.started_ms, i.crossed_ms, i.ended_ms, i.lon, i.lat, i.office, i.detail) for i in found]


def milestone_shape(found: list[Transition]) -> list[tuple[object, ...]]:
    return sorted((m.type, m.started_ms, m.crossed_ms, m.office, m.lon, m.lat, tuple(m.detail.items()))
                  for m in found)


def eventful() -> Track:
    """Deviation, a stop broken by a multipath jump, a short stop, a long stop still open at the end."""
    return (Trip().drive(20).drive(8, north_m=900).drive(10, north_m=0).park(80).jump(300).park(30)
            .drive(30).park(50).drive(40).drive(12, north_m=-800).drive(25, north_m=0).park(90).track())


def assert_same_as_departure(tracker: Tracker) -> None:
    whole = from_departure(tracker.full, tracker.net, tracker.binding)
    assert shape(tracker.alerts) == shape(whole.intervals)
    assert milestone_shape(tracker.milestones) == milestone_shape(whole.milestones)
    assert tracker.live is not None and whole.state is not None
    assert same_future(tracker.live, whole.state)
    assert tracker.live.chainage_m == whole.state.chainage_m


def test_the_eventful_track_raises_what_the_rest_expects() -> None:
    whole = from_departure(eventful())
    assert [(i.type, i.ended_ms is None) for i in whole.intervals] == [
        ("route_deviation", False), ("unscheduled_stop", False), ("route_deviation", False),
        ("unscheduled_stop", True)]
    assert whole.intervals[-1].open_at_end and not whole.converged


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_checkpointed_replay_matches_replay_from_departure(data: st.DataObject) -> None:
    full = eventful()
    n = len(full.t)
    cuts = data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=25, unique=True))
    bounds = [0, *sorted(cuts), n]
    arrays = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(arrays))
    tracker = Tracker(full, interval_ms=data.draw(st.sampled_from([2 * STEP_MS, INTERVAL_MS, 20 * 60_000])))
    for array in order:
        tracker.receive(array[::-1])
    assert_same_as_departure(tracker)


def backlog_run(full: Track, gap: range, size: int = 50, interval_ms: int = INTERVAL_MS, net: Network = NET,
                binding: Binding = BINDING) -> Tracker:
    """Live until a coverage gap; after it, live fixes; then the gap's fixes as
    reversed ``size``-fix arrays, newest array first."""
    tracker = Tracker(full, interval_ms=interval_ms, net=net, binding=binding)
    for i in [*range(gap.start), *range(gap.stop, len(full.t))]:
        tracker.receive([i])
    arrays = [list(gap[k:k + size]) for k in range(0, len(gap), size)]
    for array in reversed(arrays):
        tracker.receive(array[::-1])
    return tracker


def test_reversed_50_fix_arrays_give_the_alerts_of_live_data() -> None:
    full = eventful()
    live = Tracker(full)
    for i in range(len(full.t)):
        live.receive([i])
    tracker = backlog_run(full, range(15, 300))  # the deviation and the first stops inside the gap
    assert shape(tracker.alerts) == shape(live.alerts)
    assert_same_as_departure(tracker)


def long_quiet_trip() -> Track:
    """Eight hours on the route at 15 s fixes, a stop in the first hour and one near
    the end, one fix 600 m off the route (multipath) at fix 980."""
    return (Trip().drive(100).park(80).drive(800, kmh=10).jump(600).drive(699, kmh=10).park(80)
            .drive(100, kmh=10).track())


def test_a_late_stretch_where_nothing_happens_converges_soon_after_it() -> None:
    full = long_quiet_trip()
    gap = range(950, 1010)  # the stray fix outside the corridor is late: forgotten all the same
    tracker = backlog_run(full, gap, size=20)
    assert len(tracker.windows) == 3
    for window in tracker.windows:
        assert window.converged and window.state is None
        # It starts at most one interval before the late fixes; it ends at the
        # first checkpoint after the stop window (which spans up to the stop's
        # minimum duration while driving) has forgotten them.
        assert window.from_ms >= int(full.t[gap.start]) - INTERVAL_MS
        assert window.to_ms <= int(full.t[gap.stop - 1]) + FORGET_MS + INTERVAL_MS + STEP_MS
    assert_same_as_departure(tracker)


def test_a_long_backlog_costs_each_array_its_own_stretch_not_the_gap() -> None:
    full = long_quiet_trip()
    gap = range(200, 1700)  # six hours without coverage
    tracker = backlog_run(full, gap)
    assert len(tracker.windows) == 30
    # The first array's replay runs into the stop that its fixes complete; each
    # later one evaluates its 50 fixes and those the stop window holds them for,
    # to the next checkpoint: not the 1,500 fixes of the gap.
    assert tracker.windows[0].fixes <= 50 + len(full.t) - gap.stop
    assert max(w.fixes for w in tracker.windows[1:]) <= 50 + (FORGET_MS + 2 * INTERVAL_MS) // STEP_MS + 1
    assert all(w.converged for w in tracker.windows)
    assert_same_as_departure(tracker)


def test_no_convergence_before_the_newest_late_fix() -> None:
    """A checkpoint between the late fixes can equal the recomputed state (the
    late fixes before it are forgotten by then); stopping there would lose the
    deviation that the later late fixes show."""
    full = Trip().drive(150).drive(20, north_m=900).drive(30, north_m=0).track()
    tracker = Tracker(full)
    late = [*range(40, 50), *range(150, 170)]
    for i in range(len(full.t)):
        if i not in late:
            tracker.receive([i])
    assert tracker.alerts == []
    tracker.receive(late[::-1])
    assert [i.type for i in tracker.alerts] == ["route_deviation"]
    assert_same_as_departure(tracker)


def test_a_stored_checkpoint_that_differs_is_replaced_not_trusted() -> None:
    full = eventful()
    stale = from_departure(Track(full.t[:200], full.lon[:200], full.lat[:200], full.backlog[:200]))
    assert stale.state is not None
    wrong = msgspec.structs.replace(stale.state, deviation_open=True)
    result = replay(NET, RULES, BINDING, None, [Checkpoint(wrong.last_ts, wrong)], full, int(full.t[10]),
                    device_id="trk")
    assert not result.converged
    assert result.to_ms == int(full.t[-1])


def test_due_and_nearest() -> None:
    state = DeviceState(shipment_id=7, last_ts=CHECKPOINT_INTERVAL_MS + 5)
    assert due(None, state) and due(CHECKPOINT_INTERVAL_MS - 1, state)
    assert not due(CHECKPOINT_INTERVAL_MS, state) and not due(CHECKPOINT_INTERVAL_MS + 4, state)
    points = [Checkpoint(ts, DeviceState(shipment_id=7, last_ts=ts)) for ts in (30, 10, 20)]
    start, later = nearest(points, 20)
    assert start is not None and start.last_ts == 10
    assert [c.last_ts for c in later] == [20, 30]
    assert nearest(points, 10)[0] is None


ITIN_NET = itinerary_network(post_lats=(0.0, 0.03))  # the second post off the road: skipped
ITIN_BINDING = itinerary_binding(dwell_ms=30 * 60_000)


def itinerary_trip() -> Track:
    """Every new condition and milestone: departure, 40 min at the first post (dwell), a
    3 km U-turn (reversal), a 90-min gap hiding a detour, the second post skipped, arrival."""
    return (Trip().drive_to(POST_LONS[0]).park(160).drive(40, kmh=60).back(12, kmh=64).drive(30, kmh=60)
            .silence(90, 40).drive_to(30.99).drive(4, kmh=30).park(20).track())


def test_the_itinerary_trip_raises_what_the_rest_expects() -> None:
    whole = from_departure(itinerary_trip(), ITIN_NET, ITIN_BINDING)
    assert [(i.type, i.ended_ms is None) for i in whole.intervals] == [
        ("border_dwell", False), ("route_reversal", False), ("suspicious_gap", False), ("office_skipped", False)]
    assert [(m.type, m.office) for m in whole.milestones] == [
        ("arrived", 0), ("departed", 0), ("arrived", 1), ("departed", 1), ("arrived", 3)]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_itinerary_rules_replay_in_any_order_as_from_departure(data: st.DataObject) -> None:
    full = itinerary_trip()
    n = len(full.t)
    cuts = data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=25, unique=True))
    bounds = [0, *sorted(cuts), n]
    arrays = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(arrays))
    tracker = Tracker(full, interval_ms=data.draw(st.sampled_from([2 * STEP_MS, INTERVAL_MS, 20 * 60_000])),
                      net=ITIN_NET, binding=ITIN_BINDING)
    for array in order:
        tracker.receive(array[::-1])
    assert_same_as_departure(tracker)


@pytest.mark.parametrize("gap", [range(20, 200), range(150, 260), range(200, 330)])
def test_itinerary_backlog_gives_the_alerts_and_milestones_of_live_data(gap: range) -> None:
    full = itinerary_trip()
    live = Tracker(full, net=ITIN_NET, binding=ITIN_BINDING)
    for i in range(len(full.t)):
        live.receive([i])
    tracker = backlog_run(full, gap, net=ITIN_NET, binding=ITIN_BINDING)
    assert shape(tracker.alerts) == shape(live.alerts)
    assert milestone_shape(tracker.milestones) == milestone_shape(live.milestones)
    assert_same_as_departure(tracker)


def test_carried_in_conditions_of_the_new_rules() -> None:
    start = with_rules(DeviceState(shipment_id=8), dwell_open=True, reversal_open=True)
    found = intervals(start, [])
    assert [(i.type, i.carried_in, i.open_at_end) for i in found] == [
        ("border_dwell", True, True), ("route_reversal", True, True)]


def test_same_future_ignores_what_no_later_fix_reads() -> None:
    a = with_rules(DeviceState(shipment_id=8, last_ts=10_000_000), office_pos=-1, office_in=5, cand_pos=-1,
                   cand_in=7, post_seen=1)
    b = DeviceState(shipment_id=8, last_ts=10_000_000)
    assert same_future(a, b)
    assert not same_future(with_rules(a, office_pos=1), with_rules(b, office_pos=1))
    assert not same_future(with_rules(a, post_seen=9_500_000), b)  # within the grace: it matters
    assert not same_future(with_rules(a, country="KEN"), b)


AROUND = border_network(post_lat=0.03)  # countries loaded; the post off the road: a bypass


def border_trip() -> Track:
    """Scatter on the KEN/UGA border for five minutes, then across it and into the destination."""
    trip = Trip(lon=30.45).drive(10)
    for k in range(20):
        trip.lon = 30.5 + (15 if k % 3 else -15) / 111_320
        trip.park(1)
    return trip.drive_to(30.995).park(10).track()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_border_rules_replay_in_any_order_as_from_departure(data: st.DataObject) -> None:
    full = border_trip()
    whole = from_departure(full, AROUND, BORDER_BINDING)
    assert [i.type for i in whole.intervals] == ["border_bypass", "office_skipped"]
    assert "border_crossed" in [m.type for m in whole.milestones]
    n = len(full.t)
    cuts = data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=20, unique=True))
    arrays = [list(range(a, b)) for a, b in itertools.pairwise([0, *sorted(cuts), n])]
    tracker = Tracker(full, interval_ms=data.draw(st.sampled_from([2 * STEP_MS, INTERVAL_MS])), net=AROUND,
                      binding=BORDER_BINDING)
    for array in data.draw(st.permutations(arrays)):
        tracker.receive(array[::-1])
    assert_same_as_departure(tracker)
