"""``signal_lost`` for e-seals too, and at each shipment's risk level: the profile's
report_interval_s scaled by CTT_SIGNAL_LOST_S / 900 (here 6 s: high 4 s, medium 6 s,
low 12 s). A seal is heard again by a seal event or a status; that ends only its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from protocol.records import SealEvent, Status, encode
from tests.ingest.alerting.seal_support import now_ms
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import Device, IngestProcess, execute, query, wait_for

FAST = {"CTT_SIGNAL_LOST_S": "6", "CTT_SWEEP_INTERVAL_S": "0.3"}


@pytest.fixture
def fast_sweep(ingest: IngestProcess, database_url: str) -> Iterator[IngestProcess]:
    """Ingest with a 6 s medium-risk signal rule; afterwards nothing is left in transit for it to flag."""
    ingest.restart_with(**FAST)
    yield ingest
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE status = 'in_transit'")
    ingest.restart_with(**dict.fromkeys(FAST, ""))


def lost(database_url: str, shipment_id: int) -> dict[str, tuple[int, bool]]:
    """device -> (started ms, still open) of a shipment's signal_lost alerts."""
    rows = query(database_url, "SELECT device_id, (extract(epoch FROM started_at) * 1000)::int8, ended_at IS NULL"
                               " FROM alerts WHERE type = 'signal_lost' AND shipment_id = %s", (shipment_id,))
    return {device: (started, is_open) for device, started, is_open in rows}


def test_trackers_and_seals_lose_their_signal_at_their_shipments_risk_level(
        fast_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    high, low = transit("losthigh", now_ms() - HOUR_MS), transit("lostlow", now_ms() - HOUR_MS)
    # Both silent since 8 s ago: beyond the high-risk 4 s, within the low-risk 12 s.
    since = now_ms() - 8000
    execute(database_url, "UPDATE shipments SET status_changed_at = to_timestamp(%s / 1000.0),"
                          " risk_level = CASE WHEN id = %s THEN 'high' ELSE 'low' END WHERE id = ANY(%s)",
            (since, high.shipment_id, [high.shipment_id, low.shipment_id]))
    wait_for(lambda: len(lost(database_url, high.shipment_id)) == 2, 5, "signal_lost of the high-risk devices")
    assert lost(database_url, high.shipment_id) == {high.tracker: (since, True), high.seal: (since, True)}
    assert lost(database_url, low.shipment_id) == {}
    wait_for(lambda: len(lost(database_url, low.shipment_id)) == 2, 10, "signal_lost of the low-risk devices")
    assert lost(database_url, low.shipment_id) == {low.tracker: (since, True), low.seal: (since, True)}
    # The high-risk seal reports its status: its own alert ends at that time, the tracker's stays open.
    back = now_ms()
    with Device(high.seal) as seal:
        seal.publish_all([("status", encode(Status(ts=back, state="online", bat=80.0)))])
    wait_for(lambda: lost(database_url, high.shipment_id)[high.seal] == (since, False), 10, "the seal heard again")
    ((ended,),) = query(database_url, "SELECT (extract(epoch FROM ended_at) * 1000)::int8 FROM alerts"
                                      " WHERE device_id = %s AND type = 'signal_lost'", (high.seal,))
    assert ended == back
    assert lost(database_url, high.shipment_id)[high.tracker] == (since, True)
    # A seal event ends a seal's too.
    with Device(low.seal) as seal:
        seal.publish_all([("seal", encode(SealEvent(seq=0, ts=now_ms(), seal_id=low.seal, event="closed")))])
        acked(seal, 0)
    wait_for(lambda: lost(database_url, low.shipment_id)[low.seal][1] is False, 10, "the low-risk seal heard again")
