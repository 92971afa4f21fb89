"""Helpers of the multi-worker tests (tests/ingest/test_workers.py): a pool of ``ctt ingest``
workers sharing the device topics, a chaos thread that ``kill -9``s them, and a fleet of
devices (each with its own credentials, over TLS) whose records are the ground truth.

Each pool has a share group and worker ids of its own, so that sessions other runs left on
the tests' broker (offline, still subscribed) never take a share of this run's messages.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.client import MQTTMessageInfo

from protocol.records import Fix, SealEvent, SealEventName, Status, encode
from tests.support import (
    TEST_INGEST_PASSWORD,
    TEST_INGEST_USER,
    Device,
    IngestProcess,
    execute,
    provision,
    reset_session,
    unique_prefix,
)

LEADER_METRIC = "ctt_ingest_leader"
COMMITTED_METRIC = 'ctt_ingest_messages_total{kind="pos"}'


class WorkerPool:
    """``size`` ingest workers (``CTT_WORKER_ID`` = ``<group>-w<i>``) in one share group."""

    def __init__(self, database_url: str, log_dir: Path, size: int, **env: str) -> None:
        self.database_url = database_url
        self.group = unique_prefix("grp")
        self.ids = [f"{self.group}-w{i + 1}" for i in range(size)]
        self.workers = [IngestProcess(database_url, log_dir / f"{worker_id}.log", CTT_WORKER_ID=worker_id,
                                      CTT_SHARE_GROUP=self.group, **env) for worker_id in self.ids]
        self._lock = threading.Lock()  # kill/restart from the chaos thread vs. the test's reads
        # Per worker, the most position messages it was seen to have committed in one life.
        self.committed = [0.0] * size

    @property
    def client_ids(self) -> list[str]:
        """The workers' MQTT client ids: each names its persistent session."""
        return [f"{TEST_INGEST_USER}-{worker_id}" for worker_id in self.ids]

    def start(self) -> WorkerPool:
        """Start every worker at once and wait until each is connected to the broker."""
        self._forget_sessions()
        with ThreadPoolExecutor(len(self.workers)) as pool:
            list(pool.map(IngestProcess.start, self.workers))
        return self

    def stop(self) -> None:
        """Decommission the pool: stop every worker (SIGTERM), remove their sessions from the
        broker and their rows from ``ingest_workers``. A worker stopped for good but still in
        the register counts as lagging (its session may hold fixes) and holds signal_lost back
        for CTT_WORKER_EXPIRY_S; the next test's pool must not wait for this one's."""
        with ThreadPoolExecutor(len(self.workers)) as pool:
            list(pool.map(IngestProcess.stop, self.workers))
        self._forget_sessions()
        execute(self.database_url, "DELETE FROM ingest_workers WHERE worker_id = ANY(%s)", (self.ids,))

    def _forget_sessions(self) -> None:
        for client_id in self.client_ids:
            reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, [], client_id=client_id)

    def kill(self, index: int) -> None:
        """``kill -9`` one worker (its session stays on the broker, collecting its share)."""
        self.note_committed(index)
        with self._lock:
            self.workers[index].kill()

    def note_committed(self, index: int) -> None:
        """Remember what the worker has committed so far (its counters restart with it)."""
        self.committed[index] = max(self.committed[index], self.metric(index, COMMITTED_METRIC) or 0.0)

    def restart(self, index: int) -> None:
        """Start a killed worker again under the same id: it resumes its own session."""
        self.workers[index].start()

    def metric(self, index: int, name: str) -> float | None:
        """A worker's metric; None while it is down or its endpoint does not answer."""
        with self._lock:
            worker = self.workers[index]
            if worker.proc is None or worker.proc.poll() is not None:
                return None
            return worker.metric(name)

    def leaders(self) -> list[int]:
        """Indices of the workers whose ``ctt_ingest_leader`` gauge is 1."""
        return [i for i in range(len(self.workers)) if self.metric(i, LEADER_METRIC) == 1.0]

    def total(self, name: str) -> float:
        """A metric summed over the workers that are up (counters restart from 0 with a worker)."""
        return sum(self.metric(i, name) or 0.0 for i in range(len(self.workers)))

    def log_tail(self, lines: int = 40) -> str:
        """The end of each worker's log, for an assertion message."""
        parts = []
        for worker in self.workers:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            parts.append(f"--- {worker.log_path}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


@contextmanager
def running(pool: WorkerPool) -> Iterator[WorkerPool]:
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@dataclass
class Chaos:
    """``kill -9`` a random worker ``kills`` times, ``every_s`` apart, and start it again after
    ``down_s`` (while down, the broker queues its share in its session)."""

    pool: WorkerPool
    kills: int
    every_s: float
    down_s: float
    seed: int = 7
    killed: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, worker index)
    error: Exception | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="chaos")

    def start(self) -> Chaos:
        self._thread.start()
        return self

    def _run(self) -> None:
        rng = random.Random(self.seed)
        try:
            for _ in range(self.kills):
                if self._stop.wait(self.every_s):
                    return
                index = rng.randrange(len(self.pool.workers))
                self.pool.kill(index)
                self.killed.append((time.monotonic(), index))
                time.sleep(self.down_s)
                self.pool.restart(index)
        except (AssertionError, OSError) as exc:  # reported by join(): a failed restart fails the test
            self.error = exc

    def join(self, timeout: float) -> None:
        """Wait for the remaining kills and restarts; re-raise what failed in the thread."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the chaos thread did not finish"
        if self.error is not None:
            raise AssertionError(f"chaos: {self.error}") from self.error


# ------------------------------------------------------------------------------- the fleet

SEAL_EVENTS: tuple[SealEventName, ...] = ("armed", "closed", "low_battery")


@dataclass
class DevicePlan:
    """What one device sends (``messages``, in publishing order, duplicates included) and the
    unique records among them: the ground truth the database must hold."""

    device_id: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    fixes: dict[int, Fix] = field(default_factory=dict)
    seals: set[int] = field(default_factory=set)
    statuses: set[tuple[int, str]] = field(default_factory=set)  # (ts ms, state)

    @property
    def max_seq(self) -> int:
        return max(*self.fixes, *self.seals)

    def newest_fix(self) -> Fix:
        """The fix ``latest_positions`` must hold: the newest by (ts, seq)."""
        return max(self.fixes.values(), key=lambda f: (f.ts, f.seq))


def plan_device(device_id: str, records: int, rng: random.Random, base_ms: int) -> DevicePlan:
    """``records`` records (seq 0 … records-1; fixes and about 10 % seal events) sent as single
    messages and, for about a third of them, as backlog arrays of up to 50 records in shuffled
    order that arrive after later live records; 5 % of messages sent twice; three statuses.

    Fix times go up a second a seq, with ties (the seq decides), and about one device in four
    ends with a fix timed before all the others (a clock reset): its latest position is not
    its last fix."""
    plan = DevicePlan(device_id)
    made = [_record(device_id, seq, base_ms, rng) for seq in range(records)]
    if rng.random() < 0.25 and isinstance(made[-1], Fix):
        made[-1] = Fix(seq=made[-1].seq, ts=base_ms - 60_000, lat=made[-1].lat, lon=made[-1].lon)
    for record in made:
        if isinstance(record, Fix):
            plan.fixes[record.seq] = record
        else:
            plan.seals.add(record.seq)
    keyed: list[tuple[float, tuple[str, bytes]]] = []
    cursor = 0
    while cursor < records:
        size = rng.randint(2, 50) if rng.random() < 0.03 else 1
        segment = made[cursor : cursor + size]
        # A backlog arrives after some later live records (the device was out of coverage).
        at = cursor + (rng.uniform(1, 30) if size > 1 else 0.0)
        keyed.extend((at, message) for message in _messages(segment, rng))
        cursor += size
    keyed.extend((rng.uniform(0, records + 30), message) for _, message in rng.sample(keyed, len(keyed) // 20))
    for _ in range(3):
        status = Status(ts=base_ms + rng.randrange(records * 1000), state=rng.choice(("online", "offline")), bat=50.0)
        plan.statuses.add((status.ts, status.state))
        keyed.append((rng.uniform(0, records), ("status", encode(status))))
    keyed.sort(key=lambda item: item[0])
    plan.messages = [message for _, message in keyed]
    return plan


def _record(device_id: str, seq: int, base_ms: int, rng: random.Random) -> Fix | SealEvent:
    ts = base_ms + (seq - (seq % 3 == 2)) * 1000  # every third fix shares its time with the one before
    lat, lon = round(rng.uniform(-4.0, 1.0), 6), round(rng.uniform(29.0, 40.0), 6)
    if rng.random() < 0.1:
        return SealEvent(seq=seq, ts=ts, seal_id=device_id, event=rng.choice(SEAL_EVENTS), lat=lat, lon=lon)
    return Fix(seq=seq, ts=ts, lat=lat, lon=lon, spd=round(rng.uniform(0, 90), 1), acc=8.0)


def _messages(segment: list[Fix | SealEvent], rng: random.Random) -> list[tuple[str, bytes]]:
    """One message per record, or for a backlog one array per kind in shuffled order."""
    if len(segment) == 1:
        return [("pos" if isinstance(segment[0], Fix) else "seal", encode(segment[0]))]
    out = []
    for kind, cls in (("pos", Fix), ("seal", SealEvent)):
        of_kind = [r for r in segment if isinstance(r, cls)]
        rng.shuffle(of_kind)
        if of_kind:
            out.append((kind, encode(of_kind if len(of_kind) > 1 else of_kind[0])))
    return out


class Fleet:
    """The planned devices, each connected with its own credentials on the TLS listeners."""

    def __init__(self, plans: list[DevicePlan]) -> None:
        self.plans = plans
        self.devices: list[Device] = []

    @classmethod
    def planned(cls, prefix: str, devices: int, records: int, seed: int) -> Fleet:
        """``devices`` devices (half with a certificate, half with a secret) of ``records`` records."""
        rng = random.Random(seed)
        base_ms = int(time.time() * 1000) - 3_600_000
        ids = [f"{prefix}-{i:03d}" for i in range(devices)]
        provision(ids[::2], "certificate")
        provision(ids[1::2], "secret")
        return cls([plan_device(d, records, rng, base_ms) for d in ids])

    @property
    def message_count(self) -> int:
        return sum(len(p.messages) for p in self.plans)

    def __enter__(self) -> Fleet:
        with ThreadPoolExecutor(16) as pool:
            self.devices = list(pool.map(lambda p: Device(p.device_id).__enter__(), self.plans))
        return self

    def __exit__(self, *_exc: object) -> None:
        for device in self.devices:
            device.__exit__(None, None, None)

    def publish(self, rate_per_s: float) -> None:
        """Publish every device's messages, devices interleaved, at ``rate_per_s`` in all;
        return once the broker has acknowledged each (PUBACK)."""
        queues = [[(d, m) for m in p.messages] for d, p in zip(self.devices, self.plans, strict=True)]
        order = [q[n] for n in range(max(map(len, queues))) for q in queues if n < len(q)]
        infos: list[MQTTMessageInfo] = []
        start = time.monotonic()
        for n, (device, (kind, payload)) in enumerate(order):
            infos.append(device.publish(kind, payload))
            ahead = n / rate_per_s - (time.monotonic() - start)
            if ahead > 0.01:
                time.sleep(ahead)
        for info in infos:
            info.wait_for_publish(timeout=60)

    def acked(self) -> dict[str, int]:
        """Per device, the highest ack it received (firmware keeps the maximum: acks are monotone)."""
        return {d.device_id: max(d.acks, default=-1) for d in self.devices}

    def retained_acks(self) -> dict[str, int]:
        """Per device, the ack a reconnecting device learns first (the retained one); -1: none."""
        def reconnect(device_id: str) -> int:
            with Device(device_id) as device:
                deadline = time.monotonic() + 5
                while not device.acks and time.monotonic() < deadline:
                    time.sleep(0.05)
                return device.acks[0] if device.acks else -1

        with ThreadPoolExecutor(16) as pool:
            return dict(zip([p.device_id for p in self.plans],
                            pool.map(reconnect, [p.device_id for p in self.plans]), strict=True))

    def ack_shortfall(self) -> int:
        """Records not yet covered by their device's highest ack, over the fleet."""
        acked = self.acked()
        return sum(p.max_seq - acked[p.device_id] for p in self.plans)

    def unacked(self) -> dict[str, tuple[int, int]]:
        """Devices whose highest ack is not yet their highest seq: (ack, highest seq)."""
        acked = self.acked()
        return {p.device_id: (acked[p.device_id], p.max_seq) for p in self.plans
                if acked[p.device_id] != p.max_seq}


def wait_progress(remaining: Callable[[], int], stall_s: float, timeout: float, what: str) -> None:
    """Wait until ``remaining()`` is 0; fail as soon as it has not gone down for ``stall_s``
    (a stuck ack fails in seconds, not at the timeout), or after ``timeout``."""
    start = last_change = time.monotonic()
    best = remaining()
    while best > 0:
        now = time.monotonic()
        if now - last_change > stall_s or now - start > timeout:
            raise AssertionError(f"{what}: {best} left, no progress for {now - last_change:.0f} s")
        time.sleep(0.5)
        left = remaining()
        if left < best:
            best, last_change = left, time.monotonic()
