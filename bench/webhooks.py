"""Webhook delivery latency and throughput: alert events committed at a steady rate, delivered
by a real API process (uvicorn, its dispatcher) to a local receiver that verifies every
signature; latency from each change's commit (the outbox's ``committed_at``, the database's
clock at the commit) to the receiver. The peer, same run: the same bodies POSTed directly to
the same receiver at the same rate (no outbox, no database), latency from the send.

Goal (issue 14): p99 <= 500 ms at 50 events/s. The last line is ``webhook_p99_ms=<p99>``.

    .venv/bin/python -m bench.webhooks [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from tests.support import ApiServer
from tests.tracking_api.webhooks.receiver import Receiver
from tracking_api.webhooks import events, sender, signing

BENCH_DB = "ctt_bench_webhooks"
SHIPMENTS = 20  # events round-robin over them: each shipment's own order is kept
console = Console(stderr=True)

_SQUARE = '{{"type":"Polygon","coordinates":[[[{x},-2.0],[{x1},-2.0],[{x1},-1.9],[{x},-1.9],[{x},-2.0]]]}}'
_WORLD = [
    "INSERT INTO zones (name, kind, office_code, geometry) VALUES "
    f"('Bench A', 'office', 'BNWHA', '{_SQUARE.format(x=30.0, x1=30.1)}'), "
    f"('Bench B', 'office', 'BNWHB', '{_SQUARE.format(x=31.0, x1=31.1)}') ON CONFLICT DO NOTHING",
    "INSERT INTO routes (name, geometry) VALUES ('bench webhooks', "
    "'{\"type\":\"LineString\",\"coordinates\":[[30.05,-1.95],[31.05,-1.95]]}')",
]
_SHIPMENTS = """
INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline, status,
                       departed_at)
SELECT format('BNWH%%s-%%s', %(run)s::text, g), (SELECT max(id) FROM routes),
       format('trk-bnwh-%%s-%%s', %(run)s::text, g),
       'BNWHA', 'BNWHB', now() + interval '3 days', 'in_transit', now()
FROM generate_series(1, %(n)s) g
RETURNING id, tracker_id
"""
_SUBSCRIBE = """
INSERT INTO webhook_subscriptions (url, event_types, secret, allow_private, created_by, created_role)
VALUES (%s, '{alert.opened}', %s, true, 'bench', 'admin') RETURNING id
"""
_ALERT = """
INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity, ended_at)
VALUES ('unscheduled_stop', %s, %s, now(), now(), 'high', now())
"""
_COMMITTED = """
SELECT o.id, extract(epoch FROM o.committed_at)::float8 FROM webhook_outbox o
JOIN webhook_deliveries d ON d.outbox_id = o.id WHERE d.subscription_id = %s
"""


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _paced(rate_per_s: float, count: int) -> Any:
    """Yields ``count`` times, one every 1/rate seconds (on schedule, not after each other's work)."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate_per_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i


def _changes(url: str, subscription: int, ships: list[tuple[int, str]], rate_per_s: float, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i in _paced(rate_per_s, count):
            conn.execute(_ALERT, ships[i % len(ships)])


def _peer(receiver: Receiver, bodies: list[bytes], secret: str, rate_per_s: float) -> list[float]:
    """Latency (ms) of the same bodies POSTed directly, send to arrival."""
    before = len(receiver.received)
    sent: list[float] = []
    for i in _paced(rate_per_s, len(bodies)):
        headers = signing.headers(secret, f"peer_{i}", int(time.time()), bodies[i])
        sent.append(time.time())
        sender.post(receiver.url, bodies[i], headers, 10.0, allow_private=True, allow_http=True)
    arrived = {r.msg_id: r.at for r in receiver.received[before:]}
    return [(arrived[f"peer_{i}"] - t) * 1000 for i, t in enumerate(sent) if f"peer_{i}" in arrived]


def measure(url: str, rate_per_s: float = 50, seconds: float = 10.0) -> dict[str, float]:
    """Runs the benchmark on the migrated database at ``url`` (an administrator's URL; it adds
    two zones, a route, 20 shipments and a subscription); the figures, times in ms."""
    run = str(int(time.time() * 1000))
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _WORLD:
            conn.execute(statement)
        ships = [(int(i), str(t)) for i, t in conn.execute(_SHIPMENTS, {"run": run, "n": SHIPMENTS}).fetchall()]
    receiver = Receiver()
    receiver.secret = signing.new_secret()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(_SUBSCRIBE, (receiver.url, receiver.secret)).fetchone()
        assert row is not None
        subscription = int(row[0])
    count = int(rate_per_s * seconds)
    env = {"CTT_WEBHOOKS_DISPATCH": "1", "CTT_WEBHOOK_ALLOW_HTTP": "1"}
    api = ApiServer(url, Path(tempfile.gettempdir()) / "ctt-bench-webhooks.log", **env)
    try:
        api.start()  # inside: a start that times out still stops the process
        started = time.time()
        _changes(url, subscription, ships, rate_per_s, count)
        deadline = time.time() + 30
        while len(receiver.delivered()) < count and time.time() < deadline:
            time.sleep(0.05)
    finally:
        api.stop()
    with psycopg.connect(url, autocommit=True) as conn:
        committed = {events.message_id(int(i)): float(t) for i, t in conn.execute(_COMMITTED, (subscription,))}
        conn.execute("DELETE FROM webhook_subscriptions WHERE id = %s", (subscription,))
    delivered = receiver.delivered()
    latencies = [(r.at - committed[r.msg_id]) * 1000 for r in delivered]
    peer = _peer(receiver, [r.body for r in delivered], receiver.secret, rate_per_s)
    receiver.close()
    last = max((r.at for r in delivered), default=started)
    return {"events": count, "delivered": len({r.msg_id for r in delivered}),
            "verified": sum(r.verified for r in delivered), "p50_ms": p(latencies, 50), "p99_ms": p(latencies, 99),
            "throughput_per_s": len(delivered) / max(last - started, 1e-9),
            "peer_p50_ms": p(peer, 50), "peer_p99_ms": p(peer, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    ops = OpsSettings()
    url = fresh_database(ops.admin_url(), BENCH_DB, ops.url_for(DB_OWNER))
    r = measure(url, args.rate, args.seconds)
    print(f"{r['delivered']:.0f}/{r['events']:.0f} alert.opened webhooks delivered at {args.rate:g}/s "
          f"({r['verified']:.0f} signatures verified), {r['throughput_per_s']:.1f} events/s")
    print(f"commit -> receiver: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    print(f"peer (direct POST, no outbox): p50 {r['peer_p50_ms']:.1f} ms, p99 {r['peer_p99_ms']:.1f} ms")
    print(f"ratio_p50={r['p50_ms'] / r['peer_p50_ms']:.1f} ratio_p99={r['p99_ms'] / r['peer_p99_ms']:.1f}")
    print(f"webhook_p99_ms={r['p99_ms']:.1f}")


if __name__ == "__main__":
    main()
