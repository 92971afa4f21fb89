"""Failover figures for ``bench/scale.py``, on the two-node Patroni cluster of ``deploy/ha.sh``
(``ctt/ha.py``) in synchronous mode:

- ``failover_s``: seconds from ``kill -9`` of the primary's postmaster to the first commit
  on the new primary, timed by ``ctt.ha.failover_seconds`` (a client committing short
  INSERTs through the multi-host URL in a loop);
- ``lost``: while that happens, a ``ctt ingest`` worker on the cluster's multi-host URL stores
  a live fleet (the scale bench's, every tracker in transit); once the publisher has every
  PUBACK, the broker holds whatever ingest has not acknowledged and redelivers it, so
  when ingest has gone quiet every message sent is either stored or was acknowledged by
  ingest and lost with the old primary: ``lost`` = fixes sent - fixes stored.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import publisher
from bench.fleet import FleetSpec, register_fleet
from ctt import ha
from ctt.config import DB_ADMIN, DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from tests.ingest.workers_support import COMMITTED_METRIC, WorkerPool
from tests.support import scalar

HA_DB = "ctt_bench_scale_ha"
TRACKERS = 1_000
RATE = 500.0  # msg/s: a steady stream through the failover, well within one worker's reach
QUIET_S = 10.0  # ingest committed nothing new for this long: the broker has nothing left for it


def measure_failover(publish_s: float, password: str, logs: Path) -> tuple[float, float, str]:
    """(failover seconds, rows lost, what happened) from one run."""
    ops = OpsSettings()
    cluster = ha.Cluster(ops.state_dir)
    cluster.up(sync=True)
    cluster.wait_healthy(sync=True)
    url = fresh_database(ops.url_for(DB_ADMIN, cluster.url()), HA_DB, ops.url_for(DB_OWNER, cluster.url()))
    spec = FleetSpec("bscaleha", TRACKERS, 0, int(time.time() * 1000) - 3_600_000)
    register_fleet(url, spec)
    pool = WorkerPool(url, logs, 1, CTT_LOG_LEVEL="WARNING", CTT_SIGNAL_LOST_S="86400",
                      CTT_DB_RETRY_MAX_S="1").start()
    try:
        with publisher.running(publisher.Job(spec, 1, 0, 0, 0, RATE, publish_s), password) as proc:
            time.sleep(publish_s / 3)
            failover_s = ha.failover_seconds(cluster, ops.url_for(DB_OWNER, cluster.url(HA_DB)))
            report = publisher.report(proc)
        _wait_quiet(pool, url, report.sent)
        stored = int(scalar(url, "SELECT count(*) FROM fixes"))
        errors = pool.total('ctt_ingest_database_errors_total{kind="transient"}')
    finally:
        pool.stop()
    note = (f"{report.sent:,} fixes from {TRACKERS:,} in-transit trackers at {RATE:,.0f} msg/s through a synchronous "
            f"failover; {stored:,} stored; ingest saw {errors:,.0f} transient database errors")
    return failover_s, float(report.sent - stored), note


def _wait_quiet(pool: WorkerPool, url: str, sent: int, timeout: float = 180) -> None:
    """Until every fix is stored, or ingest has committed nothing for ``QUIET_S``."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        if int(scalar(url, "SELECT count(*) FROM fixes")) >= sent:
            return
        committed = pool.total(COMMITTED_METRIC)
        if committed != last:
            last, since = committed, time.monotonic()
        elif time.monotonic() - since > QUIET_S:
            return
        time.sleep(0.5)
