"""``signal_lost`` through the real broker and ingest process: it is about fixes
(a connected tracker sending only statuses raises it), on the database's clock,
and the sweep waits until ingest has drained the backlog queued during an
outage (a restart does not page every truck whose fixes are still queued)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from protocol.records import Fix, Status, encode
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import AlertListener, Device, IngestProcess, execute, query, wait_for

FAST = {"CTT_SIGNAL_LOST_S": "3", "CTT_SWEEP_INTERVAL_S": "0.5"}


@pytest.fixture
def fast_sweep(ingest: IngestProcess, database_url: str) -> Iterator[IngestProcess]:
    """Ingest with a 3 s signal rule; afterwards nothing is left in transit for it to flag."""
    ingest.restart_with(**FAST)
    yield ingest
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE status = 'in_transit'")
    ingest.restart_with(**dict.fromkeys([*FAST, "CTT_BATCH_MAX_MESSAGES"], ""))


def lost(database_url: str, shipment_ids: list[int]) -> list[tuple[int, bool]]:
    """The trackers' signal_lost (their silent e-seals have their own: test_seal_signal_lost)."""
    return query(database_url, "SELECT a.shipment_id, a.ended_at IS NULL FROM alerts a JOIN shipments s"
                               " ON s.id = a.shipment_id AND s.tracker_id = a.device_id WHERE a.type = 'signal_lost'"
                               " AND a.shipment_id = ANY(%s)", (shipment_ids,))


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_connected_tracker_sending_only_statuses_loses_its_signal(
        fast_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit],
        listener: AlertListener) -> None:
    tr = transit("jammed", now_ms() - HOUR_MS)
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(Fix(seq=0, ts=now_ms(), lat=0.0, lon=30.01)))])
        acked(dev, 0)
        # GPS jammed: the tracker stays connected and keeps reporting its status, without a position.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and ("opened", "signal_lost") not in listener.of(tr.tracker):
            dev.publish_all([("status", encode(Status(ts=now_ms(), state="online")))])
            time.sleep(0.3)
        assert ("opened", "signal_lost") in listener.of(tr.tracker)
        for _ in range(5):  # a status is not a position: the alert stays open
            dev.publish_all([("status", encode(Status(ts=now_ms(), state="online")))])
            time.sleep(0.3)
        assert lost(database_url, [tr.shipment_id]) == [(tr.shipment_id, True)]
        dev.publish_all([("pos", encode(Fix(seq=1, ts=now_ms(), lat=0.0, lon=30.02)))])
        acked(dev, 1)
    wait_for(lambda: lost(database_url, [tr.shipment_id]) == [(tr.shipment_id, False)], 10, "a fix to end it")


class Fleet:
    """Trackers each publishing a fix every 0.25 s from a thread, like trucks on the road."""

    def __init__(self, devices: list[Device]) -> None:
        self._devices = devices
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            for dev in self._devices:
                dev.publish("pos", encode(Fix(seq=self.sent, ts=now_ms(), lat=0.0, lon=30.01 + self.sent * 1e-5)))
            self.sent += 1
            self._stop.wait(0.25)

    def __enter__(self) -> Fleet:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_restart_after_an_outage_longer_than_the_threshold_pages_nobody_whose_backlog_arrives(
        fast_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit],
        listener: AlertListener) -> None:
    trips = [transit(f"outage{i}", now_ms() - HOUR_MS) for i in range(2)]
    ids = [t.shipment_id for t in trips]
    # Small batches: the queued backlog takes several batches to drain.
    fast_sweep.restart_with(CTT_BATCH_MAX_MESSAGES="4")
    with Device(trips[0].tracker) as a, Device(trips[1].tracker) as b, Fleet([a, b]):
        wait_for(lambda: a.acks and b.acks, 10, "the first fixes stored")
        fast_sweep.stop()
        time.sleep(5)  # longer than signal_lost_s: every truck's last stored fix is now too old
        fast_sweep.start()
        wait_for(lambda: fast_sweep.metric("ctt_ingest_backlog_drained") == 1.0, 15, "ingest to drain its backlog")
        time.sleep(2)  # several sweeps after draining
    assert lost(database_url, ids) == []
    trackers = {t.tracker for t in trips}
    assert not [m for m in listener.messages if m["type"] == "signal_lost" and m["device"] in trackers]
