"""Scale-out figures (issue 12, "Measure"), in one run on this machine: the tests' Mosquitto,
the local PostgreSQL + TimescaleDB, ``ctt ingest`` as 1 and as 2 workers on one MQTT 5 shared
subscription, the API's ``GET /stream``, and the Patroni cluster of ``deploy/ha.sh``.

1. Backlog drains, every tracker in transit (engine on): the fleet's messages are queued in
   the workers' sessions while they are offline, then drained. Ingest's throughput is
   messages / (the moment the last one is counted committed - the first fix's ``received_at``);
   CPU seconds per 1,000,000 messages of ingest (its workers), of the broker (the tests'
   Mosquitto) and of PostgreSQL (the postmaster's tree, ``bench/cpu.py``), counted from the
   moment every worker is connected to the moment the backlog is committed. Single fixes
   and arrays of 50 fixes, 1 and 2 workers. ``workers2_vs_1`` is the single-fix throughput
   with 2 workers over that with 1.
2. Live fleet: every tracker sends a fix every ``trackers / rate`` seconds (20,000 trackers
   at one fix per 10 s in the full run: 2,000 msg/s) while, at regular intervals, a seal
   device (its own certificate, over TLS) publishes an ``opened`` event on an in-transit
   shipment's seal; the bench times each from just before the publish to the
   ``seal_breach`` event on ``GET /stream`` (an admin token, ``?kind=alert``). Same CPU
   figures per message, plus the load generator's own CPU (``bench/publisher.py``,
   a process of its own). ``alert_p99_ms`` is the worse of the 1- and 2-worker p99s.
3. Failover (``bench/failover.py``): seconds from ``kill -9`` of the primary's postmaster to
   the first commit on the new primary, and rows acknowledged but missing afterwards.

The broker is the bench's own Mosquitto, the tests' broker's configuration on other ports
(``bench/broker.py`` says why): ``python -m bench.scale`` starts it and runs the measurement
in a child process whose ``tests.support`` points at it. The trackers publish through a
bench-only account on it (``bench/account.py`` says why and how it is guarded).
Ingest runs with ``CTT_SIGNAL_LOST_S`` at a day: the trackers' backlogs are timed up to an
hour back and the seals' own trackers never report, so the wall-clock rule would otherwise
raise thousands of alerts the run is not about.
The last line printed is
``workers2_vs_1=<ratio> alert_p99_ms=<ms> failover_s=<s> lost=<n>``.

    .venv/bin/python -m bench.scale [--quick]      # under flock /tmp/ctt-integration.lock
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from bench import publisher
from bench.account import PASSWORD_ENV
from bench.broker import PID_ENV, bench_broker
from bench.cpu import Meter, database_cpu, postmaster_pid, process_cpu, tree_cpu
from bench.failover import measure_failover
from bench.fleet import FIX_EVERY_MS, FleetSpec, Schedule, register_fleet
from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from protocol.records import encode
from protocol.topics import shared_subscriptions
from tests.ingest.workers_support import COMMITTED_METRIC, WorkerPool
from tests.support import (
    TEST_INGEST_PASSWORD,
    TEST_INGEST_USER,
    ApiServer,
    Device,
    EventStream,
    provision,
    reset_session,
    scalar,
    wait_for,
)
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

BENCH_DB = "ctt_bench_scale"
PREFIX = "bscale"
ARRAY = 50
MILLION = 1_000_000
INGEST_ENV = {"CTT_LOG_LEVEL": "WARNING", "CTT_SIGNAL_LOST_S": "86400"}
console = Console(stderr=True)
out = Console(width=150)


@dataclass(frozen=True)
class Scale:
    trackers: int
    breaches: int  # seal breaches timed per live run
    backlog: int  # single-fix messages per drain
    arrays: int  # 50-fix messages per drain
    rate: float  # live messages/s
    live_s: float
    settle_s: float  # steady-state breaches start this long into a live run
    failover_s: float  # how long the failover run publishes


FULL = Scale(trackers=20_000, breaches=40, backlog=100_000, arrays=4_000, rate=2_000, live_s=90, settle_s=10,
             failover_s=30)
QUICK = Scale(trackers=4_000, breaches=20, backlog=60_000, arrays=4_000, rate=2_000, live_s=30, settle_s=6,
              failover_s=16)


@dataclass
class Run:
    """What the phases share: the database, the fleet, the bench account's secret, the clock."""

    url: str
    scale: Scale
    spec: FleetSpec
    password: str
    logs: Path
    progress: Progress
    postmaster: int
    oid: int  # the bench database's
    workloads: int = 0
    clock_ms: int = 0
    seals_used: int = 0
    rows: list[Figures] = field(default_factory=list)

    def next_schedule(self, array: int, messages: int) -> Schedule:
        """The next workload's seqs and fix times: after every earlier one, for every tracker."""
        self.workloads += 1
        schedule = Schedule(self.spec, array, self.workloads * 1000, self.clock_ms)
        self.clock_ms += schedule.fixes_per_tracker(messages) * FIX_EVERY_MS
        return schedule

    def pool(self, workers: int) -> WorkerPool:
        return WorkerPool(self.url, self.logs, workers, **INGEST_ENV)

    def meter(self, pool: WorkerPool) -> Meter:
        return Meter({"ingest": lambda: sum(process_cpu(w.proc.pid) for w in pool.workers if w.proc),
                      "broker": lambda: process_cpu(int(os.environ[PID_ENV])),
                      "postgres": lambda: database_cpu(self.postmaster, BENCH_DB, self.oid),
                      "postgres server": lambda: tree_cpu(self.postmaster)})


@dataclass(frozen=True)
class Figures:
    """One measured run: what, how fast, and CPU seconds per 1,000,000 messages by process."""

    name: str
    workers: int
    messages: int
    rate: float  # committed messages/s
    cpu_per_million: dict[str, float]
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    note: str = ""


def check_alive(pool: WorkerPool) -> None:
    """Raise if a worker has exited: nothing the bench does stops one mid-run."""
    for worker in pool.workers:
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"ingest worker {worker.env['CTT_WORKER_ID']} exited with {worker.proc.returncode} "
                               f"mid-run (killed from outside?); see {worker.log_path}")


def reached(deadline: float) -> Callable[[], bool]:
    """A check that is true once ``time.monotonic()`` has passed ``deadline``."""
    return lambda: time.monotonic() >= deadline


def start_queued(pool: WorkerPool) -> None:
    """Start every worker at once on the sessions that hold its share of the backlog."""
    with ThreadPoolExecutor(len(pool.workers)) as ex:
        list(ex.map(lambda w: w.start(), pool.workers))


def per_million(spent: dict[str, float], messages: float) -> dict[str, float]:
    return {name: seconds / messages * MILLION for name, seconds in spent.items()}


def drain(run: Run, workers: int, array: int, messages: int, task: TaskID) -> Figures:
    """Queue ``messages`` while ``workers`` workers are offline, then time them draining it."""
    schedule = run.next_schedule(array, messages)
    pool = run.pool(workers)
    for client_id in pool.client_ids:  # offline sessions, each collecting its share
        reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, list(shared_subscriptions(pool.group)), client_id)
    job = publisher.Job(run.spec, array, schedule.seq0, schedule.clock_ms, messages)
    publisher.publish(job, run.password)
    try:
        start_queued(pool)
        meter = run.meter(pool)
        meter.mark()
        before = pool.total(COMMITTED_METRIC)

        def done() -> bool:
            check_alive(pool)
            n = pool.total(COMMITTED_METRIC)
            run.progress.update(task, completed=n)
            return n >= messages

        run.progress.update(task, total=messages, completed=0)
        wait_for(done, 600, f"{workers} worker(s) to commit {messages} messages", 0.05)
        done_at = time.time()
        spent = meter.since()
        counted = pool.total(COMMITTED_METRIC) - before
        batches = profile(pool)
    finally:
        pool.stop()
    first = scalar(run.url, "SELECT extract(epoch FROM min(received_at)) FROM fixes WHERE seq >= %s AND seq < %s",
                   (schedule.seq0, schedule.seq0 + 1000))
    kind = "single fixes" if array == 1 else f"arrays of {array}"
    return Figures(f"drain, {kind}", workers, messages, messages / (done_at - float(first)),
                   per_million(spent, counted), note=batches)


@dataclass
class BreachTimer:
    """Seal breaches published at regular times and their arrival on ``GET /stream``."""

    stream: EventStream
    seen: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # seal id -> perf_counter at publish
    arrived: dict[str, float] = field(default_factory=dict)
    others: int = 0  # alert events that are not the bench's breaches

    def publish(self, device: Device, event: bytes) -> None:
        self.sent[device.device_id] = time.perf_counter()
        device.publish("seal", event)

    def poll(self) -> None:
        events = self.stream.events
        while self.seen < len(events):
            data = events[self.seen].data
            self.seen += 1
            device = data.get("device", "")
            if data.get("type") == "seal_breach" and device in self.sent and device not in self.arrived:
                self.arrived[device] = time.perf_counter()
            elif data.get("type") != "seal_breach":
                self.others += 1

    def poll_until(self, done: Callable[[], bool], at_most_s: float = 600) -> None:
        """Watch the stream every millisecond until ``done()`` or ``at_most_s`` has passed."""
        deadline = time.monotonic() + at_most_s
        while not done() and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.001)

    def latencies_ms(self) -> list[float]:
        """In publishing order."""
        return [(self.arrived[d] - t) * 1000 for d, t in self.sent.items() if d in self.arrived]


def live(run: Run, api: ApiServer, token: str, workers: int, task: TaskID) -> Figures:
    """A live fleet at ``rate`` msg/s for ``live_s`` while seal breaches are timed to the stream:
    one a second after the workers start (cold: reported apart), the others evenly from
    ``settle_s`` to a second before the end (steady state: p50, p99)."""
    scale = run.scale
    schedule = run.next_schedule(1, 0)
    seals = list(range(run.seals_used, run.seals_used + scale.breaches + 1))
    run.seals_used += len(seals)
    at = [1.0] + [scale.settle_s + k * (scale.live_s - 1 - scale.settle_s) / (scale.breaches - 1)
                  for k in range(scale.breaches)]
    with ThreadPoolExecutor(8) as ex:
        devices = list(ex.map(lambda i: Device(run.spec.seal(i)).__enter__(), seals))
    stream = EventStream(api.url, token, query="?kind=alert")
    timer = BreachTimer(stream)
    pool = run.pool(workers).start()
    try:
        meter = run.meter(pool)
        meter.mark()
        before = pool.total(COMMITTED_METRIC)
        run.progress.update(task, total=len(seals), completed=0)
        job = publisher.Job(run.spec, 1, schedule.seq0, 0, 0, scale.rate, scale.live_s)
        with publisher.running(job, run.password) as proc:
            start = time.monotonic()
            for i, device, t in zip(seals, devices, at, strict=True):
                timer.poll_until(reached(start + t))
                check_alive(pool)
                timer.publish(device, encode(run.spec.breach(i, 0)))
                run.progress.update(task, completed=len(timer.arrived))
            timer.poll_until(lambda: proc.poll() is not None)
            report = publisher.report(proc)
        committed_live = pool.total(COMMITTED_METRIC) - before
        drained = time.monotonic() + 120
        while time.monotonic() < drained and pool.total(COMMITTED_METRIC) - before < report.sent:
            check_alive(pool)
            timer.poll_until(lambda: False, 0.1)
        timer.poll_until(lambda: len(timer.arrived) == len(timer.sent) or time.monotonic() > drained)
        spent = meter.since()
        counted = pool.total(COMMITTED_METRIC) - before
        batches = profile(pool)
    finally:
        stream.close()
        for device in devices:
            device.__exit__(None, None, None)
        pool.stop()
    latencies = timer.latencies_ms()
    cold, steady = latencies[:1], latencies[1:]
    missing = len(timer.sent) - len(latencies)
    p50, p99 = (quantile(steady, 50), quantile(steady, 99)) if steady and not missing else (math.inf,) * 2
    note = (f"offered {report.sent / report.seconds:,.0f} msg/s from {run.spec.trackers:,} trackers; "
            f"{report.sent - committed_live:,.0f} msgs behind when the generator stopped; load generator "
            f"{report.cpu_s / report.seconds:.0%} of a core; {batches}; first breach after the workers started "
            f"(cold, not in p50/p99): {' '.join(f'{v:.0f}' for v in cold)} ms; {len(steady)} steady breaches (ms, "
            f"in order): {' '.join(f'{v:.0f}' for v in steady)}"
            + (f"; {missing} never arrived" if missing else "") + (f"; {timer.others} other alerts" if timer.others
                                                                   else ""))
    return Figures("live fleet", workers, int(counted), committed_live / report.seconds,
                   per_million(spent | {"load generator": report.cpu_s}, counted), p50, p99, note)


def profile(pool: WorkerPool) -> str:
    """Where the workers' batches spent their time (their own metrics, summed over the workers)."""
    total = {name: pool.total(name) for name in ("ctt_ingest_batch_commit_seconds_sum",
                                                 "ctt_ingest_batch_commit_seconds_count",
                                                 "ctt_ingest_batch_messages_sum", "ctt_geofence_seconds_sum")}
    batches = total["ctt_ingest_batch_commit_seconds_count"] or math.nan
    commit_ms = total["ctt_ingest_batch_commit_seconds_sum"] / batches * 1000
    geofence_ms = total["ctt_geofence_seconds_sum"] / batches * 1000
    per_msg_us = total["ctt_geofence_seconds_sum"] / (total["ctt_ingest_batch_messages_sum"] or math.nan) * 1e6
    return (f"{batches:,.0f} batches of {total['ctt_ingest_batch_messages_sum'] / batches:,.0f} msgs on average, "
            f"{commit_ms:,.1f} ms to write and commit each, of which geofence {geofence_ms:,.1f} ms "
            f"({per_msg_us:,.0f} µs per message)")


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def table(rows: list[Figures]) -> Table:
    t = Table(title="CPU seconds per 1,000,000 messages; throughput in committed messages/s")
    for column in ("run", "workers", "messages", "msgs/s", "ingest", "broker", "postgres", "pg server", "load gen.",
                   "alert p50 ms", "alert p99 ms"):
        t.add_column(column, justify="left" if column == "run" else "right")
    for r in rows:
        cpu = r.cpu_per_million
        t.add_row(r.name, str(r.workers), f"{r.messages:,}", f"{r.rate:,.0f}", f"{cpu['ingest']:,.0f}",
                    f"{cpu['broker']:,.0f}", f"{cpu['postgres']:,.0f}", f"{cpu['postgres server']:,.0f}",
                    f"{cpu['load generator']:,.0f}" if "load generator" in cpu else "",
                    "" if math.isnan(r.p50_ms) else f"{r.p50_ms:,.0f}",
                    "" if math.isnan(r.p99_ms) else f"{r.p99_ms:,.0f}")
    return t


def setup(scale: Scale) -> tuple[str, FleetSpec]:
    ops = OpsSettings()  # created by the administrator, migrated by the owner; ingest connects as ctt_ingest
    url = fresh_database(ops.admin_url(), BENCH_DB, ops.url_for(DB_OWNER))
    spec = FleetSpec(PREFIX, scale.trackers, 2 * (scale.breaches + 1), int(time.time() * 1000) - 3_600_000)
    register_fleet(url, spec)
    provision(spec.seal_ids)
    return url, spec


def idle_cores(postmaster: int, seconds: float = 3.0) -> float:
    """PostgreSQL's CPU while the bench sends nothing: its background work and anyone else's."""
    before, started = tree_cpu(postmaster), time.monotonic()
    time.sleep(seconds)
    return (tree_cpu(postmaster) - before) / (time.monotonic() - started)


def measure(scale: Scale) -> None:
    began = time.monotonic()
    url, spec = setup(scale)
    logs = Path(tempfile.mkdtemp(prefix="ctt-bench-scale-"))
    console.print(f"{spec.trackers:,} in-transit trackers registered; logs in {logs}")
    password = os.environ[PASSWORD_ENV]
    api = ApiServer(url, logs / "api.log").start()
    token = mint(ApiSettings(), "bench-scale", "admin")
    try:
        with Progress(console=console, transient=True) as progress:
            oid = int(scalar(url, "SELECT oid FROM pg_database WHERE datname = current_database()"))
            run = Run(url, scale, spec, password, logs, progress, postmaster_pid(url), oid, clock_ms=spec.t0_ms)
            idle = [idle_cores(run.postmaster)]
            task = progress.add_task("warm-up: a fix from every tracker (not measured)")
            drain(run, 1, 1, scale.trackers, task)
            for array, messages in ((1, scale.backlog), (ARRAY, scale.arrays)):
                for workers in (1, 2):
                    task = progress.add_task(f"drain {messages:,} x {array} fix(es), {workers} worker(s)")
                    run.rows.append(drain(run, workers, array, messages, task))
            for workers in (1, 2):
                task = progress.add_task(f"live fleet {scale.rate:,.0f} msg/s, {workers} worker(s), breaches")
                run.rows.append(live(run, api, token, workers, task))
            api.stop()
            idle.append(idle_cores(run.postmaster))
            task = progress.add_task("failover", total=None)
            failover_s, lost, failover_note = measure_failover(scale.failover_s, password, logs)
            progress.update(task, completed=1)
    finally:
        api.stop()
    out.print(table(run.rows))
    for r in run.rows:
        if r.note:
            print(f"{r.name}, {r.workers} worker(s): {r.note}")
    single = {r.workers: r.rate for r in run.rows if r.name == "drain, single fixes"}
    alert_p99 = max(r.p99_ms for r in run.rows if r.name == "live fleet")
    print(f"failover: {failover_note}")
    print("postgres: the processes of the bench's database and the server-wide writers; pg server: the whole "
          "server, other databases included")
    print(f"PostgreSQL server idle (background work, other databases), before and after: "
          f"{idle[0]:.3f} and {idle[1]:.3f} cores (in the pg server column)")
    print(f"bench took {time.monotonic() - began:.0f} s")
    print(f"workers2_vs_1={single[2] / single[1]:.3f} alert_p99_ms={alert_p99:.0f} failover_s={failover_s:.1f} "
          f"lost={lost if math.isnan(lost) else int(lost)}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trackers and messages: under 4 minutes")
    scale = QUICK if parser.parse_args().quick else FULL
    if PID_ENV in os.environ:  # the child, pointed at the bench's broker
        measure(scale)
        return
    with bench_broker() as broker:
        child = subprocess.run([sys.executable, "-m", "bench.scale", *sys.argv[1:]],
                               env={**os.environ, **broker.env()}, check=False)
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
