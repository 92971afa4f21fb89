"""Tracking API latency with a loaded database, against the same queries run
directly with psycopg (the peer: no HTTP, no JSON, no auth), same run.

Loads 10,000 in-transit shipments with a latest position each, and 30 days of
15 s fixes for 100 of their trackers; starts the API (uvicorn, one process);
measures ``GET /positions/latest`` and 7-day ``GET /devices/{id}/track``
(p50/p99 over sequential requests on a kept-alive connection), and the
fan-out of an alert change to 200 ``GET /stream`` clients. Then declarations
(``bench/declarations.py``: bulk import, one POST each, and plain COPY as the
peer) and webhooks (``bench/webhooks.py``: commit to receiver at 50 events/s,
against a direct POST of the same bodies). The last line is
``latest_p99_ms=<a> track_p99_ms=<b> declarations_per_s=<c> webhook_p99_ms=<d>``.

    .venv/bin/python -m bench.api [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import Progress

from bench import declarations, webhooks
from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from tests.support import ApiServer, EventStream
from tracking_api.auth import mint
from tracking_api.config import ApiSettings
from tracking_api.routers.tracks import _BUCKETED, _LATEST

BENCH_DB = "ctt_bench_api"
console = Console(stderr=True)
DAY_S = 86_400


@dataclass(frozen=True)
class Scale:
    shipments: int
    history_devices: int
    history_days: int
    requests: int
    clients: int
    events: int
    declarations: int
    webhook_s: float


FULL = Scale(shipments=10_000, history_devices=100, history_days=30, requests=200, clients=200, events=20,
             declarations=1000, webhook_s=20.0)
QUICK = Scale(shipments=2_000, history_devices=10, history_days=8, requests=60, clients=50, events=5,
              declarations=300, webhook_s=6.0)


def database() -> str:
    ops = OpsSettings()  # created by the administrator, migrated by the owner; the API connects as ctt_api
    return fresh_database(ops.admin_url(), BENCH_DB, ops.url_for(DB_OWNER))


MOMBASA = '{"type":"Polygon","coordinates":[[[39.6,-4.1],[39.7,-4.1],[39.7,-4.0],[39.6,-4.0],[39.6,-4.1]]]}'
KIGALI = '{"type":"Polygon","coordinates":[[[30.0,-2.0],[30.1,-2.0],[30.1,-1.9],[30.0,-1.9],[30.0,-2.0]]]}'
LINE = '{"type":"LineString","coordinates":[[39.67,-4.04],[36.82,-1.29],[32.58,0.35],[30.06,-1.94]]}'
COAST = '{"type":"Polygon","coordinates":[[[38,-5],[41,-5],[41,-2],[38,-2],[38,-5]]]}'
_LOAD = [
    f"INSERT INTO zones (name, kind, office_code, geometry) VALUES ('Mombasa', 'office', 'KEMBA', '{MOMBASA}'),"
    f" ('Kigali', 'office', 'RWKGL', '{KIGALI}')",
    f"INSERT INTO routes (name, geometry) VALUES ('Mombasa-Kigali', '{LINE}')",
    f"INSERT INTO regions (code, name, geometry) VALUES ('KE-COAST', 'Coast', '{COAST}')",
    """INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline,
                              status, departed_at)
       SELECT format('26KE%%s', lpad(g::text, 13, '0')), 1, format('trk-%%s', lpad(g::text, 5, '0')), 'KEMBA', 'RWKGL',
              now() + interval '3 days', 'in_transit', now() - interval '30 days'
       FROM generate_series(0, %(n)s - 1) g""",
    "INSERT INTO shipment_regions SELECT id, 'KE-COAST' FROM shipments WHERE id %% 10 = 0",
    """INSERT INTO devices (device_id, state) SELECT tracker_id, 'online' FROM shipments""",
    """INSERT INTO latest_positions (device_id, seq, ts, lat, lon, spd, hdg, received_at)
       SELECT tracker_id, 0, now(), -4.0 + random() * 3, 36 + random() * 3, 60, 270, now() FROM shipments""",
    """INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity)
       SELECT 'route_deviation', id, tracker_id, now(), now(), 'high' FROM shipments WHERE id %% 50 = 0""",
    """INSERT INTO fixes (device_id, seq, ts, lat, lon, spd, received_at)
       SELECT format('trk-%%s', lpad(d::text, 5, '0')), g, now() - make_interval(secs => g * 15),
              -4.0 + g * 1e-6, 39.6 - g * 1e-6, 60, now()
       FROM generate_series(0, %(devices)s - 1) d, generate_series(0, %(fixes)s - 1) g""",
    "ANALYZE",
]


def load(url: str, scale: Scale) -> None:
    params = {"n": scale.shipments, "devices": scale.history_devices, "fixes": scale.history_days * DAY_S // 15}
    with psycopg.connect(url, autocommit=True) as conn, Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading", total=len(_LOAD))
        for statement in _LOAD:
            conn.execute(statement, params)
            progress.advance(task)


def latencies_ms(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm: connection, caches
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def http_get(conn: http.client.HTTPConnection, path: str, token: str) -> bytes:
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return body


def fan_out(api: ApiServer, url: str, token: str, scale: Scale) -> list[float]:
    """Delivery delay (ms) from an alert change's commit to each client's receipt."""
    # Officers' phones: alerts only (a control-room client also gets every truck's position at connect).
    streams = [EventStream(api.url, token, query="?kind=alert") for _ in range(scale.clients)]
    try:
        time.sleep(1.0)
        delays: list[float] = []
        with psycopg.connect(url, autocommit=True) as conn:
            for k in range(scale.events):
                before = [len(s.of("alert")) for s in streams]
                conn.execute("UPDATE alerts SET updated_at = now() WHERE id = (SELECT min(id) FROM alerts)")
                sent = time.perf_counter()
                arrived: dict[int, float] = {}
                deadline = sent + 10
                while len(arrived) < len(streams) and time.perf_counter() < deadline:
                    for i, s in enumerate(streams):
                        if i not in arrived and len(s.of("alert")) > before[i]:
                            arrived[i] = time.perf_counter()
                    time.sleep(0.001)
                if len(arrived) < len(streams):
                    raise RuntimeError(f"event {k}: {len(arrived)} of {len(streams)} clients received it")
                delays.extend((t - sent) * 1000 for t in arrived.values())
        return delays
    finally:
        for s in streams:
            s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller load, under a minute")
    scale = QUICK if parser.parse_args().quick else FULL
    url = database()
    console.print(f"loading {scale.shipments:,} shipments, {scale.history_days} days of fixes for "
                  f"{scale.history_devices} trackers")
    started = time.perf_counter()
    load(url, scale)
    console.print(f"loaded in {time.perf_counter() - started:.0f} s")
    admin = mint(ApiSettings(), "bench", "admin")
    api = ApiServer(url, Path(tempfile.gettempdir()) / "ctt-bench-api.log").start()
    try:
        host = http.client.HTTPConnection("127.0.0.1", api.port)
        latest = latencies_ms(lambda: http_get(host, "/api/v1/positions/latest", admin), scale.requests)
        features = http_get(host, "/api/v1/positions/latest", admin).count(b'"Feature"')
        rng = random.Random(3)
        week = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * DAY_S))

        def one_track() -> bytes:
            device = f"trk-{rng.randrange(scale.history_devices):05d}"
            return http_get(host, f"/api/v1/devices/{device}/track?from={week}", admin)

        track = latencies_ms(one_track, scale.requests)
        with psycopg.connect(url, autocommit=True) as conn:
            peer_latest = latencies_ms(lambda: conn.execute(_LATEST.format(visible=sql.SQL("true"))).fetchall(),
                                       scale.requests)
            bucket = {"bucket": f"{-(-7 * DAY_S // 5000)} seconds", "end": "now", "start": week}
            # The API's own query for an unscoped caller, with its row limit.
            bucketed = _BUCKETED.format(scope=sql.SQL(""))
            limit = {"limit": ApiSettings().track_max_rows + 1}
            peer_track = latencies_ms(lambda: conn.execute(bucketed, {
                **bucket, **limit, "device": f"trk-{rng.randrange(scale.history_devices):05d}"}).fetchall(),
                scale.requests)
        # Printed before the fan-out, so that a failure there keeps them.
        print(f"GET /positions/latest ({features:,} features): p50 {p(latest, 50):.1f} ms, "
              f"p99 {p(latest, 99):.1f} ms; the SQL path in psycopg: p50 {p(peer_latest, 50):.1f} ms, "
              f"p99 {p(peer_latest, 99):.1f} ms")
        print(f"GET /devices/{{id}}/track, 7 days of 15 s fixes: p50 {p(track, 50):.1f} ms, "
              f"p99 {p(track, 99):.1f} ms; same query in psycopg: p50 {p(peer_track, 50):.1f} ms, "
              f"p99 {p(peer_track, 99):.1f} ms", flush=True)
        delays = fan_out(api, url, admin, scale)
    finally:
        api.stop()
    print(f"GET /stream fan-out to {scale.clients} clients, {scale.events} alert changes: delivery p50 "
          f"{p(delays, 50):.1f} ms, p99 {p(delays, 99):.1f} ms, max {max(delays):.1f} ms")
    print(f"ratio_latest={p(latest, 50) / p(peer_latest, 50):.2f} ratio_track={p(track, 50) / p(peer_track, 50):.2f}")
    declared = declarations.measure(url, scale.declarations)
    print(f"declarations: bulk {declared['bulk_per_s']:.0f}/s, one POST each {declared['one_by_one_per_s']:.0f}/s;"
          f" the peer (COPY, no checks) {declared['peer_copy_per_s']:.0f}/s;"
          f" ratio_declarations={declared['peer_copy_per_s'] / declared['bulk_per_s']:.2f}", flush=True)
    hooks = webhooks.measure(url, 50, scale.webhook_s)
    print(f"webhooks at 50 events/s: commit to receiver p50 {hooks['p50_ms']:.1f} ms, p99 {hooks['p99_ms']:.1f} ms;"
          f" a direct POST p50 {hooks['peer_p50_ms']:.1f} ms, p99 {hooks['peer_p99_ms']:.1f} ms;"
          f" ratio_webhook_p99={hooks['p99_ms'] / hooks['peer_p99_ms']:.1f}")
    print(f"latest_p99_ms={p(latest, 99):.1f} track_p99_ms={p(track, 99):.1f}"
          f" declarations_per_s={declared['bulk_per_s']:.0f} webhook_p99_ms={hooks['p99_ms']:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
