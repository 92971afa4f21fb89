"""Ingest throughput against a bare paho subscriber, on the same broker, same run.

(a) bare paho: an MQTT 5 persistent session (same Receive Maximum as ingest)
    drains N queued QoS 1 messages and acknowledges them; it does nothing else.
(b) ingest: the real ``ctt ingest`` process drains the same N messages from its
    own persistent session, validates them and commits them to TimescaleDB.

Both sessions are filled while their consumer is offline, then timed from the
first message received to the last one drained (a) or committed (b).
The last line printed is ``ratio=<ingest msgs/s / bare paho msgs/s>``.
With ``--in-transit`` every device is the tracker of an in-transit shipment,
so the geofence engine evaluates every fix in ingest's transaction; each phase
then also prints the geofence hook's cost per fix inside ingest
(``ctt_geofence_seconds`` sum / fixes committed), and a last phase drives the
hook in-process (ingest's own Store and Alerting, no broker) with batches of one
fix from each of ``--devices`` distinct trackers, the case a large fleet makes.

    .venv/bin/python -m bench.ingest [--quick] [--in-transit] [--devices N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from rich.progress import Progress

from bench import hook
from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from ingest.config import IngestSettings
from protocol.records import Fix, encode
from protocol.topics import SUBSCRIPTIONS
from tests.support import (
    BROKER,
    TEST_INGEST_PASSWORD,
    TEST_INGEST_USER,
    Device,
    IngestProcess,
    provision,
    reset_session,
)

BENCH_DB = "ctt_bench"
PUBLISHERS = 32  # concurrent device connections while filling a session
console = Console(stderr=True)


def bench_database(name: str = BENCH_DB) -> str:
    ops = OpsSettings()  # created by the administrator, migrated by the owner; ingest connects as ctt_ingest
    return fresh_database(ops.admin_url(), name, ops.url_for(DB_OWNER))


class BareSubscriber:
    """The peer: paho with a persistent session, auto-acknowledging, counting."""

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        # The ingest account: the only one allowed to read the fleet. The peer and ingest
        # run one after the other, each with the session emptied first.
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=TEST_INGEST_USER,
                             protocol=MQTTProtocolVersion.MQTTv5)
        client.username_pw_set(TEST_INGEST_USER, TEST_INGEST_PASSWORD)
        client.on_message = self._on_message
        self.client = client

    def _on_message(self, _c: Any, _u: Any, _m: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.count += 1
        self.last = now

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0xFFFFFFFF
        props.ReceiveMaximum = IngestSettings().receive_maximum
        self.client.connect(*BROKER, clean_start=False, properties=props)
        self.client.loop_start()

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(devices: list[str], messages: int, array: int, seq0: int) -> None:
    """Publish ``messages`` QoS 1 messages of ``array`` fixes each, spread over devices."""
    # Each workload's fix times follow the previous one's (an hour per seq0 block), as a tracker's would.
    start = int(time.time() * 1000) - 86_400_000 + seq0 // 10_000_000 * 3_600_000
    per_device = messages // len(devices)

    def run(device_id: str) -> None:
        with Device(device_id) as d:
            infos = []
            for m in range(per_device):
                seq = seq0 + m * array
                fixes = [Fix(seq=seq + k, ts=start + (m * array + k) * 10, lat=-1.2 + k * 1e-5, lon=36.8,
                             spd=62.5, hdg=270.0, acc=5.0, bat=90.0) for k in range(array)]
                infos.append(d.publish("pos", encode(fixes if array > 1 else fixes[0])))
            for info in infos:
                info.wait_for_publish(timeout=120)

    # A thread per publisher up to a bound: with thousands of devices, each connects in turn.
    share = [devices[k::PUBLISHERS] for k in range(min(PUBLISHERS, len(devices)))]
    failed: list[BaseException] = []

    def run_all(ids: list[str]) -> None:
        try:
            for device_id in ids:
                run(device_id)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            failed.append(exc)

    threads = [threading.Thread(target=run_all, args=(ids,)) for ids in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise RuntimeError(f"{len(failed)} publisher threads failed") from failed[0]


def bare_paho_rate(devices: list[str], messages: int, array: int, seq0: int) -> float:
    sub = BareSubscriber()
    reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, ["ctt/v1/dev/+/pos"])
    publish(devices, messages, array, seq0)
    sub.connect()
    deadline = time.monotonic() + 600
    while sub.count < messages and time.monotonic() < deadline:
        time.sleep(0.02)
    sub.disconnect()
    reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, [])
    if sub.count < messages or sub.first is None:
        raise RuntimeError(f"bare subscriber drained {sub.count} of {messages}")
    return (messages - 1) / (sub.last - sub.first)


class Phase(NamedTuple):
    rate: float  # messages/s committed
    fixes: int
    hook_s: float  # ingest's ctt_geofence_seconds over the phase


def ingest_rate(url: str, devices: list[str], messages: int, array: int, seq0: int, log: Path) -> Phase:
    proc = IngestProcess(url, log, CTT_LOG_LEVEL="WARNING")
    reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, list(SUBSCRIPTIONS))
    publish(devices, messages, array, seq0)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM fixes").fetchone()[0]  # type: ignore[index]
        target = before + messages * array
        proc.start()
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                n = conn.execute("SELECT count(*) FROM fixes").fetchone()[0]  # type: ignore[index]
                if n >= target:
                    break
                time.sleep(0.02)
            done_wall = time.time()
            hook_s = proc.metric("ctt_geofence_seconds_sum") or 0.0  # a fresh process each phase
        finally:
            proc.stop()
        first = conn.execute("SELECT extract(epoch FROM min(received_at)) FROM fixes WHERE seq >= %s",
                             (seq0,)).fetchone()[0]  # type: ignore[index]
    if n < target:
        raise RuntimeError(f"ingest committed {n - before} of {messages * array} fixes")
    return Phase(messages / (done_wall - float(first)), messages * array, hook_s)


def register_transit(url: str, devices: list[str]) -> None:
    """A shipment in transit for each device, on a route through where the bench's fixes are."""
    start = int(time.time() * 1000) - 2 * 86_400_000
    office = (("Nairobi ICD", "KENBO", 36.80), ("Thika office", "KETHK", 36.90))
    corners = ((-0.01, -0.01), (0.01, -0.01), (0.01, 0.01), (-0.01, 0.01), (-0.01, -0.01))
    zones = [ZoneSpec(name, "office", tuple((lon + dx, -1.3 + dy) for dx, dy in corners), code)
             for name, code, lon in office]
    route = RouteSpec("bench-route", ((36.80, -1.30), (36.80, -1.10), (36.90, -1.10), (36.90, -1.30)))
    shipments = [ShipmentSpec(f"26BENCH{i:010d}", route.name, d, (), "KENBO", "KETHK", start,
                              start + 30 * 86_400_000) for i, d in enumerate(devices)]
    with psycopg.connect(url) as conn:
        register(conn, Scenario("bench", [], zones, [route], shipments, [], start, start, 15.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N: under a minute")
    parser.add_argument("--messages", type=int, help="single-fix messages (default 200k, quick 30k)")
    parser.add_argument("--in-transit", action="store_true", help="devices are trackers of in-transit shipments")
    parser.add_argument("--devices", type=int, default=20, help="distinct devices (default 20)")
    parser.add_argument("--hook-only", action="store_true", help="with --in-transit: only the in-process hook phase")
    parser.add_argument("--batches", type=int, default=101,
                        help="hook phase: batches of one fix per tracker (default 101: the last 10 with full windows)")
    parser.add_argument("--profile", type=Path, help="hook phase: write cProfile stats of the steady batches here")
    parser.add_argument("--database", default=BENCH_DB, help=f"database to create afresh (default {BENCH_DB})")
    parser.add_argument("--reuse", action="store_true",
                        help="with --hook-only: keep the database and shipments of the last run with these --devices")
    args = parser.parse_args()
    n_single = args.messages or (30_000 if args.quick else 200_000)
    n_arrays = max(200, n_single // 50)
    reuse = args.reuse and args.hook_only
    url = OpsSettings().url_for(DB_OWNER, database=args.database) if reuse else bench_database(args.database)
    width = max(3, len(str(args.devices - 1)))
    devices = [f"bench{args.devices}-{i:0{width}d}" for i in range(args.devices)]
    if args.in_transit and not reuse:
        t0 = time.perf_counter()
        register_transit(url, devices)
        print(f"registered {len(devices)} in-transit shipments in {time.perf_counter() - t0:.1f} s")
    if not args.hook_only:
        broker_phases(url, devices, n_single, n_arrays, args.in_transit)
    if args.in_transit:
        cost = hook.measure(url, devices, args.batches, args.profile)
        print(f"geofence hook in-process, {args.batches} batches of one fix from each of {cost.trackers} trackers:")
        print(f"  first batch (cold)    {cost.first_us:10.1f} us/fix")
        print(f"  states of a few fixes {cost.short_us:10.1f} us/fix")
        print(f"  full windows          {cost.full_us:10.1f} us/fix   (batch commit {cost.full_batch_s * 1000:.0f} ms, "
              f"{cost.context:.0f} fixes per state)")
        print(f"hook_us_per_fix={cost.full_us:.1f} trackers={cost.trackers}")
    sys.stdout.flush()


def broker_phases(url: str, devices: list[str], n_single: int, n_arrays: int, in_transit: bool) -> None:
    provision(devices)
    log = Path("/tmp/ctt-bench-ingest.log")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmark", total=4)
        paho_single = bare_paho_rate(devices, n_single, 1, 0)
        progress.advance(task)
        ours_single = ingest_rate(url, devices, n_single, 1, 0, log)
        progress.advance(task)
        paho_arrays = bare_paho_rate(devices, n_arrays, 50, 10_000_000)
        progress.advance(task)
        ours_arrays = ingest_rate(url, devices, n_arrays, 50, 10_000_000, log)
        progress.advance(task)
    print(f"single-fix messages: N={n_single} from {len(devices)} devices")
    print(f"  bare paho drain      {paho_single:10.0f} msgs/s")
    print(f"  ingest commit        {ours_single.rate:10.0f} msgs/s{_hook(ours_single, in_transit)}")
    print(f"arrays of 50 fixes: N={n_arrays} messages ({n_arrays * 50} fixes)")
    print(f"  bare paho drain      {paho_arrays:10.0f} msgs/s ({paho_arrays * 50:.0f} fixes/s)")
    print(f"  ingest commit        {ours_arrays.rate:10.0f} msgs/s ({ours_arrays.rate * 50:.0f} fixes/s)"
          f"{_hook(ours_arrays, in_transit)}")
    print(f"ratio_arrays={ours_arrays.rate / paho_arrays:.3f} fixes_per_s_arrays={ours_arrays.rate * 50:.0f}")
    print(f"ratio={ours_single.rate / paho_single:.3f}")


def _hook(phase: Phase, in_transit: bool) -> str:
    return f"   geofence hook {phase.hook_s / phase.fixes * 1e6:.1f} us/fix" if in_transit else ""


if __name__ == "__main__":
    main()
