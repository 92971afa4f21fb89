"""Delivers the webhook outbox: one ``Dispatcher`` per API process (``CTT_WEBHOOKS_DISPATCH``).

Any number of processes share the work through the database: a delivery is claimed with
``FOR UPDATE SKIP LOCKED`` and leased (its ``next_attempt_at`` moved past the attempt's
timeout) in one committed statement, so each is attempted by one process; a process that
dies mid-attempt leaves a lease that expires, and the delivery is tried again (at least
once). A delivery is claimable only when no earlier event (outbox ``seq``, given at commit)
of the same shipment is still pending or failing for the same subscription: each receiver
sees a shipment's events in order. The outcome is recorded (delivered, or failed with the
next attempt drawn with full jitter, or dead past the retry window) before anything else;
a subscription failing for ``CTT_WEBHOOK_DISABLE_AFTER_S`` (or answered 410 Gone) is
disabled, audited as ``webhook.disabled``, logged at error level and counted
(``ctt_api_webhook_subscriptions_disabled_total``); ``GET /webhooks`` shows why.

Wakes on ``NOTIFY ctt_webhooks`` (the outbox triggers), when one of its own deliveries
completes (the next event of that shipment may be due), and every ``CTT_WEBHOOK_POLL_S``
for retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tracking_api.config import ApiSettings
from tracking_api.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_LAG, WEBHOOK_LATENCY, WEBHOOKS_DISABLED
from tracking_api.webhooks import events, sender, signing
from tracking_api.webhooks.sender import Answer

log = structlog.get_logger("tracking_api.webhooks")

CHANNEL = "ctt_webhooks"
ACTOR = "webhook-dispatcher"
GONE = 410
RETRY_S = 1.0  # after losing the database
_LEASE_MARGIN_S = 30.0  # beyond the POST's timeout: thread scheduling, recording the outcome

_CLAIM = """
WITH due AS (
    SELECT d.subscription_id, d.outbox_id
    FROM webhook_deliveries d
    JOIN webhook_outbox o ON o.id = d.outbox_id AND o.seq IS NOT NULL
    JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
    WHERE d.state IN ('pending', 'failed') AND d.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e JOIN webhook_outbox eo ON eo.id = e.outbox_id
          WHERE e.subscription_id = d.subscription_id AND e.ordering_key = d.ordering_key
            AND e.state IN ('pending', 'failed') AND eo.seq < o.seq)
    ORDER BY o.seq
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => %(lease)s),
    -- The retry window opens at the first attempt: time spent waiting behind an earlier event is not counted.
    since = CASE WHEN d.attempts = 0 THEN now() ELSE d.since END
FROM due, webhook_outbox o, webhook_subscriptions s
WHERE d.subscription_id = due.subscription_id AND d.outbox_id = due.outbox_id
  AND o.id = d.outbox_id AND s.id = d.subscription_id
RETURNING d.subscription_id, d.outbox_id, d.attempts, o.payload, o.committed_at, s.url, s.secret, s.allow_private
"""
_ATTEMPT = """
INSERT INTO webhook_attempts (subscription_id, outbox_id, status, latency_ms, error)
VALUES (%(subscription)s, %(outbox)s, %(status)s, %(latency)s, %(error)s)
"""
_DELIVERED = """
UPDATE webhook_deliveries
SET state = 'delivered', delivered_at = now(), attempts = attempts + 1, last_status = %(status)s,
    last_error = NULL, last_latency_ms = %(latency)s, next_attempt_at = now()
WHERE subscription_id = %(subscription)s AND outbox_id = %(outbox)s
"""
_RECOVERED = "UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = %s AND failing_since IS NOT NULL"
_FAILED = """
UPDATE webhook_deliveries
SET attempts = attempts + 1, last_status = %(status)s, last_error = %(error)s, last_latency_ms = %(latency)s,
    state = CASE WHEN now() - since >= make_interval(secs => %(retry_for)s) THEN 'dead' ELSE 'failed' END,
    next_attempt_at = now() + make_interval(secs => %(delay)s)
WHERE subscription_id = %(subscription)s AND outbox_id = %(outbox)s
RETURNING state
"""
_FAILING = """
UPDATE webhook_subscriptions SET failing_since = coalesce(failing_since, now()) WHERE id = %s
RETURNING enabled, failing_since, extract(epoch FROM now() - failing_since)::float8 AS failing_s
"""
_DISABLE = """
UPDATE webhook_subscriptions SET enabled = false, disabled_reason = %(reason)s, disabled_at = now(), updated_at = now()
WHERE id = %(subscription)s AND enabled
RETURNING id, url
"""
# The dispatcher is no user: its audit rows name it, role 'system' (as ingest's do).
_AUDIT = """
INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)
VALUES (%s, 'system', 'webhook.disabled', 'webhook', %s, %s)
"""


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: one event to one subscription."""

    subscription_id: int
    outbox_id: int
    attempts: int  # before this one
    payload: dict[str, Any]
    committed_at: datetime | None
    url: str
    secret: str
    allow_private: bool


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Delay before retrying after failed attempt number ``attempt`` (1, 2, ...): "full jitter",
    uniform in [0, min(cap, base * 2^(attempt - 1))] seconds."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 60))
    return (rng or random).uniform(0.0, ceiling)


class Dispatcher:
    """Delivers due webhook deliveries until stopped."""

    def __init__(self, settings: ApiSettings, pool: AsyncConnectionPool, database_url: str | None = None,
                 on_disabled: Callable[[int, str], Awaitable[object]] | None = None) -> None:
        self._settings = settings
        self._pool = pool
        self._url = database_url or settings.database_url
        # Told (subscription id, reason) once a subscription is disabled: the operators' alert.
        self._on_disabled = on_disabled
        self._executor = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="ctt-webhook")
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen_forever()), asyncio.create_task(self._dispatch_forever())]

    async def stop(self) -> None:
        """Stop claiming and abandon attempts in flight (their leases expire: tried again later)."""
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True,
                                                                 application_name="ctt-api-webhooks") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()  # whatever was committed before listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("webhook listener lost the database, retrying", error=str(exc).strip())
            await asyncio.sleep(RETRY_S)

    async def _dispatch_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.webhook_poll_s)
            self._wake.clear()
            try:
                await self._claim_and_send()
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("webhook dispatcher lost the database, retrying", error=str(exc).strip())
                await asyncio.sleep(RETRY_S)
            except Exception:  # one bad row must not stop every delivery
                log.exception("webhook dispatch failed")
                await asyncio.sleep(RETRY_S)

    async def _claim_and_send(self) -> None:
        room = self._settings.webhook_concurrency - len(self._inflight)
        if room <= 0:
            return
        for delivery in await self._claim(room):
            task = asyncio.create_task(self._deliver(delivery))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # room again, and the shipment's next event may be due
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("webhook delivery failed", error=repr(exc), exc_info=exc)

    async def _claim(self, limit: int) -> list[Delivery]:
        lease = self._settings.webhook_timeout_s + _LEASE_MARGIN_S
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            rows = await (await cur.execute(_CLAIM, {"limit": limit, "lease": lease})).fetchall()
        return [Delivery(**row) for row in rows]

    async def _deliver(self, delivery: Delivery) -> None:
        body = events.body(delivery.payload)
        headers = signing.headers(delivery.secret, events.message_id(delivery.outbox_id), int(time.time()), body)
        s = self._settings
        answer = await asyncio.get_running_loop().run_in_executor(self._executor, partial(
            sender.post, delivery.url, body, headers, s.webhook_timeout_s, delivery.allow_private,
            s.webhook_allow_http))
        await self._record(delivery, answer)

    async def _record(self, delivery: Delivery, answer: Answer) -> None:
        params = {"subscription": delivery.subscription_id, "outbox": delivery.outbox_id, "status": answer.status,
                  "error": answer.error, "latency": answer.latency_ms}
        disabled: str | None = None
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_ATTEMPT, params)
            if answer.delivered:
                await conn.execute(_DELIVERED, params)
                await conn.execute(_RECOVERED, (delivery.subscription_id,))
                outcome = "delivered"
            else:
                outcome, disabled = await self._failed(conn, delivery, answer, params)
        if disabled is not None:  # committed: now tell the operators
            await self._tell(delivery.subscription_id, disabled)
        WEBHOOK_ATTEMPTS.labels(outcome).inc()
        WEBHOOK_LATENCY.observe(answer.latency_ms / 1000)
        if answer.delivered and delivery.committed_at is not None:
            WEBHOOK_LAG.observe(max(0.0, time.time() - delivery.committed_at.timestamp()))
        if not answer.delivered:
            log.info("webhook not delivered", subscription=delivery.subscription_id, outbox=delivery.outbox_id,
                     status=answer.status, error=answer.error, outcome=outcome)

    async def _failed(self, conn: psycopg.AsyncConnection[Any], delivery: Delivery, answer: Answer,
                      params: dict[str, Any]) -> tuple[str, str | None]:
        """The delivery's new state, and the reason if this failure disabled its subscription."""
        s = self._settings
        delay = backoff_s(delivery.attempts + 1, s.webhook_retry_base_s, s.webhook_retry_cap_s)
        row = await (await conn.execute(_FAILED, {**params, "delay": delay, "retry_for": s.webhook_retry_for_s})
                     ).fetchone()
        state = str(row["state"]) if row else "failed"
        failing = await (await conn.execute(_FAILING, (delivery.subscription_id,))).fetchone()
        if failing is None:
            return state, None
        reason = None
        if answer.status == GONE:
            reason = "the receiver answered 410 Gone"
        elif failing["failing_s"] >= s.webhook_disable_after_s:
            reason = f"every delivery failed since {failing['failing_since'].isoformat()} (last: {answer.error})"
        if reason is not None and await self._disable(conn, delivery.subscription_id, reason):
            return state, reason
        return state, None

    async def _disable(self, conn: psycopg.AsyncConnection[Any], subscription_id: int, reason: str) -> bool:
        """Disables the subscription; False if it already was (by another process, or an admin)."""
        row = await (await conn.execute(_DISABLE, {"subscription": subscription_id, "reason": reason})).fetchone()
        if row is None:
            return False
        await conn.execute(_AUDIT, (ACTOR, str(subscription_id), Jsonb({"reason": reason})))
        WEBHOOKS_DISABLED.inc()
        log.error("webhook subscription disabled", subscription=subscription_id, reason=reason)
        return True

    async def _tell(self, subscription_id: int, reason: str) -> None:
        if self._on_disabled is None:
            return
        try:
            await self._on_disabled(subscription_id, reason)
        except Exception as exc:  # noqa: BLE001 - the notice is best effort; state and audit are committed
            log.error("operators not told of a disabled webhook subscription", subscription=subscription_id,
                      error=repr(exc))
