"""Broker lost: ingest reconnects and its persistent session delivers the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psycopg

from ctt.config import REPO_ROOT
from protocol.records import Fix, encode
from tests.support import BROKER_STATE, Device, IngestProcess, provision, scalar, unique_prefix, wait_for


def test_broker_restart_while_ingest_holds_unacked_messages_loses_nothing(ingest: IngestProcess,
                                                                           database_url: str) -> None:
    dev = unique_prefix("brk")
    provision([dev])
    total = 20_000
    now = int(time.time() * 1000)
    records = [encode(Fix(seq=s, ts=now - 3_600_000 + s * 100, lat=0.3, lon=32.5)) for s in range(total)]

    def stored() -> int:
        return int(scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (dev,)))

    ingest.stop()
    with Device(dev) as d:
        d.publish_all([("pos", r) for r in records])  # queued in the ingest session
    # Hold ingest's first commit: inserts wait on this lock, reads do not.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE fixes IN EXCLUSIVE MODE")
        ingest.start()
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM pg_locks WHERE NOT granted"), 20,
                 "ingest to wait on its first commit")
        # The broker goes away while ingest holds received, unacknowledged messages.
        pid = int((BROKER_STATE / "mosquitto.pid").read_text())
        os.kill(pid, signal.SIGTERM)  # mosquitto saves its sessions on SIGTERM
        wait_for(lambda: not _alive(pid), 20, "the broker to stop")
        wait_for(lambda: ingest.metric("ctt_ingest_broker_connected") == 0.0, 10, "ingest to notice")
        blocker.rollback()
    # That batch commits, but its PUBACKs have no connection to go to.
    wait_for(lambda: stored() > 0, 20, "the held batch to commit")
    assert stored() < total
    subprocess.run(["bash", "deploy/services.sh", "--test-tools"], cwd=REPO_ROOT, check=True, capture_output=True)
    wait_for(lambda: ingest.metric("ctt_ingest_broker_connected") == 1.0, 60, "ingest to reconnect")
    wait_for(lambda: stored() == total, 60, f"all {total} fixes")
    time.sleep(0.5)
    assert stored() == total  # redelivered messages of the held batch are stored once


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
