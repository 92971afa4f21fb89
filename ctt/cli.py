"""``ctt``: one command line for the whole backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ctt import logs
from ctt.config import REPO_ROOT, OpsSettings

if TYPE_CHECKING:
    from firmware_sim.runner import SimStats

app = typer.Typer(help="Cargo track-and-trace backend.", no_args_is_help=True, add_completion=False)
devices_app = typer.Typer(help="Device accounts on the broker.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
console = Console(stderr=True)


@app.callback()
def main(log_level: Annotated[str, typer.Option(envvar="CTT_LOG_LEVEL")] = "INFO") -> None:
    logs.configure(log_level)


@app.command()
def services(test_tools: Annotated[bool, typer.Option(help="Also install test tools.")] = False) -> None:
    """Install what is missing and start PostgreSQL+TimescaleDB and Mosquitto (idempotent)."""
    cmd = ["bash", str(REPO_ROOT / "deploy" / "services.sh")] + (["--test-tools"] if test_tools else [])
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations (a no-op when up to date)."""
    from ctt.migrate import migrate as run_migrations

    applied = run_migrations(OpsSettings().database_url)
    for m in applied:
        console.print(f"applied {m.version:03d}_{m.name}")
    if not applied:
        console.print("schema is up to date")


@app.command()
def retention(
    keep_days: Annotated[int, typer.Option(min=1, help="Keep records whose fix time is newer than this.")] = 400,
) -> None:
    """Drop whole chunks of records older than --keep-days (TimescaleDB drop_chunks).

    Run it daily from cron or a systemd timer; the Apache-licensed TimescaleDB
    has no background retention policy.
    """
    import psycopg

    with psycopg.connect(OpsSettings().database_url, autocommit=True) as conn:
        for table in ("fixes", "seal_events", "device_status"):
            dropped = conn.execute("SELECT drop_chunks(%s::regclass, older_than => %s * interval '1 day')",
                                   (table, keep_days)).fetchall()
            console.print(f"{table}: dropped {len(dropped)} chunks older than {keep_days} days")


@app.command()
def ingest() -> None:
    """Run the MQTT ingest service until SIGINT/SIGTERM."""
    from prometheus_client import start_http_server

    from ingest.config import IngestSettings
    from ingest.pipeline import run_service

    settings = IngestSettings()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    stop = _stop_on_signals()
    run_service(settings, stop)


@devices_app.command("provision")
def provision(
    ids: Annotated[list[str] | None, typer.Argument(help="Device ids.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Generate ids PREFIX-00000...")] = None,
    count: Annotated[int, typer.Option(help="How many ids to generate with --prefix.")] = 0,
    show_passwords: Annotated[bool, typer.Option(help="Print id and password per line.")] = False,
) -> None:
    """Give devices broker accounts (password derived from the provisioning secret)."""
    from ctt.broker_auth import device_password, provision_devices, reload_broker

    settings = OpsSettings()
    device_ids = list(ids or []) + [f"{prefix}-{i:05d}" for i in range(count)] if prefix else list(ids or [])
    if not device_ids:
        raise typer.BadParameter("give device ids or --prefix with --count")
    changed = provision_devices(settings.broker_password_file, settings.provisioning_secret, device_ids)
    if changed:
        reload_broker(settings.broker_pid_file)
    if show_passwords:
        for d in device_ids:
            print(d, device_password(settings.provisioning_secret, d))
    console.print(f"{len(device_ids)} devices provisioned ({'updated' if changed else 'unchanged'})")


@app.command()
def sim(
    trucks: Annotated[int, typer.Option(help="Trucks (each with a tracker and e-seals).")] = 20,
    duration: Annotated[float, typer.Option(help="Simulated duration, hours.")] = 2.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    interval: Annotated[float, typer.Option(help="Tracker reporting interval, seconds.")] = 15.0,
    seals: Annotated[int, typer.Option(help="E-seals per truck.")] = 1,
    noise: Annotated[float, typer.Option(help="GPS error sigma, metres.")] = 8.0,
    gaps: Annotated[int, typer.Option(help="Coverage gaps per truck.")] = 1,
    seed: Annotated[int, typer.Option()] = 7,
    prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
) -> None:
    """Drive simulated trucks over MQTT (provisions their broker accounts first)."""
    stats = run_sim(trucks, duration, speedup, interval, seals, noise, gaps, seed, prefix, _stop_on_signals())
    console.print(
        f"published {stats.messages} messages ({stats.records} records); "
        f"still buffered on devices: {stats.buffered}; lost to full buffers: {stats.overflowed}"
    )


def run_sim(trucks: int, duration_h: float, speedup: float, interval_s: float, seals: int, noise_m: float,
            gaps: int, seed: int, prefix: str, stop: threading.Event) -> SimStats:
    from ctt.broker_auth import device_password, provision_devices, reload_broker
    from firmware_sim.config import SimSettings
    from firmware_sim.corridors import CORRIDORS
    from firmware_sim.devices import GpsNoise
    from firmware_sim.fleet import FleetSpec, build_fleet
    from firmware_sim.link import Link
    from firmware_sim.runner import SimClock, Simulation

    ops, settings = OpsSettings(), SimSettings()
    duration_s = duration_h * 3600
    clock = SimClock.ending_now(duration_s, speedup)
    spec = FleetSpec(trucks=trucks, interval_s=interval_s, seals_per_truck=seals, noise=GpsNoise(noise_m),
                     gaps_per_truck=gaps, prefix=prefix, seed=seed)
    fleet = build_fleet(CORRIDORS[settings.corridor], spec, clock.start_ms, duration_s)
    ids = [d.device_id for d in fleet]
    if provision_devices(ops.broker_password_file, settings.provisioning_secret, ids):
        reload_broker(ops.broker_pid_file)
        time.sleep(0.5)  # let the broker re-read its password file

    def link_for(device_id: str) -> Link:
        password = device_password(settings.provisioning_secret, device_id)
        return Link(device_id, password, settings.broker_host, settings.broker_port)

    simulation = Simulation(fleet, clock, clock.start_ms + int(duration_s * 1000), link_for)
    total = int(duration_s)
    with Progress(TextColumn("[bold]sim"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=total)

        def report(s: SimStats) -> None:
            when = datetime.fromtimestamp(s.sim_ms / 1000, UTC).strftime("%H:%M")
            progress.update(task, completed=min(total, (s.sim_ms - clock.start_ms) / 1000),
                            description=f"{when}Z {s.messages} msgs {s.records} recs "
                                        f"{s.connected}/{len(fleet)} online {s.buffered} buffered")

        return simulation.run(stop, report)


@app.command()
def demo(
    trucks: Annotated[int, typer.Option()] = 40,
    duration: Annotated[float, typer.Option(help="Simulated hours.")] = 6.0,
    speedup: Annotated[float, typer.Option()] = 30.0,
) -> None:
    """Services, migrations, ingest and the simulator together, until Ctrl-C."""
    if subprocess.call(["bash", str(REPO_ROOT / "deploy" / "services.sh")]) != 0:
        raise typer.Exit(1)
    migrate()
    stop = _stop_on_signals()
    ingest_proc = subprocess.Popen([sys.executable, "-m", "ctt.cli", "ingest"], env=os.environ.copy())
    try:
        console.print(f"ingest running (pid {ingest_proc.pid}); metrics on http://127.0.0.1:9108/metrics")
        run_sim(trucks, duration, speedup, 15.0, 1, 8.0, 1, 7, "demo", stop)
        if not stop.is_set():
            console.print("simulation finished; ingest keeps running until Ctrl-C")
            stop.wait()
    finally:
        ingest_proc.send_signal(signal.SIGTERM)
        ingest_proc.wait(timeout=30)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


if __name__ == "__main__":
    app()
