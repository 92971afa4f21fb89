"""Several ingest workers on one database: a worker told that another one has
evaluated a tracker since (``stale``) drops its cached state and evaluates from
the saved one; without that, its stale cache gets the alerts wrong."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from ctt.config import DB_INGEST
from ingest.acks import AckTracker
from ingest.alerting import Alerting, Outcome
from ingest.batch import Batch
from ingest.config import IngestSettings
from ingest.messages import parse_message
from ingest.store import Store
from protocol.records import Fix, encode
from tests.geofence.tracks import Trip
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import alerts, fixes
from tests.support import as_role, execute, query


class _Sent:
    def is_published(self) -> bool:
        return True


class Worker:
    """One ingest worker's store and alerting, driven batch by batch (no broker)."""

    def __init__(self, database_url: str) -> None:
        self.store = Store(as_role(database_url, DB_INGEST))
        self.alerting = Alerting(IngestSettings().rules(), lambda _topic, _payload: _Sent())
        self.acks = AckTracker()

    def commit(self, device_id: str, records: list[Fix], stale: frozenset[str] = frozenset()) -> Outcome:
        now_ms = int(time.time() * 1000)
        batch = Batch()
        for fix in records:
            batch.add(parse_message(f"ctt/v1/dev/{device_id}/pos", encode(fix), now_ms), now_ms)
        _advanced, outcome = self.store.write(
            # The test says which devices are stale (the store's own finding is ignored), so that it
            # can also show what a worker that is not told would do.
            batch, self.acks, lambda cur, new_fixes, new_seals, _found: self.alerting.on_batch(
                cur, batch, new_fixes, new_seals, stale))
        assert outcome is not None, "the geofence hook failed"
        self.alerting.adopt(outcome)
        return outcome


@pytest.fixture
def workers(database_url: str) -> Iterator[tuple[Worker, Worker]]:
    pair = Worker(database_url), Worker(database_url)
    yield pair
    for w in pair:
        w.store.close()


def excursion(tr: Transit) -> list[Fix]:
    """On the route 5 min, 900 m off it 3 min (a deviation opens), back on it 3 min (it ends)."""
    return fixes(Trip(start_ms=tr.start_ms + 60_000).drive(20).drive(12, north_m=900).drive(12, north_m=0).track())


def deviations(database_url: str, tr: Transit) -> list[tuple[int | None, ...]]:
    """(started ms, ended ms) of the tracker's route deviations."""
    return [(started, ended) for kind, _dev, started, ended, *_rest in alerts(database_url, tr.shipment_id)
            if kind == "route_deviation"]


def run(database_url: str, transit: Callable[..., Transit], workers: tuple[Worker, Worker],
        told: bool) -> tuple[Transit, list[Fix]]:
    """A evaluates the start, B (another worker) the excursion, A the return."""
    a, b = workers
    tr = transit("workers", int(time.time() * 1000) - 3 * HOUR_MS)
    trip = excursion(tr)
    a.commit(tr.tracker, trip[:20])
    opened = b.commit(tr.tracker, trip[20:32])
    assert [(c.type, c.event) for c in opened.changes] == [("route_deviation", "opened")]
    a.commit(tr.tracker, trip[32:], frozenset({tr.tracker}) if told else frozenset())
    return tr, trip


def test_a_worker_told_a_tracker_is_stale_evaluates_from_the_state_another_worker_saved(
        database_url: str, transit: Callable[..., Transit], workers: tuple[Worker, Worker]) -> None:
    tr, trip = run(database_url, transit, workers, told=True)
    # Worker A knew the deviation was open (B's saved state): the return ends it, at the last fix out.
    assert deviations(database_url, tr) == [(trip[20].ts, trip[31].ts)]


def test_without_the_reload_a_stale_cache_leaves_the_deviation_open(
        database_url: str, transit: Callable[..., Transit], workers: tuple[Worker, Worker]) -> None:
    """What the reload prevents: A's cache predates the excursion, so the return ends nothing."""
    tr, _trip = run(database_url, transit, workers, told=False)
    [(_started, ended)] = deviations(database_url, tr)
    assert ended is None


def _failing_hook(*_args: object) -> Outcome:
    raise RuntimeError("the engine failed on this batch")


def test_fixes_one_worker_failed_to_evaluate_are_replayed_by_the_next(
        database_url: str, transit: Callable[..., Transit], workers: tuple[Worker, Worker]) -> None:
    """B stores the excursion but its engine fails (the records commit anyway); A handles the
    tracker next. Only the saved mark tells A that fixes before its own were never evaluated."""
    a, b = workers
    tr = transit("unevaluated", int(time.time() * 1000) - 3 * HOUR_MS)
    trip = excursion(tr)
    a.commit(tr.tracker, trip[:20])
    batch = Batch()
    now_ms = int(time.time() * 1000)
    for fix in trip[20:32]:
        batch.add(parse_message(f"ctt/v1/dev/{tr.tracker}/pos", encode(fix), now_ms), now_ms)
    assert b.store.write(batch, b.acks, _failing_hook)[1] is None
    a.commit(tr.tracker, trip[32:], frozenset({tr.tracker}))
    [(started, ended)] = deviations(database_url, tr)
    assert started == trip[20].ts and ended == trip[31].ts


def test_states_lost_with_a_crash_are_rebuilt_from_the_checkpoints(
        database_url: str, transit: Callable[..., Transit], workers: tuple[Worker, Worker]) -> None:
    """geofence_state is unlogged: a crash of PostgreSQL (or a failover) empties it. A worker
    that starts afresh rebuilds a tracker's state from its checkpoint and stored fixes: the
    open deviation ends once, nothing is raised twice."""
    a, _b = workers
    tr = transit("crashed", int(time.time() * 1000) - 3 * HOUR_MS)
    trip = excursion(tr)
    a.commit(tr.tracker, trip[:32])
    execute(database_url, "TRUNCATE geofence_state")  # what crash recovery does to an unlogged table
    fresh = Worker(database_url)
    try:
        fresh.commit(tr.tracker, trip[32:])
    finally:
        fresh.store.close()
    assert deviations(database_url, tr) == [(trip[20].ts, trip[31].ts)]
    assert query(database_url, "SELECT relpersistence FROM pg_class WHERE relname = 'geofence_state'") == [("u",)]
