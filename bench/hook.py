"""The geofence hook in-process: ingest's own ``Store`` and ``Alerting`` (the
pipeline's code, no broker) on batches of one fix from each of many in-transit
trackers, the batch a large fleet makes; timed per fix.

The first batch is every tracker's first fix (no saved state: each is replayed
from departure; numba compiles on first use). Then each tracker's state grows
by a fix a batch until its stop detector's window holds the last 15 minutes of
fixes (90 at one fix every 10 s), where a moving truck's state stays: the
figures are the median batch over the first few (short windows) and over the
last ``FULL`` batches once the windows are full (the steady state of a fleet).
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ctt.config import DB_INGEST
from geofence.state import DeviceState
from ingest.acks import AckTracker
from ingest.alerting import Alerting
from ingest.batch import Batch
from ingest.config import IngestSettings
from ingest.messages import parse_message
from ingest.store import Store
from protocol.records import Fix, encode
from tests.support import as_role

FIX_EVERY_MS = 10_000  # one fix per tracker every 10 s
FULL = 10  # batches measured once the windows are full
SHORT = 5  # batches measured after the first
LAT0, LON0 = -1.298, 36.80  # the first leg of bench.ingest's route runs north from here
STEP_DEG = 0.0015  # ~170 m: 60 km/h for 10 s


@dataclass(frozen=True)
class HookCost:
    trackers: int
    first_us: float  # per fix, the batch of first fixes (replays from departure)
    short_us: float  # per fix, median over the SHORT batches after the first (states of a few fixes)
    full_us: float  # per fix, median over the last FULL batches (nothing else when too few batches)
    full_batch_s: float  # median whole-batch commit time of the last FULL batches
    context: float  # mean fixes per state at the end


class _Sent:
    """A publication handed over at once (the bench publishes nothing)."""

    def is_published(self) -> bool:
        return True


def _batch(devices: list[str], step: int, start_ms: int, seq0: int) -> Batch:
    now_ms = int(time.time() * 1000)
    batch = Batch()
    ts = start_ms + step * FIX_EVERY_MS
    along = (ts // FIX_EVERY_MS) % 100 * STEP_DEG  # back to the start every 100 fixes: the leg is ~22 km
    for i, device_id in enumerate(devices):
        fix = Fix(seq=seq0 + step, ts=ts, lat=LAT0 + (i % 1000) * 1.5e-5 + along, lon=LON0, spd=60.0, hdg=0.0,
                  acc=5.0, bat=90.0)
        batch.add(parse_message(f"ctt/v1/dev/{device_id}/pos", encode(fix), now_ms), now_ms)
    return batch


def measure(url: str, devices: list[str], batches: int, profile: Path | None = None) -> HookCost:
    """Commit ``batches`` batches of one fix per device through Store.write with the
    alerting hook; the hook's time per fix. ``profile``: cProfile stats of the later
    batches' hooks, written there (pstats format) and summarised on stderr."""
    settings = IngestSettings()
    store = Store(as_role(url, DB_INGEST))
    alerting = Alerting(settings.rules(), lambda _topic, _payload: _Sent(), settings.suspect_seq_jump)
    acks = AckTracker()
    profiler = cProfile.Profile() if profile else None
    with psycopg.connect(url) as conn:  # after what earlier phases or runs stored
        row = conn.execute("SELECT max(seq), (extract(epoch FROM max(ts)) * 1000)::int8 FROM fixes").fetchone()
    seq0 = 20_000_000 if row is None or row[0] is None else int(row[0]) + 1
    start_ms = int(time.time() * 1000) - 3_600_000
    if row is not None and row[1] is not None:
        start_ms = max(start_ms, int(row[1]) + FIX_EVERY_MS)
    hook_s: list[float] = []
    states: dict[str, DeviceState] = {}
    batch_s: list[float] = []
    try:
        for step in range(batches):
            batch = _batch(devices, step, start_ms, seq0)
            spent = [0.0]

            def hook(cur: psycopg.Cursor[Any], fixes: set[tuple[str, int]], seals: set[tuple[str, int]],
                     stale: frozenset[str], batch: Batch = batch, spent: list[float] = spent,
                     step: int = step) -> Any:
                t0 = time.perf_counter()
                if profiler is not None and step > 0:
                    profiler.enable()
                try:
                    return alerting.on_batch(cur, batch, fixes, seals, stale)
                finally:
                    if profiler is not None:
                        profiler.disable()
                    spent[0] = time.perf_counter() - t0

            t0 = time.perf_counter()
            _advanced, outcome = store.write(batch, acks, hook)
            batch_s.append(time.perf_counter() - t0)
            if outcome is None:
                raise RuntimeError("the geofence hook failed; see the log")
            alerting.adopt(outcome)
            states = outcome.states
            hook_s.append(spent[0])
    finally:
        store.close()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        pstats.Stats(str(profile), stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    n = len(devices)
    context = statistics.mean(s.n_context for s in states.values())
    return HookCost(n, hook_s[0] / n * 1e6, statistics.median(hook_s[1:1 + SHORT]) / n * 1e6,
                    statistics.median(hook_s[-FULL:]) / n * 1e6, statistics.median(batch_s[-FULL:]), context)
