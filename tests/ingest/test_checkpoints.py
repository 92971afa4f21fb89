"""Geofence checkpoints in the real database: around late fixes, replaced windows, pruning."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from geofence.replay import Checkpoint
from geofence.state import DeviceState
from ingest import checkpoints
from ingest.checkpoints import Request, Saved, Window
from tests.ingest.conftest import HOUR_MS, Transit
from tests.support import execute, query

MIN_MS = 60_000


def point(shipment_id: int, ms: int, chainage: float = 0.0) -> Checkpoint:
    return Checkpoint(ms, DeviceState(shipment_id=shipment_id, last_ts=ms, chainage_m=chainage))


def stored(database_url: str, tracker: str) -> list[int]:
    rows = query(database_url, "SELECT (extract(epoch FROM last_ts) * 1000)::int8 FROM geofence_checkpoints"
                 " WHERE device_id = %s ORDER BY last_ts", (tracker,))
    return [r[0] for r in rows]


def test_load_finds_the_nearest_before_and_the_later_ones(database_url: str,
                                                          transit: Callable[..., Transit]) -> None:
    t0 = (int(time.time() * 1000) - 10 * HOUR_MS) // 1000 * 1000 + 123  # milliseconds survive the round trip
    a, b = transit("ckpt-a", t0), transit("ckpt-b", t0)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        checkpoints.save(cur, [Saved(a.tracker, a.shipment_id, point(a.shipment_id, t0 + k * 15 * MIN_MS, k))
                               for k in range(6)])
        checkpoints.save(cur, [Saved(b.tracker, b.shipment_id, point(b.shipment_id, t0 + 30 * MIN_MS))])
        at_a, at_b, other = checkpoints.load(cur, [Request(a.tracker, a.shipment_id, t0 + 45 * MIN_MS),
                                                   Request(b.tracker, b.shipment_id, t0 + 10 * MIN_MS),
                                                   Request(a.tracker, a.shipment_id + 10**9, t0)])
        # the checkpoint at the earliest late fix itself is not before it: it is replaced
        assert at_a.start == point(a.shipment_id, t0 + 30 * MIN_MS, 2)
        assert [c.last_ts for c in at_a.later] == [t0 + k * 15 * MIN_MS for k in (3, 4, 5)]
        assert at_b.start is None and [c.last_ts for c in at_b.later] == [t0 + 30 * MIN_MS]
        assert other == (None, [])  # another shipment of the same tracker has none
        (near,) = checkpoints.load(cur, [Request(a.tracker, a.shipment_id, t0 + 20 * MIN_MS, t0 + 50 * MIN_MS)])
        assert near.start == point(a.shipment_id, t0 + 15 * MIN_MS, 1)
        assert [c.last_ts for c in near.later] == [t0 + 30 * MIN_MS, t0 + 45 * MIN_MS]


def test_a_checkpoint_that_does_not_decode_is_skipped(database_url: str, transit: Callable[..., Transit]) -> None:
    t0 = int(time.time() * 1000) - 10 * HOUR_MS
    tr = transit("ckpt-bad", t0)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        checkpoints.save(cur, [Saved(tr.tracker, tr.shipment_id, point(tr.shipment_id, t0))])
        cur.execute("INSERT INTO geofence_checkpoints VALUES (%s, %s, to_timestamp(%s / 1000.0), %s)",
                    (tr.tracker, tr.shipment_id, t0 + MIN_MS, b"\xc1 not msgpack"))
        (nearest_bad,) = checkpoints.load(cur, [Request(tr.tracker, tr.shipment_id, t0 + 2 * MIN_MS)])
        (later_bad,) = checkpoints.load(cur, [Request(tr.tracker, tr.shipment_id, t0 + MIN_MS // 2)])
    assert nearest_bad == (None, [])  # from departure: the window replaces it
    assert later_bad == (point(tr.shipment_id, t0), [])


def test_a_replay_window_replaces_what_it_recomputed_and_nothing_outside(
        database_url: str, transit: Callable[..., Transit]) -> None:
    t0 = int(time.time() * 1000) // 1000 * 1000 - 10 * HOUR_MS
    tr = transit("ckpt-win", t0)
    sid = tr.shipment_id
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        checkpoints.save(cur, [Saved(tr.tracker, sid, point(sid, t0 + k * 15 * MIN_MS)) for k in range(6)])
        window = Window(tr.tracker, sid, t0 + 15 * MIN_MS + 1, t0 + 60 * MIN_MS,
                        [point(sid, t0 + 20 * MIN_MS, 7.0), point(sid, t0 + 45 * MIN_MS, 8.0),
                         point(sid, t0 + 60 * MIN_MS, 9.0)])
        checkpoints.replace(cur, [window])
        (found,) = checkpoints.load(cur, [Request(tr.tracker, sid, t0 + MIN_MS)])
    assert stored(database_url, tr.tracker) == [t0 + m * MIN_MS for m in (0, 15, 20, 45, 60, 75)]
    assert [c.state.chainage_m for c in found.later] == [0.0, 7.0, 8.0, 9.0, 0.0]


def test_prune_drops_finished_trips_and_thins_old_checkpoints(database_url: str,
                                                               transit: Callable[..., Transit]) -> None:
    t0 = (int(time.time() * 1000) - 50 * HOUR_MS) // HOUR_MS * HOUR_MS
    done, going = transit("ckpt-done", t0), transit("ckpt-going", t0)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        for tr in (done, going):  # 48 hours at 15 minutes
            checkpoints.save(cur, [Saved(tr.tracker, tr.shipment_id, point(tr.shipment_id, t0 + k * 15 * MIN_MS))
                                   for k in range(4 * 48)])
        cur.execute("UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE id = %s", (done.shipment_id,))
        checkpoints.prune(cur, dense_s=24 * 3600, sparse_s=3600)
    assert stored(database_url, done.tracker) == []
    kept = stored(database_url, going.tracker)
    newest = t0 + (4 * 48 - 1) * 15 * MIN_MS
    old = [ms for ms in kept if ms < newest - 24 * HOUR_MS]
    assert old == [t0 + h * HOUR_MS for h in range(len(old))]  # one an hour, the first of each hour
    assert len(old) == 24
    assert [ms for ms in kept if ms >= newest - 24 * HOUR_MS] == [
        t0 + k * 15 * MIN_MS for k in range(4 * 48) if t0 + k * 15 * MIN_MS >= newest - 24 * HOUR_MS]
    execute(database_url, "DELETE FROM geofence_checkpoints WHERE device_id = %s", (going.tracker,))
