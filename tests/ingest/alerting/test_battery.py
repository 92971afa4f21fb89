"""``low_battery`` through the broker and ingest: opened by a record with bat <= 15 %
(fix, seal event or status) or a seal's ``low_battery`` event, on the device's
in-transit shipment, at that record's time; ended by bat >= 25 %, not before (a
battery hovering around 15 % pages once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.records import Fix, SealEvent, Status, encode
from tests.ingest.alerting.seal_support import now_ms
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import Device, IngestProcess, query, wait_for


def battery_alerts(database_url: str, device_id: str) -> list[tuple[Any, ...]]:
    """(started ms, ended ms, severity, detail) of a device's low_battery alerts, oldest first."""
    return query(database_url, "SELECT (extract(epoch FROM started_at) * 1000)::int8,"
                               " (extract(epoch FROM ended_at) * 1000)::int8, severity, detail FROM alerts"
                               " WHERE device_id = %s AND type = 'low_battery' ORDER BY started_at",
                 (device_id,))


def test_low_battery_opens_at_15_and_ends_at_25_percent(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    tr = transit("battery", now_ms() - HOUR_MS)
    t0 = now_ms() - 1_800_000
    levels = [30.0, 14.0, 20.0, 15.0, 24.9, 25.0, 40.0, 15.0]
    track = [Fix(seq=i, ts=t0 + i * 60_000, lat=0.0, lon=30.01 + i * 0.001, bat=b) for i, b in enumerate(levels)]
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in track[:4]])
        acked(dev, 3)
        # Back at 14-20-15 %: still the one alert.
        assert battery_alerts(database_url, tr.tracker) == [(track[1].ts, None, "low", {"bat": 14.0})]
        dev.publish_all([("pos", encode(f)) for f in track[4:]])
        acked(dev, len(track) - 1)
    assert battery_alerts(database_url, tr.tracker) == [
        (track[1].ts, track[5].ts, "low", {"bat": 14.0}), (track[7].ts, None, "low", {"bat": 15.0})]


def test_a_seal_low_battery_event_or_status_opens_it_for_the_seal(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    tr = transit("sealbat", now_ms() - HOUR_MS)
    ts = now_ms() - 600_000
    with Device(tr.seal) as seal:
        seal.publish_all([("seal", encode(SealEvent(seq=0, ts=ts, seal_id=tr.seal, event="low_battery")))])
        acked(seal, 0)
        assert battery_alerts(database_url, tr.seal) == [(ts, None, "low", {"event": "low_battery"})]
        seal.publish_all([("status", encode(Status(ts=ts + 60_000, state="online", bat=90.0)))])
        wait_for(lambda: battery_alerts(database_url, tr.seal)[0][1] == ts + 60_000, 10, "the status to end it")
    # A status alone opens it too (the tracker here).
    with Device(tr.tracker) as dev:
        dev.publish_all([("status", encode(Status(ts=ts, state="online", bat=9.5)))])
        wait_for(lambda: battery_alerts(database_url, tr.tracker), 10, "low_battery from a status")
    assert battery_alerts(database_url, tr.tracker) == [(ts, None, "low", {"bat": 9.5})]
