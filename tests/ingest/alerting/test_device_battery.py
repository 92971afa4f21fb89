"""``device_battery`` through the broker and ingest: statuses whose battery trend will not
last until the shipment's deadline open it, before departure and in transit; a trend that
lasts again ends it, and so does arrival. The hysteresis itself: ``verdict`` on hand-made
forecasts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.alerting.device_battery import Forecast, verdict
from protocol.records import Status, encode
from tests.ingest.alerting.seal_support import now_ms
from tests.ingest.conftest import HOUR_MS, Transit
from tests.support import Device, IngestProcess, execute, query, wait_for

FAST = {"CTT_SWEEP_INTERVAL_S": "0.3", "CTT_BATTERY_SWEEP_S": "0.3"}
DEADLINE = datetime(2030, 1, 1, 12, tzinfo=UTC)
MARGIN = timedelta(hours=2)


def forecast(empty_in_h: float | None, past: bool = False) -> Forecast:
    """A forecast emptying ``empty_in_h`` hours after DEADLINE (None: not draining)."""
    empty_at = None if empty_in_h is None else DEADLINE + timedelta(hours=empty_in_h)
    return Forecast(1, "d", DEADLINE, 50.0, 5.0, empty_at, past)


def test_verdict_opens_below_one_margin_and_ends_above_two() -> None:
    assert verdict(forecast(1.9), MARGIN, is_open=False) == "open"
    assert verdict(forecast(-5), MARGIN, is_open=False) == "open"
    assert verdict(forecast(2.0), MARGIN, is_open=False) is None
    # Between one and two margins: whatever the state is, it stays (no flapping).
    assert verdict(forecast(3), MARGIN, is_open=True) is None
    assert verdict(forecast(3), MARGIN, is_open=False) is None
    assert verdict(forecast(4), MARGIN, is_open=True) == "end"
    assert verdict(forecast(None), MARGIN, is_open=True) == "end"  # charging
    assert verdict(forecast(-5, past=True), MARGIN, is_open=False) is None  # overdue: transit_overdue's
    assert verdict(forecast(1), MARGIN, is_open=True) is None


@pytest.fixture
def fast_sweep(ingest: IngestProcess, database_url: str) -> Iterator[IngestProcess]:
    ingest.restart_with(**FAST)
    yield ingest
    ingest.restart_with(**dict.fromkeys(FAST, ""))


def battery(database_url: str, device_id: str) -> list[tuple[Any, ...]]:
    """(open, severity, detail) of the device's device_battery alerts, oldest first."""
    return query(database_url, "SELECT ended_at IS NULL, severity, detail FROM alerts WHERE device_id = %s "
                               "AND type = 'device_battery' ORDER BY id", (device_id,))


def send(device_id: str, levels: list[tuple[int, float]]) -> None:
    """Statuses (ms, bat %) from the device."""
    with Device(device_id) as dev:
        dev.publish_all([("status", encode(Status(ts=ts, state="online", bat=bat))) for ts, bat in levels])


def test_registered_shipment_opens_then_a_fresh_battery_ends_it(
        fast_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    now = now_ms()
    tr = transit("devbat", now, now + 10 * HOUR_MS)
    execute(database_url, "UPDATE shipments SET status = 'registered', departed_at = NULL WHERE id = %s",
            (tr.shipment_id,))
    # 60 -> 40 % over two hours: 10 %/h, empty three hours from now; the deadline is in 10 h.
    send(tr.tracker, [(now - 3 * HOUR_MS, 60.0), (now - 2 * HOUR_MS, 50.0), (now - HOUR_MS, 40.0)])
    wait_for(lambda: battery(database_url, tr.tracker), 15, "device_battery to open")
    [(is_open, severity, detail)] = battery(database_url, tr.tracker)
    assert is_open and severity == "medium"
    assert detail["battery"] == 40.0 and detail["drain_per_h"] == pytest.approx(10.0)
    assert detail["hours_left"] == pytest.approx(3.0, abs=0.1)
    assert datetime.fromisoformat(detail["deadline"]) == datetime.fromtimestamp((now + 10 * HOUR_MS) // 1000, UTC)
    # A fresh battery: the trend rises, it lasts, the alert ends (once).
    send(tr.tracker, [(now, 100.0)])
    wait_for(lambda: not battery(database_url, tr.tracker)[0][0], 15, "device_battery to end")
    assert len(battery(database_url, tr.tracker)) == 1


def test_in_transit_a_seal_opens_it_and_arrival_ends_it(
        fast_sweep: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    now = now_ms()
    tr = transit("sealdevbat", now - HOUR_MS, now + 30 * HOUR_MS)
    # 1 %/h from 20 %: empty in about 19 h, the deadline is in 30 h.
    send(tr.seal, [(now - 2 * HOUR_MS + 1000, 21.0), (now - HOUR_MS, 20.0), (now - 1000, 19.0)])
    wait_for(lambda: battery(database_url, tr.seal), 15, "device_battery of the seal to open")
    assert battery(database_url, tr.tracker) == []
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE id = %s",
            (tr.shipment_id,))
    wait_for(lambda: not battery(database_url, tr.seal)[0][0], 15, "arrival to end it")
