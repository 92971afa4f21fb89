"""Prometheus metrics of the API: requests by route template, stream clients, logins, Web Push, webhooks."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Histogram("ctt_api_request_seconds", "Time to the response's headers, by route template (s)",
                     ["method", "route", "status"],
                     buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
STREAM_CLIENTS = Gauge("ctt_api_stream_clients", "Open GET /stream connections")
STREAM_DROPPED = Counter("ctt_api_stream_dropped_total", "Stream clients disconnected for falling behind")
LOGINS = Counter("ctt_api_logins_total", "POST /session calls, by outcome", ["outcome"])
PUSH_SENT = Counter("ctt_api_push_total", "Web Push sends, by outcome: sent, gone (subscription deleted), "
                    "rejected (another HTTP status), unreachable (no answer)", ["outcome"])
WEBHOOK_ATTEMPTS = Counter("ctt_api_webhook_attempts_total", "Webhook delivery attempts by outcome: delivered (2xx), "
                           "failed (will be retried), dead (retries exhausted)", ["outcome"])
WEBHOOK_LATENCY = Histogram("ctt_api_webhook_attempt_seconds", "One webhook POST, to the receiver's answer (s)",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WEBHOOK_LAG = Histogram("ctt_api_webhook_lag_seconds", "Outbox lag: from the change's commit to its delivery (s)",
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0))
WEBHOOKS_DISABLED = Counter("ctt_api_webhook_subscriptions_disabled_total",
                            "Subscriptions disabled after failing persistently (or a 410 Gone)")


class RequestMetrics:
    """ASGI middleware timing every HTTP request to its response start.

    Labelled by the matched route's template as declared (a router's routes
    without the ``/api/v1`` prefix: ``/shipments/{shipment_id}``), never the raw
    path, so that ids do not multiply the series; unmatched paths count as
    ``unmatched``. A stream is counted once, when its headers go out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                REQUESTS.labels(scope["method"], route, str(message["status"])).observe(
                    time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed)
