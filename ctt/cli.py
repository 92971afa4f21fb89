"""``ctt``: one command line for the whole backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ctt import countries, time_release
from ctt.config import DB_API, DB_INGEST, REPO_ROOT, LocalSettings, OpsSettings
from ctt_common import logs
from ctt_common.settings import ServiceSettings

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow

    from firmware_sim.devices import Device
    from firmware_sim.runner import SimStats
    from tracking_api.auth import Principal
    from tracking_api.schemas.shipments import Action

T = TypeVar("T")

app = typer.Typer(help="Cargo track-and-trace backend.", no_args_is_help=True, add_completion=False)
devices_app = typer.Typer(help="Device accounts on the broker.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
shipments_app = typer.Typer(help="Shipments, as POST /shipments and its lifecycle steps do it (validated, audited).",
                            no_args_is_help=True)
app.add_typer(shipments_app, name="shipments")
declarations_app = typer.Typer(help="Transit declarations, as POST/PUT /declarations do it (validated, audited).",
                               no_args_is_help=True)
app.add_typer(declarations_app, name="declarations")
app.add_typer(countries.app, name="countries")
console = Console(stderr=True)


@app.callback()
def main(log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR; default CTT_LOG_LEVEL "
                                                                "or INFO")] = None) -> None:
    from pydantic import ValidationError

    try:
        logs.configure(log_level or ServiceSettings().log_level)  # every command: no secret needed
    except (ValidationError, ValueError) as exc:  # the message names the bad value
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


@app.command()
def services(test_tools: Annotated[bool, typer.Option(help="Also install test tools.")] = False) -> None:
    """Install what is missing and start PostgreSQL+TimescaleDB and Mosquitto (idempotent)."""
    cmd = ["bash", str(REPO_ROOT / "deploy" / "services.sh")] + (["--test-tools"] if test_tools else [])
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations (a no-op when up to date)."""
    from ctt.migrate import MigrationError
    from ctt.migrate import migrate as run_migrations

    try:
        applied = run_migrations(LocalSettings().database_url)  # the owner; holds no other secret (compose)
    except MigrationError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    for m in applied:
        console.print(f"applied {m.version:03d}_{m.name}")
    if not applied:
        console.print("schema is up to date")


@app.command()
def retention(
    keep_days: Annotated[int, typer.Option(min=1, help="Keep records whose fix time is newer than this.")] = 400,
    min_interval_h: Annotated[float, typer.Option(
        min=0, help="Do nothing if a run finished less than this many hours ago (0: always run).")] = 20.0,
) -> None:
    """Drop whole chunks of records older than --keep-days (TimescaleDB drop_chunks)
    and delete dead letters received before then; prune the engine's checkpoints.

    Run it daily from cron or a systemd timer, on one machine or on several: one run
    at a time does the work (advisory lock), and a run finished within
    --min-interval-h makes the others no-ops. The Apache-licensed TimescaleDB has no
    background retention policy.
    """
    import psycopg

    from ctt import retention as job

    with psycopg.connect(OpsSettings().database_url, autocommit=True) as conn:
        job.run(conn, keep_days, min_interval_h, console.print)


@app.command()
def ingest(
    retire: Annotated[bool, typer.Option(help="Scale down for good: this worker (CTT_WORKER_ID) leaves the "
                                              "share group, stores what its session still holds, ends the "
                                              "session and exits.")] = False,
) -> None:
    """Run the MQTT ingest service until SIGINT/SIGTERM (one of N workers with CTT_WORKER_ID)."""
    from prometheus_client import start_http_server

    from ingest.config import IngestSettings
    from ingest.pipeline import run_service

    settings = IngestSettings()
    if not settings.broker_password:  # the secret the set-up made for ctt-ingest
        settings.broker_password = _service_secret(settings.broker_username)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    if retire and settings.worker_id is None:
        console.print("--retire needs the worker's identity: set CTT_WORKER_ID")
        raise typer.Exit(2)
    stop = _stop_on_signals()
    run_service(settings, stop, retire)


@devices_app.command("provision")
def provision(
    ids: Annotated[list[str] | None, typer.Argument(help="Device ids.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Generate ids PREFIX-00000...")] = None,
    count: Annotated[int, typer.Option(help="How many ids to generate with --prefix.")] = 0,
    cert: Annotated[bool, typer.Option(help="A client certificate signed by the project CA (default: a random "
                                            "secret, for devices that cannot hold one).")] = False,
    kind: Annotated[str | None, typer.Option(help="eseal or tracker: issues a signing key; e-seals must sign "
                                                  "unless --no-sign.")] = None,
    sign: Annotated[bool | None, typer.Option("--sign/--no-sign", help="Require signed records (issues a key "
                                                                      "when missing); --no-sign lifts it.")] = None,
) -> None:
    """Give each device its own broker credential (kept if it has one); one JSON line per device with the
    files to hand to it: ``cert``, ``key`` and ``ca``, or ``secret_file`` (0600; the broker keeps only a hash)."""
    import json

    from ctt.broker_auth import BrokerAuthError
    from ctt.devices import local_broker
    from ctt.devices import provision as issue

    device_ids = list(ids or []) + [f"{prefix}-{i:05d}" for i in range(count)] if prefix else list(ids or [])
    if not device_ids:
        raise typer.BadParameter("give device ids or --prefix with --count")
    try:
        issued = issue(local_broker(OpsSettings().state_dir), device_ids, "certificate" if cert else "secret")
    except BrokerAuthError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for item in issued:
        print(json.dumps(item.as_json()))
    console.print(f"{len(issued)} devices provisioned ({sum(i.new for i in issued)} new credentials)")
    _provision_keys(device_ids, kind, sign)


def _provision_keys(device_ids: list[str], kind: str | None, sign: bool | None) -> None:
    """Signing keys (ctt/device_keys.py): each new key printed once, ``ID sign-key KEY``."""
    import psycopg

    from ctt.device_keys import DeviceKeyError, DeviceKind, provision_keys
    from protocol.signing import encode_key

    if kind not in (None, "eseal", "tracker"):
        raise typer.BadParameter(f"--kind {kind!r} is not one of eseal, tracker")
    try:
        with psycopg.connect(OpsSettings().database_url) as conn:
            issued = provision_keys(conn, device_ids, cast("DeviceKind | None", kind), sign)
    except DeviceKeyError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for device_id, key in issued.items():
        print(device_id, "sign-key", encode_key(key))


@devices_app.command("revoke")
def revoke(device_id: Annotated[str, typer.Argument(help="Device id.")]) -> None:
    """Cut a device off: its certificate onto the CRL or its secret out of the password file, and the broker
    reloaded; its next connection is refused (an open one lasts until it drops)."""
    from ctt.broker_auth import BrokerAuthError
    from ctt.devices import local_broker
    from ctt.devices import revoke as cut_off

    try:
        kind = cut_off(local_broker(OpsSettings().state_dir), device_id)
    except BrokerAuthError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(f"{device_id}: {kind} revoked")


def _service_secret(account: str) -> str:
    from ctt.broker_auth import BrokerAuthError, service_secret

    try:
        return service_secret(OpsSettings().secrets_dir, account)
    except BrokerAuthError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


SCENARIOS = ("fleet", "ground-truth", "corridor", "transit", "border-corridor")


@app.command()
def sim(
    scenario: Annotated[str, typer.Option(help="fleet: trucks only, no shipments; ground-truth: one truck per "
                                               "alert case (3.6 h, alerts expected); corridor: trucks with "
                                               "in-transit shipments and no incidents; transit: one truck per "
                                               "border case (4.6 h, alerts and milestones expected); "
                                               "border-corridor: corridor with its border posts as offices of "
                                               "transit.")] = "fleet",
    trucks: Annotated[int, typer.Option(help="Trucks (each with a tracker and e-seals).")] = 20,
    duration: Annotated[float, typer.Option(help="Simulated duration, hours (ground-truth: its own).")] = 2.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    interval: Annotated[float, typer.Option(help="Tracker reporting interval, seconds.")] = 15.0,
    seals: Annotated[int, typer.Option(help="E-seals per truck (fleet).")] = 1,
    noise: Annotated[float, typer.Option(help="GPS error sigma, metres (fleet).")] = 8.0,
    gaps: Annotated[int, typer.Option(help="Coverage gaps per truck (fleet).")] = 1,
    seed: Annotated[int, typer.Option()] = 7,
    prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
) -> None:
    """Drive simulated trucks over MQTT (provisions their broker accounts and, for
    scenarios, registers their routes, zones and shipments first)."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
    fleet = FleetOptions(trucks, interval, seals, noise, gaps, seed)
    stats = run_sim([scenario], fleet, duration, speedup, prefix, _stop_on_signals())
    console.print(
        f"published {stats.messages} messages ({stats.records} records); "
        f"still buffered on devices: {stats.buffered}; lost to full buffers: {stats.overflowed}"
    )


@dataclass(frozen=True)
class FleetOptions:
    trucks: int = 20
    interval_s: float = 15.0
    seals: int = 1
    noise_m: float = 8.0
    gaps: int = 1
    seed: int = 7


def run_sim(scenarios: list[str], fleet: FleetOptions, duration_h: float, speedup: float, prefix: str,
            stop: threading.Event) -> SimStats:
    """Run the named scenarios together on one simulated clock ending now."""
    import psycopg

    from ctt.device_keys import provision_simulated
    from ctt.devices import credentials, local_broker
    from ctt.devices import provision as issue
    from firmware_sim.config import SimSettings
    from firmware_sim.link import Link
    from firmware_sim.runner import SimClock, Simulation
    from firmware_sim.scenarios import ground_truth
    from firmware_sim.transit_scenarios import transit_ground_truth

    ops, settings = OpsSettings(), SimSettings()
    duration_s = duration_h * 3600
    # Scenarios of their own length set the run's: the longest of them.
    probes = [p(0) for name, p in (("ground-truth", ground_truth), ("transit", transit_ground_truth))
              if name in scenarios]
    if probes:
        duration_s = max((p.end_ms - p.start_ms) / 1000 for p in probes)
    clock = SimClock.ending_now(duration_s, speedup)
    devices = _devices(scenarios, fleet, clock.start_ms, duration_s, prefix, settings.corridor, ops.database_url)
    with psycopg.connect(ops.database_url) as conn:
        provision_simulated(conn, devices)  # signing keys and seq counters (ctt/device_keys.py)
    # Each simulated device gets its own client certificate (kept across runs) and connects over TLS.
    broker = local_broker(ops.state_dir)
    issue(broker, [d.device_id for d in devices], "certificate")

    def link_for(device_id: str) -> Link:
        creds = credentials(broker, device_id)
        port = settings.broker_cert_port if creds.cert_file else settings.broker_secret_port
        return Link(device_id, creds, settings.broker_host, port)

    simulation = Simulation(devices, clock, clock.start_ms + int(duration_s * 1000), link_for)
    total = int(duration_s)
    with Progress(TextColumn("[bold]sim"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=total)

        def report(s: SimStats) -> None:
            when = datetime.fromtimestamp(s.sim_ms / 1000, UTC).strftime("%H:%M")
            progress.update(task, completed=min(total, (s.sim_ms - clock.start_ms) / 1000),
                            description=f"{when}Z {s.messages} msgs {s.records} recs "
                                        f"{s.connected}/{len(devices)} online {s.buffered} buffered")

        return simulation.run(stop, report)


def _devices(scenarios: list[str], fleet: FleetOptions, start_ms: int, duration_s: float, prefix: str,
             corridor: str, database_url: str) -> list[Device]:
    import psycopg

    from ctt.transit import register
    from firmware_sim.corridors import CORRIDORS
    from firmware_sim.devices import GpsNoise
    from firmware_sim.fleet import FleetSpec, build_fleet
    from firmware_sim.scenarios import ground_truth, quiet_fleet
    from firmware_sim.transit_scenarios import border_corridor, transit_ground_truth

    devices: list[Device] = []
    for name in scenarios:
        if name == "fleet":
            spec = FleetSpec(trucks=fleet.trucks, interval_s=fleet.interval_s, seals_per_truck=fleet.seals,
                             noise=GpsNoise(fleet.noise_m), gaps_per_truck=fleet.gaps, prefix=prefix,
                             seed=fleet.seed)
            devices.extend(build_fleet(CORRIDORS[corridor], spec, start_ms, duration_s))
            continue
        if name == "ground-truth":
            scenario = ground_truth(start_ms, prefix=f"{prefix}-gt")
        elif name == "transit":
            scenario = transit_ground_truth(start_ms, prefix=f"{prefix}-tt")
        else:
            make = border_corridor if name == "border-corridor" else quiet_fleet
            scenario = make(start_ms, duration_s, fleet.trucks, prefix=prefix, interval_s=fleet.interval_s,
                            seed=fleet.seed)
        with psycopg.connect(database_url) as conn:
            register(conn, scenario)
        console.print(f"{name}: registered {len(scenario.shipments)} in-transit shipments"
                      + (f", {len(scenario.expected)} alerts expected" if scenario.expected else ""))
        devices.extend(scenario.devices)
    return devices


token_app = typer.Typer(help="Bearer tokens: `ctt token --role ROLE` mints one, `ctt token revoke JTI` "
                             "revokes one.")
app.add_typer(token_app, name="token")


@token_app.callback(invoke_without_command=True)
def token(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option(help="admin, operator, officer, integrator or supervisor.")] = None,
    subject: Annotated[str, typer.Option(help="Who the token is for (user or system name).")] = "local-user",
    region: Annotated[str | None, typer.Option(help="Region code (required for officers and supervisors).")] = None,
    hours: Annotated[float, typer.Option(help="Validity, hours (at most CTT_TOKEN_MAX_TTL_S).")] = 12.0,
    unit: Annotated[str | None, typer.Option(help="The officer's unit (units.code), if any.")] = None,
) -> None:
    """Mint a bearer token for local use (signed with CTT_JWT_SECRET) and record it in the audit log."""
    import psycopg

    from tracking_api.auth import TokenError

    if ctx.invoked_subcommand is not None:
        return
    if role is None:
        raise typer.BadParameter("--role is required to mint a token")
    try:
        print(_mint_and_record(subject, role, region, hours, unit))
    except TokenError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except psycopg.errors.UndefinedTable as exc:
        console.print("[red]the database has no audit log yet: run `ctt migrate` first[/]")
        raise typer.Exit(2) from exc


@token_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(metavar="JTI", help="The token's id (`jti`; the "
                                                                           "audit log's token_id).")]) -> None:
    """Revoke a token: every API process refuses it within moments, and ends its open streams.
    Recorded in the audit log (token.revoked)."""
    import getpass

    from tracking_api import audit
    from tracking_api.auth import Principal
    from tracking_api.revocations import revoke

    who = Principal(f"cli:{getpass.getuser()}", "admin")  # whoever runs ctt holds admin rights

    async def work(conn: AsyncConnection[DictRow]) -> bool:
        async with conn.transaction():
            added = await revoke(conn, token_id, who.subject)
            if added:
                await audit.record(conn, who, "token.revoked", "token", token_id, {})
            return added

    if _service(work):
        console.print(f"revoked token {token_id}")
    else:
        console.print(f"token {token_id} was already revoked")


def _mint_and_record(subject: str, role: str, region: str | None, hours: float, unit: str | None = None) -> str:

    from tracking_api import audit
    from tracking_api.auth import mint, verify
    from tracking_api.config import ApiSettings

    settings = ApiSettings()
    signed = mint(settings, subject, role, region, int(hours * 3600), unit)
    who = verify(settings, signed)  # its token_id traces its logins back to this minting

    async def record(conn: AsyncConnection[DictRow]) -> None:
        async with conn.transaction():
            await audit.record(conn, who, "token.minted", "principal", subject,
                               {"region": region, "hours": hours, "token_id": who.token_id}
                               | ({"unit": unit} if unit else {}))

    _service(record)
    return signed


def _service(work: Callable[[AsyncConnection[DictRow]], Awaitable[T]]) -> T:
    """Run a service of the API (async, on a connection of its own) on the configured database."""
    from ctt.transit import run_service

    return run_service({"conninfo": OpsSettings().database_url}, work)


def _cli_user() -> Principal:
    """Who the audit log names for a change made from the command line (it holds admin rights)."""
    import getpass

    from tracking_api.auth import Principal

    return Principal(f"cli:{getpass.getuser()}", "admin")


def _refused(exc: Exception) -> typer.Exit:
    """Print why a service refused (one line per field, as the API's 422 names them); exit 1."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    if isinstance(exc, ValidationError | RequestValidationError):
        for issue in exc.errors():
            loc = [str(part) for part in issue["loc"]]
            console.print(f"[red]{'.'.join(loc[1:] if loc[:1] == ['body'] else loc)}: {issue['msg']}[/]")
    else:
        console.print(f"[red]{exc}[/]")
    return typer.Exit(1)


@shipments_app.command("register")
def shipments_register(
    body: Annotated[typer.FileText, typer.Argument(help="A POST /shipments body (JSON); - for stdin.")],
) -> None:
    """Register a shipment as POST /shipments does; print it as the API answers it."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from tracking_api.schemas.shipments import ShipmentIn
    from tracking_api.services import shipments as service
    from tracking_api.services.errors import ServiceError

    try:
        shipment = ShipmentIn.model_validate_json(body.read())
        created = _service(lambda conn: service.register(conn, _cli_user(), shipment))
    except (ValidationError, RequestValidationError, ServiceError) as exc:
        raise _refused(exc) from exc
    print(created.model_dump_json(indent=2))


def _move(action: Action, shipment_id: int, at: datetime | None) -> None:
    from fastapi.exceptions import RequestValidationError

    from tracking_api.services import shipments as service
    from tracking_api.services.errors import ServiceError

    if at is not None and at.tzinfo is None:
        raise typer.BadParameter(f"at {at.isoformat()} has no time zone")
    try:
        moved = _service(lambda conn: service.move(conn, _cli_user(), shipment_id, action, at))
    except (RequestValidationError, ServiceError) as exc:
        raise _refused(exc) from exc
    print(moved.model_dump_json(indent=2))


At = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"],
                                              help="When it happened, with a time zone; default now.")]


@shipments_app.command("depart")
def shipments_depart(shipment_id: int, at: At = None) -> None:
    """registered -> in_transit, as POST /shipments/{id}/depart."""
    _move("depart", shipment_id, at)


@shipments_app.command("arrive")
def shipments_arrive(shipment_id: int, at: At = None) -> None:
    """in_transit -> arrived, as POST /shipments/{id}/arrive."""
    _move("arrive", shipment_id, at)


@shipments_app.command("close")
def shipments_close(shipment_id: int, at: At = None) -> None:
    """arrived -> closed (releases the e-seals), as POST /shipments/{id}/close."""
    _move("close", shipment_id, at)


@declarations_app.command("import")
def declarations_import(
    path: Annotated[Path, typer.Argument(help="JSON lines: a declaration, or {\"version\": n, \"document\": ...} "
                                              "to amend one.", exists=True, dir_okay=False, readable=True)],
    report: Annotated[Path | None, typer.Option(help="Also write the per-line report here (JSON lines).")] = None,
) -> None:
    """Create, amend or find unchanged each line's declaration; print a report line per line
    (created / amended / unchanged / refused with every bad field). Exit 1 if any was refused."""
    from tracking_api.services.declaration_import import LineReport, import_lines

    with path.open(encoding="utf-8") as f:
        total = sum(1 for line in f if line.strip())
    counts: dict[str, int] = {}
    out = report.open("w", encoding="utf-8") if report else None
    with Progress(TextColumn("[bold]declarations"), BarColumn(), TextColumn("{task.completed:,} / {task.total:,}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=total)

        def reported(line: LineReport) -> None:
            counts[line.outcome] = counts.get(line.outcome, 0) + 1
            print(f"{line.line}\t{line.mrn or '-'}\t{line.outcome}" + (f"\t{line.reason}" if line.reason else ""))
            if out:
                out.write(line.json() + "\n")
            bar.advance(task)

        try:
            with path.open(encoding="utf-8") as lines:
                _service(lambda conn: import_lines(conn, _cli_user(), lines, reported))
        finally:
            if out:
                out.close()
    console.print(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no declarations")
    if counts.get("refused"):
        raise typer.Exit(1)


# Below this many rows the check takes a moment: no progress bar.
LONG_AUDIT_LOG = 50_000


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log: ids without gaps, the hash chain, and every signed checkpoint in the exported file.

    Exit 0 when intact, 1 naming the first broken row or the first checkpoint
    whose signed head no longer matches, 2 when the log or the checkpoints
    cannot be read.
    """
    import psycopg

    from ctt.audit import verify
    from ctt.audit_anchor import CheckpointError, anchor_files, read_checkpoints

    settings = LocalSettings()
    try:
        checkpoints = read_checkpoints(anchor_files(settings.state_dir))
    except (CheckpointError, OSError) as exc:
        console.print(f"[red]cannot trust the checkpoints: {exc}")
        raise typer.Exit(2) from exc
    with Progress(TextColumn("[bold]audit"), BarColumn(), TextColumn("{task.completed:,} / {task.total:,} rows"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("", total=None, visible=False)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=total >= LONG_AUDIT_LOG)

        try:
            report = verify(settings.database_url, progress, checkpoints=checkpoints)
        except psycopg.Error as exc:
            hint = " (run `ctt migrate`)" if isinstance(exc, psycopg.errors.UndefinedTable) else ""
            console.print(f"[red]cannot read the audit log{hint}: {exc}")
            raise typer.Exit(2) from exc
    print(report.summary())
    if not report.intact:
        raise typer.Exit(1)
    if report.head_id is not None:
        console.print(f"head: row {report.head_id}, hash {report.head_hash}")


@audit_app.command("checkpoint")
def audit_checkpoint(
    every: Annotated[float | None, typer.Option(help="Keep signing every EVERY seconds until SIGTERM.")] = None,
) -> None:
    """Sign the audit log's head with the key in $CTT_STATE_DIR/secrets (created on first use).

    The checkpoint is appended to $CTT_STATE_DIR/audit/checkpoints.jsonl and
    recorded in audit_checkpoints (GET /api/v1/audit/checkpoints)."""
    from ctt.audit_anchor import anchor_files, write_checkpoint

    settings = LocalSettings()
    files = anchor_files(settings.state_dir)
    stop = _stop_on_signals() if every else threading.Event()
    while True:
        checkpoint = write_checkpoint(settings.database_url, files)
        print(f"checkpoint {checkpoint.id}: row {checkpoint.head_id}, hash {checkpoint.head_hash}"
              if checkpoint else "audit log empty: nothing to sign", flush=True)
        if not every or stop.wait(every):
            return


@app.command()
def demo(
    trucks: Annotated[int, typer.Option(help="Trucks on the corridor besides the ground-truth cases.")] = 40,
    speedup: Annotated[float, typer.Option()] = 30.0,
) -> None:
    """Services, migrations, ingest, the API and the simulator together, until Ctrl-C.

    The ground-truth trucks (detour, unauthorised stop, seal breach, a coverage
    gap) and the transit ones (a border bypass, a skipped office, a long border
    dwell, seal numbers, a hidden detour, jamming, a U-turn...) raise alerts within
    minutes; the other trucks run the Northern Corridor with in-transit shipments
    through the border posts of Malaba and Katuna/Gatuna (offices of transit). The
    countries are loaded first. Alerts are printed as ingest publishes them, the
    Time Release figures every few minutes and at the end; the API's address and
    an operator's token are printed at the start.
    """
    if subprocess.call(["bash", str(REPO_ROOT / "deploy" / "services.sh")]) != 0:
        raise typer.Exit(1)
    migrate()
    stop = _stop_on_signals()
    procs = [subprocess.Popen([sys.executable, "-m", "ctt.cli", "ingest"], env=_as_role(DB_INGEST)),
             subprocess.Popen([sys.executable, "-m", "uvicorn", "tracking_api.main:app", "--host", "127.0.0.1",
                               "--port", "8000", "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
                              env=_as_role(DB_API))]
    watcher = _print_alerts()
    try:
        _demo_regions()
        _demo_countries()
        operator = _print_pages()
        sim_over = threading.Event()
        time_release.show_every(console, DEMO_API, operator, TIME_RELEASE_EVERY_S, sim_over)
        # A fresh prefix per run: shipments of an earlier demo keep their own trackers.
        run_id = datetime.now(UTC).strftime("%m%d%H%M")
        run_sim(["ground-truth", "transit", "border-corridor"], FleetOptions(trucks=trucks, interval_s=30.0), 0.0,
                speedup, f"demo{run_id}", stop)
        sim_over.set()
        time_release.show(console, DEMO_API, operator)
        if not stop.is_set():
            console.print("simulation finished; ingest and the API keep running until Ctrl-C")
            stop.wait()
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)


def _as_role(role: str) -> dict[str, str]:
    """The environment with the service's own database role, unless CTT_DATABASE_URL is given."""
    env = os.environ.copy()
    if "CTT_DATABASE_URL" not in env:
        env["CTT_DATABASE_URL"] = LocalSettings().url_for(role)
    return env


DEMO_REGIONS = REPO_ROOT / "deploy" / "demo-regions.geojson"
DEMO_API = "http://127.0.0.1:8000/api/v1"
TIME_RELEASE_EVERY_S = 180.0  # wall seconds between the demo's Time Release prints
# The ground-truth incidents happen between Mombasa and Voi: this region's officer sees them.
DEMO_OFFICER_REGION = "KE-MSA"


def _demo_regions() -> None:
    """Customs regions of the demo corridor (officers see their region's shipments), kept if defined;
    earlier demos' shipments closed."""
    import json

    import psycopg
    from psycopg.types.json import Jsonb

    # An earlier demo's trucks stopped with it: close their shipments, or the map would show them
    # as trucks gone silent on the road (and the sweep would raise signal_lost for each).
    _service(_close_earlier_demos)
    features = json.loads(DEMO_REGIONS.read_text())["features"]
    with psycopg.connect(OpsSettings().database_url, autocommit=True) as conn:
        for f in features:
            conn.execute("INSERT INTO regions (code, name, geometry) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (f["properties"]["code"], f["properties"]["name"], Jsonb(f["geometry"])))


def _demo_countries() -> None:
    """Load the outlines of the countries the demo's trucks cross (East Africa), kept if unchanged."""
    import importlib

    import psycopg

    # ctt.countries (the countries command, issue 13) is looked up by name so that this module
    # does not depend on its being merged first.
    try:
        countries = importlib.import_module("ctt.countries")
        with psycopg.connect(OpsSettings().database_url, autocommit=True) as conn:
            countries.load_countries(conn, bbox=countries.EAST_AFRICA)
    except (ModuleNotFoundError, ValueError) as exc:  # not merged, or the npm package not installed
        # Without outlines no fix has a country: no border crossings, bypasses or Time Release per country.
        console.print(f"[yellow]countries not loaded ({exc}): border rules stay silent[/]")


async def _close_earlier_demos(conn: AsyncConnection[DictRow]) -> None:
    """Every open shipment of an earlier demo taken through its remaining lifecycle steps, audited."""
    from tracking_api.services import shipments as service

    rows = await (await conn.execute("SELECT id, status FROM shipments WHERE tracker_id LIKE 'demo%%'"
                                     " AND status NOT IN ('closed', 'cancelled') ORDER BY id")).fetchall()
    await conn.commit()
    steps: list[Action] = ["depart", "arrive", "close"]
    for row in rows:
        for action in steps[[service.STEPS[a].source for a in steps].index(row["status"]):]:
            await service.move(conn, _cli_user(), row["id"], action)


def _print_pages() -> str:
    """The pages' addresses, each with a token in its fragment (the page takes it and removes it);
    returns the operator's token."""
    base = "http://127.0.0.1:8000"
    operator = _mint_and_record("demo-operator", "operator", None, 12.0)
    officer = _mint_and_record("demo-officer", "officer", DEMO_OFFICER_REGION, 12.0)
    # Plain print: a token wrapped over lines by the console could not be copied.
    print(f"API: {base}/api/v1/docs   ingest metrics: http://127.0.0.1:9108/metrics")
    print(f"control room:  {base}/#token={operator}")
    print(f"officer ({DEMO_OFFICER_REGION}): {base}/officer/#token={officer}")
    print(f"KPIs:          {base}/kpi/#token={operator}")
    print(f"operator token (12 h): {operator}", flush=True)
    return operator


@app.command()
def alerts() -> None:
    """Print alerts as ingest publishes them on ctt/v1/alerts/#, until Ctrl-C."""
    watcher = _print_alerts()
    _stop_on_signals().wait()
    watcher.disconnect()
    watcher.loop_stop()


def _print_alerts() -> mqtt.Client:
    """Subscribe to the alert topics with the observer account; print one line per alert change."""
    import msgspec
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from protocol.topics import ALERTS_FILTER

    ops = OpsSettings()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set("ctt-observer", ops.observer_password)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        a = msgspec.json.decode(msg.payload)  # protocol.alerts.AlertChange, read leniently
        style = "bold red" if a.get("severity") == "critical" else "yellow"
        console.print(f"[{style}]{a.get('event')} {a.get('type')}[/] {a.get('reference')} {a.get('device')} "
                      f"started {a.get('started_at')} at {a.get('lat')}, {a.get('lon')}"
                      + (" (late)" if a.get("late") else ""))

    client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(ALERTS_FILTER, qos=1)
    client.on_message = on_message
    client.connect_async(ops.broker_host, ops.broker_port)
    client.loop_start()
    return client


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


if __name__ == "__main__":
    app()
