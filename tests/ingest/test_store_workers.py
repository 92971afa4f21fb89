"""Two workers' stores on one database: what one worker cached about a device is
reused only if the other did not write the device since (devices.version)."""

from __future__ import annotations

import time

from ctt.config import DB_INGEST
from ingest.acks import AckTracker
from ingest.batch import Batch
from ingest.messages import parse_message
from ingest.store import Store
from protocol.records import Fix, encode
from tests.support import as_role, scalar, unique_prefix


def _batch(device_id: str, seqs: range) -> Batch:
    now = int(time.time() * 1000)
    batch = Batch()
    for seq in seqs:
        fix = Fix(seq=seq, ts=now - 60_000 + seq, lat=0.0, lon=30.0)
        batch.add(parse_message(f"ctt/v1/dev/{device_id}/pos", encode(fix), now), now)
    return batch


def test_a_worker_reloads_a_device_another_worker_wrote(database_url: str) -> None:
    url = as_role(database_url, DB_INGEST)
    device = unique_prefix("shared")
    a, b = Store(url), Store(url)
    acks_a, acks_b = AckTracker(), AckTracker()
    try:
        assert a.write(_batch(device, range(5)), acks_a)[0] == {device: 4}
        assert b.write(_batch(device, range(5, 10)), acks_b)[0] == {device: 9}
        # Worker a's cache says 4; the device is at 9 since b's commit. Without the
        # version check a would hold seq 10 back behind a gap that is not there.
        assert a.write(_batch(device, range(10, 11)), acks_a)[0] == {device: 10}
        assert b.write(_batch(device, range(11, 12)), acks_b)[0] == {device: 11}
    finally:
        a.close()
        b.close()
    assert scalar(database_url, "SELECT acked_seq FROM devices WHERE device_id = %s", (device,)) == 11
    assert scalar(database_url, "SELECT version FROM devices WHERE device_id = %s", (device,)) == 3


def test_a_worker_alone_keeps_its_cache(database_url: str) -> None:
    url = as_role(database_url, DB_INGEST)
    device = unique_prefix("alone")
    store, acks = Store(url), AckTracker()
    stale: list[frozenset[str]] = []
    try:
        for first in (0, 3, 6):
            store.write(_batch(device, range(first, first + 3)), acks,
                        lambda _cur, _f, _s, s: stale.append(s))
    finally:
        store.close()
    assert stale == [frozenset({device}), frozenset(), frozenset()]  # new to this worker, then its own


def test_a_device_resending_what_is_stored_gets_its_ack_again(database_url: str) -> None:
    url = as_role(database_url, DB_INGEST)
    device = unique_prefix("resend")
    store, acks = Store(url), AckTracker()
    try:
        assert store.write(_batch(device, range(3)), acks)[0] == {device: 2}
        # The ack went out, but the device did not get it (or another worker's older ack
        # was retained after it): the resend is the sign, and the answer is the ack.
        assert store.write(_batch(device, range(1, 3)), acks)[0] == {device: 2}
    finally:
        store.close()


def test_every_device_of_a_batch_is_answered_with_its_ack(database_url: str) -> None:
    url = as_role(database_url, DB_INGEST)
    device, above_gap = unique_prefix("answer"), unique_prefix("gap")
    store, acks = Store(url), AckTracker()
    try:
        assert store.write(_batch(device, range(3)), acks)[0] == {device: 2}
        # Seq 4 waits for 3: the ack does not move, and is said again (the one before may have
        # been lost with a worker killed after its commit; only this batch's answer remains).
        assert store.write(_batch(device, range(4, 5)), acks)[0] == {device: 2}
        assert store.write(_batch(device, range(3, 4)), acks)[0] == {device: 4}
        assert store.write(_batch(above_gap, range(1, 2)), acks)[0] == {}  # nothing to acknowledge yet
    finally:
        store.close()
    assert scalar(database_url, "SELECT acked_seq FROM devices WHERE device_id = %s", (device,)) == 4
