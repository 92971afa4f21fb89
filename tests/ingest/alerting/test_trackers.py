"""One tracker whose evaluation fails costs neither the records nor the other
trackers' alerts: it is counted and retried next batch from its saved state."""

from __future__ import annotations

import time
from collections.abc import Callable

from geofence.state import DeviceState, dumps
from protocol.records import encode
from tests.geofence.tracks import Trip
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked, fixes
from tests.support import AlertListener, Device, IngestProcess, execute, query, wait_for


def saved_last_fix(database_url: str, device_id: str) -> list[tuple[int]]:
    return query(database_url, "SELECT (extract(epoch FROM last_fix_at) * 1000)::int8 FROM geofence_state"
                               " WHERE device_id = %s", (device_id,))


def test_a_tracker_whose_evaluation_fails_leaves_the_others_of_its_batch_their_alerts(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    good, broken = transit("good", start), transit("broken", start)
    # A saved state the engine cannot take: its packed fixes are 5 bytes, no whole record.
    corrupt = dumps(DeviceState(shipment_id=broken.shipment_id, last_ts=start - 1, context=b"\x00" * 5))
    execute(database_url, "INSERT INTO geofence_state (device_id, shipment_id, state) VALUES (%s, %s, %s)",
            (broken.tracker, broken.shipment_id, corrupt))
    trip = fixes(Trip(start_ms=start).drive(20).drive(8, north_m=900).track())
    errors_before = ingest.metric("ctt_geofence_tracker_errors_total") or 0.0
    ingest.stop()  # both trackers' fixes wait in the broker: one batch when ingest is back
    with Device(good.tracker) as g, Device(broken.tracker) as b:
        g.publish_all([("pos", encode(f)) for f in trip])
        b.publish_all([("pos", encode(f)) for f in trip])
        ingest.start()
        acked(g, trip[-1].seq)
        acked(b, trip[-1].seq)
        wait_for(lambda: ("opened", "route_deviation") in listener.of(good.tracker), 10, "the good tracker's alert")
        assert saved_last_fix(database_url, good.tracker) == [(trip[-1].ts,)]
        errors = ingest.metric("ctt_geofence_tracker_errors_total")
        assert errors is not None and errors > errors_before
        assert listener.of(broken.tracker) == []
        # Repaired (no saved state): the next batch retries it, from departure, and nothing is lost.
        execute(database_url, "DELETE FROM geofence_state WHERE device_id = %s", (broken.tracker,))
        more = fixes(Trip(start_ms=trip[-1].ts + 15_000, lon=trip[-1].lon).drive(1, north_m=900).track(),
                     first_seq=len(trip))
        b.publish_all([("pos", encode(f)) for f in more])
        acked(b, more[-1].seq)
    wait_for(lambda: ("opened", "route_deviation") in listener.of(broken.tracker), 10, "the repaired tracker's alert")
    assert saved_last_fix(database_url, broken.tracker) == [(more[-1].ts,)]
