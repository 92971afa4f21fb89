"""The escalation sweep: an alert left open (unacknowledged) past its severity's response time
(``response_times``, ``PUT /escalation/response-times``) escalates to the region's supervisors.

Every API process runs the sweep every ``CTT_ESCALATION_SWEEP_S`` seconds; one at a time does
the work, under ``pg_try_advisory_xact_lock`` (the others skip that round). The n-th escalation
of an alert comes ``ack_within_s * 2^(n-1)`` seconds after it was raised: 5, 10, 20 minutes...
for a critical one. One statement per round raises the level (the alert's trigger makes the
``escalated`` event: live stream, MQTT relay, webhooks, and Web Push to the supervisors, see
``tracking_api.push``), logs it in ``escalations`` and audits ``alert.escalated``, in one
transaction. Acknowledging (or resolving) stops the clock: only ``open`` alerts escalate.
The same round deletes expired idempotency keys (``tracking_api.idempotency.expire``).
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from tracking_api import idempotency
from tracking_api.config import ApiSettings

log = structlog.get_logger("tracking_api.escalation")

LOCK_KEY = 0x0C77_E5CA  # pg_advisory_xact_lock key reserved for the escalation sweep
# Alerts escalated per round at most; the rest wait for the next round.
BATCH = 1000

_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"
_SWEEP = """
WITH due AS (
    SELECT a.id FROM alerts a JOIN response_times r ON r.severity = a.severity
    WHERE a.status = 'open'
      AND a.created_at + make_interval(secs => r.ack_within_s * power(2, a.escalation_level)) <= now()
    ORDER BY a.created_at LIMIT %s
    FOR UPDATE OF a SKIP LOCKED
), escalated AS (
    UPDATE alerts a SET escalated_at = now(), escalation_level = a.escalation_level + 1, updated_at = now()
    FROM due WHERE a.id = due.id
    RETURNING a.id, a.escalation_level, a.severity, a.shipment_id
), logged AS (
    INSERT INTO escalations (alert_id, level) SELECT id, escalation_level FROM escalated
)
INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)
SELECT 'escalation-sweep', 'system', 'alert.escalated', 'alert', e.id::text,
       jsonb_build_object('level', e.escalation_level, 'severity', e.severity, 'shipment', e.shipment_id,
                          'ack_within_s', r.ack_within_s)
FROM escalated e JOIN response_times r ON r.severity = e.severity
"""


async def sweep(pool: AsyncConnectionPool) -> int | None:
    """One round: the number of alerts escalated, or None if another process holds the sweep."""
    async with pool.connection() as conn, conn.transaction():
        cursor = conn.cursor(row_factory=tuple_row)
        mine = await (await cursor.execute(_LOCK, (LOCK_KEY,))).fetchone()
        if mine is None or not mine[0]:
            return None
        await cursor.execute(_SWEEP, (BATCH,))
        escalated = cursor.rowcount
        await idempotency.expire(conn)  # housekeeping that must run once, like the sweep
        return escalated


class Escalator:
    """Runs ``sweep`` every ``settings.escalation_sweep_s`` seconds (0: never, in this process)."""

    def __init__(self, settings: ApiSettings, pool: AsyncConnectionPool) -> None:
        self._interval = settings.escalation_sweep_s
        self._pool = pool
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="escalation-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                escalated = await sweep(self._pool)
                if escalated:
                    log.info("alerts escalated", count=escalated)
            except (psycopg.Error, OSError) as exc:  # the database away (a failover): try again next round
                log.warning("escalation sweep failed", error=str(exc))
            await asyncio.sleep(self._interval)
