"""``/webhooks``: subscriptions to events out (Standard Webhooks), their delivery log, manual
redelivery and a test ping. Admins and operators manage every subscription, integrators
their own (another's is a 404); only admins and operators may allow private addresses.
Every change is audited (``webhook.subscribed|changed|deleted|redelivered|secret_rotated``);
the secret is shown only in the answers that create or rotate it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from psycopg import sql
from psycopg.types.json import Jsonb

from tracking_api import audit
from tracking_api.auth import Principal, Role
from tracking_api.deps import Conn, Settings, require
from tracking_api.pagination import Paging
from tracking_api.schemas.errors import error, forbidden, invalid, validation
from tracking_api.schemas.webhooks import (
    WEBHOOK_EXAMPLE,
    DeliveryPage,
    DeliveryState,
    TestSent,
    Webhook,
    WebhookCreated,
    WebhookIn,
    WebhookPatch,
    WebhookSecret,
    delivery,
)
from tracking_api.services.errors import ConflictError
from tracking_api.webhooks import events, signing
from tracking_api.webhooks.dispatcher import CHANNEL
from tracking_api.webhooks.urls import url_problem

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

ROLES: tuple[Role, ...] = ("admin", "operator", "integrator")
# Who may point a subscription at private or loopback addresses (an internal receiver).
TRUSTED: frozenset[Role] = frozenset({"admin", "operator"})
Manager = Annotated[Principal, Depends(require(*ROLES))]
WebhookId = Annotated[int, Path(description="Subscription id", ge=1, le=2**63 - 1)]
OutboxId = Annotated[int, Path(description="Event (outbox) id", ge=1, le=2**63 - 1)]

_COLUMNS = ("id, url, description, event_types, enabled, disabled_reason, disabled_at, allow_private, created_by, "
            "created_at, updated_at, failing_since")
_INSERT = f"""
INSERT INTO webhook_subscriptions (url, description, event_types, secret, allow_private, created_by, created_role)
VALUES (%(url)s, %(description)s, %(event_types)s, %(secret)s, %(allow_private)s, %(subject)s, %(role)s)
RETURNING {_COLUMNS}, secret
"""
_LOG = """
SELECT d.outbox_id, o.type, coalesce(o.committed_at, o.created_at) AS created_at, d.state, d.attempts,
       d.next_attempt_at, d.delivered_at, d.last_status, d.last_error, d.last_latency_ms,
       coalesce((SELECT jsonb_agg(x ORDER BY x.id) FROM (
                     SELECT a.id, a.at, a.status, a.latency_ms, a.error FROM webhook_attempts a
                     WHERE a.subscription_id = d.subscription_id AND a.outbox_id = d.outbox_id
                     ORDER BY a.id DESC LIMIT 50) x), '[]') AS attempt_log
FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id
WHERE d.subscription_id = %(id)s AND (%(below)s::bigint IS NULL OR d.outbox_id < %(below)s)
  AND (%(state)s::text IS NULL OR d.state = %(state)s)
ORDER BY d.outbox_id DESC LIMIT %(fetch)s
"""
_REDELIVER = """
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now(), since = now()
WHERE subscription_id = %s AND outbox_id = %s
RETURNING outbox_id, state
"""
_PING = """
WITH event AS (
    INSERT INTO webhook_outbox (type, payload) VALUES (%(type)s, %(payload)s) RETURNING id
)
INSERT INTO webhook_deliveries (subscription_id, outbox_id) SELECT %(id)s, id FROM event RETURNING outbox_id
"""

_NOT_FOUND = error(404, "No such subscription, or another integrator's", "no webhook subscription 7")
_BAD_URL = validation("A URL that is not https, or whose host resolves to a private or loopback address",
                      ["body", "url"], "host '10.0.0.5' resolves to a non-public address (10.0.0.5)")
_PRIVATE = error(403, "An integrator asked for allow_private",
                 "role 'integrator' may not allow private addresses (admins and operators may)")


def _owned(caller: Principal) -> sql.Composable:
    """The subscriptions ``caller`` manages: all for admins and operators, their own for integrators."""
    if caller.role in TRUSTED:
        return sql.SQL("true")
    return sql.SQL("created_by = {}").format(sql.Literal(caller.subject))


async def _get(conn: Conn, caller: Principal, webhook_id: int, lock: bool = False) -> dict[str, Any]:
    query = sql.SQL("SELECT {} FROM webhook_subscriptions WHERE id = %s AND {}{}").format(
        sql.SQL(_COLUMNS), _owned(caller), sql.SQL(" FOR UPDATE") if lock else sql.SQL(""))
    row = await (await conn.execute(query, (webhook_id,))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook subscription {webhook_id}")
    return dict(row)


def _check_private(caller: Principal, allow_private: bool | None) -> None:
    if allow_private and caller.role not in TRUSTED:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {caller.role!r} may not allow private addresses "
                                                       "(admins and operators may)")


async def _check_url(url: str, allow_private: bool, settings: Settings) -> None:
    # Resolving the host blocks: on a thread, not the event loop.
    problem = await asyncio.to_thread(url_problem, url, allow_private, settings.webhook_allow_http)
    if problem:
        raise invalid((("body", "url"), problem))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, summary="Subscribe a URL",
             responses={**forbidden(*ROLES), **_PRIVATE, **_BAD_URL})
async def create(body: WebhookIn, conn: Conn, caller: Manager, settings: Settings) -> WebhookCreated:
    """Subscribes ``url`` to ``event_types``. The answer carries the signing secret, shown this
    once (``POST /webhooks/{id}/secret`` makes a new one). Events of changes committed from now
    on are delivered; none from before. Audited as `webhook.subscribed`."""
    _check_private(caller, body.allow_private)
    await _check_url(body.url, body.allow_private, settings)
    row = await (await conn.execute(_INSERT, {
        **body.model_dump(), "secret": signing.new_secret(), "subject": caller.subject, "role": caller.role,
    })).fetchone()
    assert row is not None
    await audit.record(conn, caller, "webhook.subscribed", "webhook", row["id"],
                       {"url": body.url, "event_types": body.event_types, "allow_private": body.allow_private})
    return WebhookCreated.model_validate(row)


@router.get("", response_model=list[Webhook], summary="The caller's subscriptions (all: admins, operators)",
            responses={**forbidden(*ROLES),
                       200: {"content": {"application/json": {"example": [WEBHOOK_EXAMPLE]}}}})
async def list_webhooks(conn: Conn, caller: Manager) -> list[Webhook]:
    """Every subscription the caller manages, newest first; a disabled one says why."""
    query = sql.SQL("SELECT {} FROM webhook_subscriptions WHERE {} ORDER BY id DESC").format(
        sql.SQL(_COLUMNS), _owned(caller))
    return [Webhook.model_validate(r) for r in await (await conn.execute(query)).fetchall()]


@router.get("/{webhook_id}", response_model=Webhook, summary="One subscription",
            responses={**forbidden(*ROLES), **_NOT_FOUND})
async def get(webhook_id: WebhookId, conn: Conn, caller: Manager) -> Webhook:
    return Webhook.model_validate(await _get(conn, caller, webhook_id))


@router.patch("/{webhook_id}", response_model=Webhook, summary="Change, disable or enable again",
              responses={**forbidden(*ROLES), **_PRIVATE, **_NOT_FOUND, **_BAD_URL})
async def change(webhook_id: WebhookId, body: WebhookPatch, conn: Conn, caller: Manager,
                 settings: Settings) -> Webhook:
    """Changes the fields given. ``enabled: true`` enables a disabled subscription again (its
    failure clock restarts; events of the time it was disabled are not delivered);
    ``enabled: false`` disables it. An integrator changing the URL clears ``allow_private``.
    The URL is checked again. Audited as `webhook.changed`."""
    _check_private(caller, body.allow_private)
    row = await _get(conn, caller, webhook_id, lock=True)
    # An explicit null changes nothing (every field is required in the subscription).
    changes: dict[str, Any] = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if "url" in changes and caller.role not in TRUSTED:
        changes["allow_private"] = False
    allow_private = changes.get("allow_private", row["allow_private"])
    if "url" in changes or ("allow_private" in changes and not allow_private):
        await _check_url(changes.get("url") or row["url"], allow_private, settings)
    if changes.get("enabled") is True and not row["enabled"]:
        changes |= {"disabled_reason": None, "disabled_at": None, "failing_since": None}
    elif changes.get("enabled") is False and row["enabled"]:
        changes |= {"disabled_reason": f"disabled by {caller.subject}"}
    if changes:
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in changes)
        disabled_at = sql.SQL(", disabled_at = now()") if changes.get("enabled") is False and row["enabled"] \
            else sql.SQL("")
        await conn.execute(sql.SQL("UPDATE webhook_subscriptions SET {}{}, updated_at = now() WHERE id = %s").format(
            assignments, disabled_at), (*changes.values(), webhook_id))
        await audit.record(conn, caller, "webhook.changed", "webhook", webhook_id,
                           {k: v for k, v in changes.items() if k != "disabled_at"})
    return Webhook.model_validate(await _get(conn, caller, webhook_id))


@router.delete("/{webhook_id}", response_model=Webhook, summary="Unsubscribe",
               responses={**forbidden(*ROLES), **_NOT_FOUND})
async def delete(webhook_id: WebhookId, conn: Conn, caller: Manager) -> Webhook:
    """Deletes the subscription with its pending deliveries and its log, and answers it as it
    was. Audited as `webhook.deleted`."""
    row = await _get(conn, caller, webhook_id, lock=True)
    await conn.execute("DELETE FROM webhook_subscriptions WHERE id = %s", (webhook_id,))
    await audit.record(conn, caller, "webhook.deleted", "webhook", webhook_id, {"url": row["url"]})
    return Webhook.model_validate(row)


@router.post("/{webhook_id}/secret", response_model=WebhookSecret, summary="Rotate the signing secret",
             responses={**forbidden(*ROLES), **_NOT_FOUND})
async def rotate(webhook_id: WebhookId, conn: Conn, caller: Manager) -> WebhookSecret:
    """A new secret, shown this once; every attempt from now on (retries included) is signed
    with it. Audited as `webhook.secret_rotated`."""
    await _get(conn, caller, webhook_id, lock=True)
    secret = signing.new_secret()
    await conn.execute("UPDATE webhook_subscriptions SET secret = %s, updated_at = now() WHERE id = %s",
                       (secret, webhook_id))
    await audit.record(conn, caller, "webhook.secret_rotated", "webhook", webhook_id)
    return WebhookSecret(id=webhook_id, secret=secret)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, summary="The delivery log",
            responses={**forbidden(*ROLES), **_NOT_FOUND})
async def deliveries(webhook_id: WebhookId, conn: Conn, caller: Manager, paging: Paging,
                     state: Annotated[DeliveryState | None, Query(description="Only deliveries in this state")]
                     = None) -> DeliveryPage:
    """Newest event first: each delivery's state, attempts (time, HTTP status, latency, error)
    and next attempt. Cursor pagination like ``GET /alerts``."""
    await _get(conn, caller, webhook_id)
    rows = await (await conn.execute(_LOG, {"id": webhook_id, "below": paging.below, "state": state,
                                           "fetch": paging.fetch})).fetchall()
    items = [delivery(dict(r)) for r in rows[:paging.limit]]
    return DeliveryPage(items=items, next_cursor=paging.next_cursor([i.outbox_id for i in items], len(rows)))


@router.post("/{webhook_id}/deliveries/{outbox_id}/redeliver", status_code=status.HTTP_202_ACCEPTED,
             response_model=TestSent, summary="Deliver an event again",
             responses={**forbidden(*ROLES), **error(404, "No such subscription or event for it",
                                                     "webhook subscription 7 has no delivery of event 42"),
                        **error(409, "The subscription is disabled", "webhook subscription 7 is disabled: "
                                "enable it first (PATCH enabled: true)")})
async def redeliver(webhook_id: WebhookId, outbox_id: OutboxId, conn: Conn, caller: Manager) -> TestSent:
    """Queues the event for this subscription again, whatever its state (delivered, dead): same
    ``webhook-id``, a new retry window. Until it is delivered, later events of the same
    shipment wait. Audited as `webhook.redelivered`."""
    row = await _get(conn, caller, webhook_id)
    if not row["enabled"]:
        raise ConflictError(f"webhook subscription {webhook_id} is disabled: enable it first (PATCH enabled: true)")
    queued = await (await conn.execute(_REDELIVER, (webhook_id, outbox_id))).fetchone()
    if queued is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"webhook subscription {webhook_id} has no delivery of event {outbox_id}")
    await conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))
    await audit.record(conn, caller, "webhook.redelivered", "webhook", webhook_id, {"outbox_id": outbox_id})
    return TestSent(outbox_id=outbox_id, message_id=events.message_id(outbox_id))


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, response_model=TestSent,
             summary="Send a webhook.test ping", responses={**forbidden(*ROLES), **_NOT_FOUND})
async def test(webhook_id: WebhookId, conn: Conn, caller: Manager) -> TestSent:
    """Queues a ``webhook.test`` event for this subscription only (``data``: the subscription
    and who asked), delivered and logged like any other."""
    await _get(conn, caller, webhook_id)
    stamp = await (await conn.execute("SELECT webhook_time(now()) AS t")).fetchone()
    assert stamp is not None
    payload = {"type": events.TEST, "timestamp": stamp["t"], "data": {"webhook": webhook_id, "by": caller.subject}}
    row = await (await conn.execute(_PING, {"type": events.TEST, "payload": Jsonb(payload), "id": webhook_id})
                 ).fetchone()
    assert row is not None
    await conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))
    return TestSent(outbox_id=row["outbox_id"], message_id=events.message_id(row["outbox_id"]))
