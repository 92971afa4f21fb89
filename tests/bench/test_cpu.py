"""bench/cpu.py: which PostgreSQL processes work for the bench's database, and /proc readings."""

from __future__ import annotations

import os
import time

import pytest

from bench.cpu import ProcessGoneError, process_cpu, works_for

DB, OID = "ctt_bench_scale", 4242


@pytest.mark.parametrize(("title", "counted"), [
    ("postgres: 15/main: ctt_ingest ctt_bench_scale 127.0.0.1(51070) idle", True),
    ("postgres: 15/main: autovacuum worker ctt_bench_scale", True),
    ("postgres: 15/main: TimescaleDB Background Worker Scheduler for database 4242", True),
    ("postgres: 15/main: checkpointer", True),
    ("postgres: 15/main: walwriter", True),
    # Another engineer's database, even one whose name starts like ours, and other databases' workers.
    ("postgres: 15/main: ctt_ingest ctt_bench_scale_ha 127.0.0.1(41302) INSERT", False),
    ("postgres: 15/main: ctt_ingest ctt_test_workers 127.0.0.1(41302) idle", False),
    ("postgres: 15/main: TimescaleDB Background Worker Scheduler for database 42420", False),
    ("postgres: 15/main: autovacuum launcher", False),
])
def test_processes_of_the_bench_database(title: str, counted: bool) -> None:
    assert works_for(title, DB, OID) is counted


def test_process_cpu_counts_this_process_and_refuses_a_gone_one() -> None:
    before = process_cpu(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert process_cpu(os.getpid()) - before >= 0.1
    with pytest.raises(ProcessGoneError, match="is gone"):
        process_cpu(2**22 + 1)
