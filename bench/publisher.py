"""The scale bench's load generator, a process of its own so that its CPU is measured
apart and its interpreter lock never delays the bench's timing of alerts:

    python -m bench.publisher < job.json   (secret in $CTT_BENCH_FLEET_PASSWORD)

One MQTT 5 connection over TLS as the bench account (``bench/account.py`` says why)
publishes the fleet's position messages with QoS 1: a backlog as fast as the broker
acknowledges it (``rate`` 0), or a live fleet at ``rate`` messages/s, every fix timed now.
Prints one JSON line: messages sent, refused by the broker, seconds, own CPU seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.account import ACCOUNT, PASSWORD_ENV
from bench.fleet import FleetSpec, Schedule
from ctt.config import REPO_ROOT
from firmware_sim.link import Credentials
from protocol.records import encode
from protocol.topics import record_topic
from tests.support import BROKER_SECRET, TEST_BROKER

WINDOW = 20_000  # unacknowledged publishes at most: paho's packet ids are 16 bits


class Job(msgspec.Struct, frozen=True):
    spec: FleetSpec
    array: int  # fixes per message
    seq0: int  # each tracker's first seq
    clock_ms: int  # a backlog's first fix time (a live fleet's fixes are timed now)
    messages: int  # a backlog's size; a live fleet sends rate * duration_s
    rate: float = 0.0  # messages/s; 0: a backlog, as fast as the broker takes it
    duration_s: float = 0.0


class Report(msgspec.Struct, frozen=True):
    sent: int
    refused: int
    seconds: float
    cpu_s: float


class _Acks:
    def __init__(self) -> None:
        self.count = 0
        self.refused = 0
        self.connected = threading.Event()

    def on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self.connected.set()

    def on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        self.count += 1
        self.refused += reason.is_failure


def _client(password: str, acks: _Acks) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ACCOUNT, protocol=MQTTProtocolVersion.MQTTv5)
    Credentials(ca_file=TEST_BROKER.pki.ca_cert, password=password).apply(client, ACCOUNT)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_connect = acks.on_connect
    client.on_publish = acks.on_publish
    client.connect(*BROKER_SECRET, keepalive=30)
    client.loop_start()
    if not acks.connected.wait(15):
        raise ConnectionError(f"{ACCOUNT} could not connect to {BROKER_SECRET}")
    return client


def run(job: Job, password: str) -> Report:
    schedule = Schedule(job.spec, job.array, job.seq0, job.clock_ms)
    total = int(job.rate * job.duration_s) if job.rate else job.messages
    acks = _Acks()
    client = _client(password, acks)
    start = time.monotonic()
    for m in range(total):
        if job.rate:
            ahead = start + m / job.rate - time.monotonic()
            if ahead > 0.002:
                time.sleep(ahead)
        while m - acks.count >= WINDOW:
            time.sleep(0.001)
        device, payload = schedule.live(m, int(time.time() * 1000)) if job.rate else schedule.message(m)
        client.publish(record_topic(device, "pos"), encode(payload), qos=1)
    deadline = time.monotonic() + 120
    while acks.count < total and time.monotonic() < deadline:
        time.sleep(0.01)
    seconds = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    cpu = os.times()
    return Report(sent=acks.count, refused=acks.refused, seconds=seconds, cpu_s=cpu.user + cpu.system)


@contextmanager
def running(job: Job, password: str) -> Iterator[subprocess.Popen[bytes]]:
    """``job`` in a load generator process of its own; :func:`report` waits for its figures.
    Killed on the way out if it is still running (the bench failed meanwhile)."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.publisher"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, PASSWORD_ENV: password}, cwd=REPO_ROOT)
    try:
        assert proc.stdin is not None
        proc.stdin.write(msgspec.json.encode(job))
        proc.stdin.close()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def report(proc: subprocess.Popen[bytes], timeout: float = 600) -> Report:
    """The generator's figures once it is done; raises if it failed or the broker refused any publish."""
    assert proc.stdout is not None
    out = proc.stdout.read()  # its one line, at its end
    proc.wait(timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator exited with {proc.returncode}")
    figures = msgspec.json.decode(out.splitlines()[-1], type=Report)
    if figures.refused:
        raise RuntimeError(f"the broker refused {figures.refused} of {figures.sent} publishes: "
                           "is the bench account's ACL block still in its acl file?")
    return figures


def publish(job: Job, password: str) -> Report:
    """Run ``job`` to its end."""
    with running(job, password) as proc:
        return report(proc)


def main() -> None:
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)
    report = run(job, os.environ[PASSWORD_ENV])
    sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")


if __name__ == "__main__":
    main()
