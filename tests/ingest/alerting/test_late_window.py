"""Late fixes in the database: replayed from the nearest checkpoint, alerts reconciled
inside the replayed window only, the same alerts as one evaluation from departure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest

import geofence.replay
from geofence import engine
from geofence.engine import Track
from geofence.geometry import Network
from geofence.replay import ReplayResult
from geofence.rules import Rules
from geofence.state import DeviceState
from ingest import checkpoints
from ingest.alerting.live import apply_transitions, save_states
from ingest.alerting.reconcile import intervals
from ingest.alerting.replay import after_late_fixes
from ingest.registry import load_network, load_registry
from tests.geofence.tracks import Trip
from tests.ingest.conftest import HOUR_MS, Transit

# The 50-minute hole is a fix-time gap while it is missing: live evaluation raises a
# suspicious_gap there, which the test acknowledges and the late fixes then contest
# (correct, and tested in tests/geofence/test_progress.py); this test is about the rest.
RULES = Rules(gap_rule=False)
_FIX = ("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at)"
        " VALUES (%s, %s, to_timestamp(%s / 1000.0), %s, %s, now())")
_ALERTS = """
SELECT type, (extract(epoch FROM started_at) * 1000)::int8, (extract(epoch FROM ended_at) * 1000)::int8,
       (extract(epoch FROM crossed_at) * 1000)::int8, status
FROM alerts WHERE shipment_id = %s AND NOT (detail ? 'withdrawn') ORDER BY crossed_at
"""


def part(track: Track, idx: list[int]) -> Track:
    return Track(track.t[idx], track.lon[idx], track.lat[idx], np.zeros(len(idx), dtype=np.bool_))


def store(cur: psycopg.Cursor[Any], device_id: str, track: Track, idx: list[int]) -> None:
    cur.executemany(_FIX, [(device_id, i, int(track.t[i]), float(track.lat[i]), float(track.lon[i])) for i in idx])


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[ReplayResult]:
    """Every replay window ingest computes while the test runs."""
    found: list[ReplayResult] = []
    original = geofence.replay.replay

    def watched(*args: Any, **kwargs: Any) -> ReplayResult:
        found.append(original(*args, **kwargs))
        return found[-1]

    monkeypatch.setattr(geofence.replay, "replay", watched)
    return found


def live_then_late(cur: psycopg.Cursor[Any], tr: Transit, trip: Track,
                   gap: list[int]) -> tuple[engine.Binding, Network]:
    """Every fix outside ``gap`` evaluated live, one by one, with checkpoints; the
    alerts then acknowledged; then the gap as reversed 50-fix arrays, newest first."""
    cur.execute("UPDATE shipments SET status = 'in_transit', departed_at = to_timestamp(%s / 1000.0)"
                " WHERE id = %s AND status <> 'in_transit'", (tr.start_ms, tr.shipment_id))
    registry = load_registry(cur, load_network(cur))
    binding = registry.trackers[tr.tracker].binding
    assert binding is not None
    state: DeviceState | None = None
    for i in [i for i in range(len(trip.t)) if i not in gap]:
        store(cur, tr.tracker, trip, [i])
        before = state or DeviceState(shipment_id=tr.shipment_id)
        transitions, states = engine.evaluate(registry.network, RULES,
                                              {tr.tracker: (binding, before, part(trip, [i]))})
        apply_transitions(cur, transitions)
        checkpoints.save_due(cur, {tr.tracker: state} if state else {}, states)
        save_states(cur, states)
        state = states[tr.tracker]
    cur.execute("UPDATE alerts SET status = 'acknowledged' WHERE shipment_id = %s", (tr.shipment_id,))
    for k in range((len(gap) - 1) // 50 * 50, -1, -50):
        array = gap[k:k + 50][::-1]
        store(cur, tr.tracker, trip, array)
        _changes, state = after_late_fixes(cur, registry.network, RULES, tr.tracker, binding, part(trip, array))
        assert state is not None
        save_states(cur, {tr.tracker: state})
    return binding, registry.network


def test_late_arrays_replay_a_window_and_leave_the_rest_alone(
        database_url: str, transit: Callable[..., Transit], windows: list[ReplayResult]) -> None:
    start = (int(time.time() * 1000) - 10 * HOUR_MS) // 1000 * 1000
    tr = transit("late-window", start)
    # deviation, a 20-minute stop, a 12.5-minute stop, a second deviation, a last 22.5-minute stop
    trip = (Trip(start_ms=start).drive(20).drive(8, north_m=900).drive(10, north_m=0).park(80).drive(40).park(50)
            .drive(30).drive(12, north_m=-800).drive(25, north_m=0).park(90).drive(5).track())
    gap = list(range(60, 260))  # the first stop's alert and the second deviation come late
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        binding, network = live_then_late(cur, tr, trip, gap)
        found = cur.execute(_ALERTS, (tr.shipment_id,)).fetchall()
        saved = cur.execute("SELECT count(*) FROM geofence_checkpoints WHERE device_id = %s", (tr.tracker,)).fetchone()
    whole, _ = engine.evaluate(network, RULES, {tr.tracker: (binding, DeviceState(shipment_id=tr.shipment_id), trip)})
    expected = sorted(((i.type, i.started_ms, i.ended_ms, i.crossed_ms) for i in intervals(whole)), key=lambda a: a[3])
    assert [a[:4] for a in found] == expected
    assert [a[0] for a in found] == ["route_deviation", "unscheduled_stop", "route_deviation", "unscheduled_stop"]
    # acknowledged live, outside every window: still acknowledged; the late ones are new
    assert [a[4] for a in found] == ["acknowledged", "open", "open", "acknowledged"]
    assert saved is not None and saved[0] >= (trip.t[-1] - trip.t[0]) // (15 * 60_000)
    # each array from a checkpoint near it, not from departure, and converged on a later one
    # (a replay that reads ahead only a few checkpoints and does not converge there is
    # redone over the rest of the trip: each array has exactly one converged window)
    windows = [w for w in windows if w.converged]
    assert len(windows) == 4
    assert all(w.from_ms > start for w in windows[:-1])
    # the array, from the checkpoint before it (up to one 15-min interval of 60 fixes) to
    # convergence within two checkpoints after it: bounded by the stretch, not the trip
    assert max(w.fixes for w in windows) <= 50 + 3 * 60


def test_late_fixes_inside_a_deviation_keep_its_alert_as_it_is(
        database_url: str, transit: Callable[..., Transit], windows: list[ReplayResult]) -> None:
    """Two hours off the route: the deviation was open when the window began and
    still open when it converged; the stored alert keeps its start and its end
    (decided after the window)."""
    start = (int(time.time() * 1000) - 10 * HOUR_MS) // 1000 * 1000
    tr = transit("late-in-deviation", start)
    trip = Trip(start_ms=start).drive(20, kmh=30).drive(480, north_m=900, kmh=30).drive(20, north_m=0, kmh=30).track()
    gap = list(range(150, 160))  # two and a half minutes of it
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        binding, network = live_then_late(cur, tr, trip, gap)
        found = cur.execute(_ALERTS, (tr.shipment_id,)).fetchall()
    whole, _ = engine.evaluate(network, RULES, {tr.tracker: (binding, DeviceState(shipment_id=tr.shipment_id), trip)})
    assert [a[:4] for a in found] == [(i.type, i.started_ms, i.ended_ms, i.crossed_ms) for i in intervals(whole)]
    assert [(a[0], a[4]) for a in found] == [("route_deviation", "acknowledged")]
    (window,) = [w for w in windows if w.converged]
    assert [(i.carried_in, i.open_at_end) for i in window.intervals] == [(True, True)]
