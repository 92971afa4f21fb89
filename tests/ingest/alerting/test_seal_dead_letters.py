"""Seal events of no shipment are dead-lettered with a reason (and acknowledged, like
every refused record), not attached to whatever the device is doing; an event whose
number a shipment declares, or whose device is bound, is kept; a v1 shipment (bound
seal devices, no declared numbers) keeps every number its seals send."""

from __future__ import annotations

from collections.abc import Callable

from tests.ingest.alerting.seal_support import DEPARTURE, event, milestones, now_ms, sealed, send
from tests.ingest.conftest import Transit
from tests.support import IngestProcess, provision, query, unique_prefix


def test_an_unknown_seal_number_from_an_unbound_device_is_dead_lettered_and_acknowledged(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "deadl")
    stray = unique_prefix("stray")
    provision([stray])
    ts = now_ms() - 60_000
    # seq 0: a number on no shipment; seq 1: the number the shipment declares, from a device it does not bind.
    send(stray, [event(0, ts, "NOBODY-7", "armed", DEPARTURE), event(1, ts + 1000, s.number, "armed", DEPARTURE)])
    assert query(database_url, "SELECT seq, reason FROM dead_letters WHERE device_id = %s", (stray,)) == [
        (0, "seal number NOBODY-7 is not on any active shipment")]
    assert query(database_url, "SELECT seq FROM seal_events WHERE device_id = %s", (stray,)) == [(1,)]
    assert [m[0] for m in milestones(database_url, s.id)] == ["seal_armed"]
    # Refused for its number, not for a signature: no device_tamper.
    assert query(database_url, "SELECT type FROM alerts WHERE device_id = %s", (stray,)) == []


def test_a_v1_shipment_keeps_whatever_number_its_bound_seal_sends(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    trip = transit("v1seal", now_ms() - 3_600_000)
    send(trip.seal, [event(0, now_ms() - 60_000, "ANY-NUMBER", "closed", None)])
    assert query(database_url, "SELECT seq FROM seal_events WHERE device_id = %s", (trip.seal,)) == [(0,)]
    assert query(database_url, "SELECT count(*) FROM dead_letters WHERE device_id = %s", (trip.seal,)) == [(0,)]
