"""``gps_jamming`` through the broker and ingest, on fix time: a tracker reporting
``online`` statuses while its newest fix is older than its shipment's expected
interval (medium 900 s, high 600 s at the default CTT_SIGNAL_LOST_S). Started at
that newest fix, ended at the next fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.records import Fix, Status, encode
from tests.ingest.alerting.seal_support import now_ms
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import Device, IngestProcess, execute, query, scalar, wait_for

MIN_MS = 60_000


def jamming(database_url: str, device_id: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT (extract(epoch FROM started_at) * 1000)::int8,"
                               " (extract(epoch FROM ended_at) * 1000)::int8, severity FROM alerts"
                               " WHERE device_id = %s AND type = 'gps_jamming'", (device_id,))


def status(dev: Device, database_url: str, ts: int, state: str = "online", buffered: int | None = None) -> None:
    """Publish a status and wait until it is stored (its evaluation commits with it)."""
    dev.publish_all([("status", encode(Status(ts=ts, state=state, buffered=buffered)))])  # type: ignore[arg-type]
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM device_status WHERE device_id = %s"
                                          " AND ts = to_timestamp(%s / 1000.0)", (dev.device_id, ts)), 10,
             f"status {ts} stored")


def test_statuses_without_fixes_beyond_the_interval_are_jamming_until_the_next_fix(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    tr = transit("jam", now_ms() - HOUR_MS)
    t0 = now_ms() - 40 * MIN_MS
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(Fix(seq=0, ts=t0, lat=0.0, lon=30.01)))])
        acked(dev, 0)
        status(dev, database_url, t0 + MIN_MS)  # connected from the start of the silence
        status(dev, database_url, t0 + 14 * MIN_MS)
        status(dev, database_url, t0 + 16 * MIN_MS, "offline")  # not reporting: no jamming
        # Back from a coverage gap with fixes in store: they come next, nothing is jammed.
        status(dev, database_url, t0 + 16 * MIN_MS - 1, buffered=12)
        assert jamming(database_url, tr.tracker) == []
        status(dev, database_url, t0 + 16 * MIN_MS + 1)
        assert jamming(database_url, tr.tracker) == [(t0, None, "high")]
        dev.publish_all([("pos", encode(Fix(seq=1, ts=t0 + 20 * MIN_MS, lat=0.0, lon=30.02)))])
        acked(dev, 1)
    assert jamming(database_url, tr.tracker) == [(t0, t0 + 20 * MIN_MS, "high")]


def test_a_high_risk_tracker_is_expected_every_600_s(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    tr = transit("jamhigh", now_ms() - HOUR_MS)
    execute(database_url, "UPDATE shipments SET risk_level = 'high' WHERE id = %s", (tr.shipment_id,))
    t0 = now_ms() - 40 * MIN_MS
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(Fix(seq=0, ts=t0, lat=0.0, lon=30.01)))])
        acked(dev, 0)
        status(dev, database_url, t0 + MIN_MS)
        status(dev, database_url, t0 + 9 * MIN_MS)
        assert jamming(database_url, tr.tracker) == []
        status(dev, database_url, t0 + 11 * MIN_MS)
    assert jamming(database_url, tr.tracker) == [(t0, None, "critical")]  # high severity shifted up for high risk


def test_a_tracker_back_from_being_off_is_not_jammed(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    """Off for 30 minutes (nothing recorded, nothing sent), it reconnects: its one "online"
    status comes a moment before its first new fix, maybe in an earlier batch."""
    tr = transit("jamoff", now_ms() - HOUR_MS)
    t0 = now_ms() - 40 * MIN_MS
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(Fix(seq=0, ts=t0, lat=0.0, lon=30.01)))])
        acked(dev, 0)
        status(dev, database_url, t0 + 30 * MIN_MS)
        dev.publish_all([("pos", encode(Fix(seq=1, ts=t0 + 30 * MIN_MS + 1000, lat=0.0, lon=30.2)))])
        acked(dev, 1)
    assert jamming(database_url, tr.tracker) == []
