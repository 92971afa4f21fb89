"""Late fixes whose seq and ts disagree with the device's history are flagged in
``suspect_records``; a consistent backlog is not."""

from __future__ import annotations

import time
from collections.abc import Callable

from protocol.records import Fix, encode
from tests.geofence.tracks import STEP_MS
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import Device, IngestProcess, query, wait_for

SECONDS = 1000


def reasons(database_url: str, device_id: str, seq: int) -> set[str]:
    rows = query(database_url, "SELECT reason FROM suspect_records WHERE device_id = %s AND seq = %s",
                 (device_id, seq))
    return {reason for (reason,) in rows}


def test_late_fixes_out_of_step_with_the_device_history_are_suspect(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("suspect", start)

    def fix(seq: int, ts: int) -> Fix:
        return Fix(seq=seq, ts=ts, lat=0.0, lon=30.0 + (ts - start) / 1e9)

    t = [start + i * STEP_MS for i in range(40)]
    # Live: seqs 0-9 and 30-39; seqs 10-29 are still in the tracker's store-and-forward buffer.
    live = [fix(i, t[i]) for i in [*range(10), *range(30, 40)]]
    backlog = [fix(i, t[i]) for i in range(19, 9, -1)]  # a consistent backlog, newest first
    in_closed = fix(25, t[3] + 7 * SECONDS)  # between seqs 3 and 4: nothing can lie there
    far_ahead = fix(10_000_000, t[25])  # far beyond the device's counter
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in live])
        acked(dev, 9)
        time.sleep(0.5)  # evaluated before the late records come
        dev.publish_all([("pos", encode(backlog))])
        acked(dev, 19)
        dev.publish_all([("pos", encode(in_closed)), ("pos", encode(far_ahead))])
        # seqs 20-29 are still missing: the ack stays at 19; the far seq shows when both are stored.
        wait_for(lambda: reasons(database_url, tr.tracker, far_ahead.seq), 10, "the far seq flagged")
    assert query(database_url, "SELECT count(*) FROM suspect_records WHERE device_id = %s AND seq BETWEEN 0 AND 19",
                 (tr.tracker,)) == [(0,)]
    assert reasons(database_url, tr.tracker, in_closed.seq) == {"closed_stretch", "order"}
    assert reasons(database_url, tr.tracker, far_ahead.seq) == {"seq_jump", "order"}
    ((ts,),) = query(database_url, "SELECT DISTINCT (extract(epoch FROM ts) * 1000)::int8 FROM suspect_records"
                                   " WHERE device_id = %s AND seq = %s", (tr.tracker, in_closed.seq))
    assert ts == in_closed.ts
