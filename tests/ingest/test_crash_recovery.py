"""Lose nothing: kill -9 the ingest process mid-stream, restart the database mid-stream."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

from protocol.records import Fix, encode
from tests.support import Device, IngestProcess, provision, scalar, unique_prefix, wait_for

DEVICES = 10


def _publisher(
    prefix: str, per_device: int, rate_per_s: float, resend_every: int
) -> tuple[threading.Thread, list[int]]:
    """Publish ``per_device`` single-fix messages per device at ``rate_per_s`` in total,
    resending every ``resend_every``-th record again (duplicates on purpose)."""
    sent = [0]
    ids = [f"{prefix}-{i}" for i in range(DEVICES)]
    provision(ids)
    now = int(time.time() * 1000)

    def run() -> None:
        with_devices = [Device(d).__enter__() for d in ids]
        try:
            start = time.monotonic()
            infos = []
            for seq in range(per_device):
                for d in with_devices:
                    record = Fix(seq=seq, ts=now - 86_400_000 + seq * 1000, lat=-1.0 + seq * 1e-5, lon=36.0)
                    infos.append(d.publish("pos", encode(record)))
                    if seq % resend_every == 0:
                        infos.append(d.publish("pos", encode(record)))
                    sent[0] += 1
                behind = sent[0] / rate_per_s - (time.monotonic() - start)
                if behind > 0:
                    time.sleep(behind)
            for info in infos:
                info.wait_for_publish(timeout=60)
        finally:
            for d in with_devices:
                d.__exit__(None, None, None)

    return threading.Thread(target=run, daemon=True), sent


def _count(url: str, prefix: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM fixes WHERE device_id LIKE %s", (prefix + "-%",)))


def _run_with_interruptions(url: str, prefix: str, total: int, interrupt: Callable[[], None],
                            times: int, every_s: float) -> list[int]:
    """Run the publisher; call ``interrupt`` ``times`` times; return stored counts seen at each."""
    thread, _ = _publisher(prefix, total // DEVICES, rate_per_s=total / 8, resend_every=20)
    thread.start()
    counts = []
    for _ in range(times):
        time.sleep(every_s)
        counts.append(_count(url, prefix))
        interrupt()
    thread.join(timeout=120)
    assert not thread.is_alive(), "publisher did not finish"
    return counts


def test_kill_dash_nine_during_a_run_loses_and_duplicates_nothing(ingest: IngestProcess, database_url: str) -> None:
    prefix = unique_prefix("crash")
    total = 30_000

    def crash_and_restart() -> None:
        ingest.kill()
        time.sleep(0.3)
        ingest.start()

    counts = _run_with_interruptions(database_url, prefix, total, crash_and_restart, times=4, every_s=1.5)
    wait_for(lambda: _count(database_url, prefix) >= total, 90, f"{total} fixes")
    time.sleep(1.0)  # anything redelivered late must still be deduplicated
    assert _count(database_url, prefix) == total
    assert scalar(database_url, "SELECT count(DISTINCT (device_id, seq)) FROM fixes WHERE device_id LIKE %s",
                  (prefix + "-%",)) == total
    # The kills really landed mid-stream.
    assert sum(0 < c < total for c in counts) >= 2, counts
    acked = scalar(database_url, "SELECT array_agg(DISTINCT acked_seq) FROM devices WHERE device_id LIKE %s",
                   (prefix + "-%",))
    assert acked == [total // DEVICES - 1]


def _as_root(*cmd: str) -> list[str]:
    return list(cmd) if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo", "-n", *cmd]


def test_database_restart_mid_run_loses_nothing(ingest: IngestProcess, database_url: str) -> None:
    prefix = unique_prefix("dbrs")
    total = 20_000
    errors_before = ingest.metric('ctt_ingest_database_errors_total{kind="transient"}') or 0.0

    def outage() -> None:
        subprocess.run(_as_root("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "stop", "-m", "fast"),
                       check=True)
        time.sleep(3)
        subprocess.run(_as_root("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"), check=True)

    counts = _run_with_interruptions(database_url, prefix, total, outage, times=1, every_s=2.5)
    wait_for(lambda: _count(database_url, prefix) >= total, 90, f"{total} fixes")
    assert _count(database_url, prefix) == total
    assert 0 < counts[0] < total, counts
    errors = ingest.metric('ctt_ingest_database_errors_total{kind="transient"}')
    assert errors is not None and errors > errors_before, "ingest never saw the outage"


def test_database_outage_holds_at_most_receive_maximum_in_memory(ingest: IngestProcess, database_url: str) -> None:
    dev = unique_prefix("mem")
    provision([dev])
    window, total = 200, 5_000
    now = int(time.time() * 1000)
    records = [("pos", encode(Fix(seq=s, ts=now - 3_600_000 + s * 100, lat=0.1, lon=33.0))) for s in range(total)]
    ingest.restart_with(CTT_RECEIVE_MAXIMUM=str(window))
    try:
        subprocess.run(_as_root("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "stop", "-m", "fast"),
                       check=True)
        try:
            with Device(dev) as d:
                d.publish_all(records)
            held = []
            for _ in range(30):
                held.append(ingest.metric("ctt_ingest_held_messages") or 0.0)
                time.sleep(0.1)
        finally:
            subprocess.run(_as_root("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"), check=True)
        # It took what the broker may send and no more; the broker keeps the rest.
        assert 0 < max(held) <= window, held
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (dev,)) == total,
                 60, f"all {total} fixes after the outage")
    finally:
        ingest.restart_with(CTT_RECEIVE_MAXIMUM="")
