"""The wall-clock jobs (sweep, relay) are contained like messages: one that the
database refuses is counted and retried next interval, and ingest keeps storing."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from protocol.records import Fix, encode
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import Device, IngestProcess, execute, scalar, wait_for

_REFUSE_OVERDUE = """
CREATE FUNCTION refuse_overdue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.type = 'transit_overdue' THEN
        RAISE EXCEPTION 'operator rule: no overdue alerts today' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_overdue BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION refuse_overdue();
"""


@pytest.fixture
def refused_sweep(ingest: IngestProcess, database_url: str) -> Iterator[IngestProcess]:
    execute(database_url, _REFUSE_OVERDUE)
    ingest.restart_with(CTT_SWEEP_INTERVAL_S="0.3")
    try:
        yield ingest
    finally:
        execute(database_url, "DROP TRIGGER refuse_overdue ON alerts; DROP FUNCTION refuse_overdue()")
        execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() "
                              "WHERE status = 'in_transit'")
        ingest.restart_with(CTT_SWEEP_INTERVAL_S="")


def housekeeping_errors(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('ctt_ingest_housekeeping_errors_total{job="sweep"}'))


def test_a_sweep_the_database_refuses_never_stops_ingest(
        refused_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    now = int(time.time() * 1000)
    # Overdue since an hour: every sweep tries to open transit_overdue and the database refuses it.
    tr = transit("refusedsweep", now - 3 * HOUR_MS, deadline_ms=now - HOUR_MS)
    # Several refused sweeps (one every 0.3 s), ingest connected throughout.
    wait_for(lambda: housekeeping_errors(refused_sweep.metrics_port) >= 2, 15, "two refused sweeps")
    assert refused_sweep.metric("ctt_ingest_broker_connected") == 1.0  # raises if ingest exited
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(Fix(seq=0, ts=now, lat=0.0, lon=30.01)))])
        acked(dev, 0)
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (tr.tracker,)) == 1
    assert refused_sweep.metric("ctt_ingest_broker_connected") == 1.0  # raises if ingest exited
