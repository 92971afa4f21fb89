"""``/push``: Web Push subscriptions of officers' (and the control room's) browsers.

A page fetches the VAPID public key, subscribes with its browser's push service
(``pushManager.subscribe``) and posts the resulting PushSubscription here; from
then on every alert opening of the caller's region (an officer's; every region
for admins and operators) is pushed to that browser (``tracking_api/push.py``,
``docs/push.md``). Integrators do not act on alerts and cannot subscribe.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from tracking_api import audit, i18n
from tracking_api.access import GRANTS, REGION_SCOPED
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, Push, Settings, require
from tracking_api.push import endpoint_problem, origin
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, invalid, validation
from tracking_api.schemas.push import (
    ENDPOINT_MAX,
    ENDPOINT_PATTERN,
    PushSubscriptionRequest,
    Subscribed,
    VapidPublicKey,
)

router = APIRouter(prefix="/push", tags=["push"])

Subscriber = Annotated[Principal, Depends(require(*GRANTS["act_on_alerts"]))]
USER_AGENT_MAX = 512

_UPSERT = """
INSERT INTO push_subscriptions (subject, role, region, endpoint, p256dh, auth, user_agent, language)
VALUES (%(subject)s, %(role)s, %(region)s, %(endpoint)s, %(p256dh)s, %(auth)s, %(user_agent)s, %(language)s)
ON CONFLICT (endpoint) DO UPDATE
SET subject = excluded.subject, role = excluded.role, region = excluded.region, p256dh = excluded.p256dh,
    auth = excluded.auth, user_agent = excluded.user_agent, language = excluded.language, failures = 0
RETURNING id, region, language
"""
# Past the per-user cap, the subscriptions subscribed longest ago go (not the one just made).
_OVER_CAP = """
DELETE FROM push_subscriptions WHERE id IN (
    SELECT id FROM push_subscriptions WHERE subject = %(subject)s ORDER BY created_at DESC, id DESC OFFSET %(cap)s)
RETURNING id, region, endpoint
"""
_DELETE = "DELETE FROM push_subscriptions WHERE endpoint = %s AND subject = %s RETURNING id, region, language"

_UNAVAILABLE = error(503, "Web Push is off on this server: its VAPID key can be neither read nor created",
                     "web push is not available on this server")
_INVALID = validation("The body is not a browser's PushSubscription: an endpoint that is not https, a key that "
                      "is not base64url or has the wrong length, an unknown field", ["body", "endpoint"],
                      "endpoint 'http://10.1.2.3/hook' is not an https:// URL (push services are https)")
_NOT_SUBSCRIBED = error(404, "The caller has no subscription with this endpoint", "no push subscription of "
                        "'officer.malaba' has this endpoint")


@router.get("/vapid-public-key", summary="The key a browser subscribes with (applicationServerKey)",
            response_model=VapidPublicKey, responses={**UNAUTHORIZED, **_UNAVAILABLE})
async def vapid_public_key(notifier: Push, caller: Caller) -> VapidPublicKey:
    """The server's VAPID public key: every push is signed with its private half, and
    push services refuse pushes to a subscription made with another key."""
    if notifier is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "web push is not available on this server")
    return VapidPublicKey(public_key=notifier.public_key)


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, response_model=Subscribed,
             summary="Subscribe this browser to alert openings (Web Push)",
             responses={**UNAUTHORIZED, **forbidden(*GRANTS["act_on_alerts"]), **_INVALID})
async def subscribe(request: Request, conn: Conn, caller: Subscriber, body: PushSubscriptionRequest,
                    settings: Settings) -> Subscribed:
    """Stores the browser's PushSubscription for the caller: an officer hears of the
    openings of their region (from the token), admins and operators of every region.
    The endpoint identifies the browser: subscribing it again (a reload, another user
    logging in on it) replaces the owner, keys and language. Audited as `push.subscribed`.
    Notifications are written in `language` (a catalogue's code), else in the best match of
    the request's `Accept-Language` among the catalogues, else in English.

    The endpoint must be an https URL of a known push service (``CTT_PUSH_SERVICE_HOSTS``)
    resolving only to public addresses: the API posts to it, and must not be made to post
    into the internal network. A user holds at most ``CTT_PUSH_MAX_SUBSCRIPTIONS``
    subscriptions: a new browser past the cap replaces the oldest (audited
    `push.unsubscribed`, reason `replaced`), so that a lost phone never locks a user out."""
    problem = endpoint_problem(body.endpoint, settings.push_allow_insecure_endpoints, settings.push_service_hosts)
    if problem:
        raise invalid((("body", "endpoint"), problem))
    codes = [code for code, _ in i18n.available(settings.dashboards_dir)]
    if body.language is not None and body.language not in codes:
        raise invalid((("body", "language"), f"language {body.language!r} has no catalogue (there are: "
                                             f"{', '.join(codes)})"))
    language = body.language or i18n.negotiate(request.headers.get("accept-language"), codes)
    region = caller.region if caller.role in REGION_SCOPED else None
    user_agent = (request.headers.get("user-agent") or "")[:USER_AGENT_MAX] or None
    row = await (await conn.execute(_UPSERT, {
        "subject": caller.subject, "role": caller.role, "region": region, "endpoint": body.endpoint,
        "p256dh": body.keys.p256dh, "auth": body.keys.auth, "user_agent": user_agent,
        "language": language})).fetchone()
    assert row is not None
    # The push service, not the endpoint: the endpoint is a capability, not for the audit log.
    await audit.record(conn, caller, "push.subscribed", "push_subscription", row["id"],
                       {"region": region, "push_service": origin(body.endpoint)})
    replaced = await (await conn.execute(_OVER_CAP, {"subject": caller.subject,
                                                     "cap": settings.push_max_subscriptions})).fetchall()
    for old in replaced:
        await audit.record(conn, caller, "push.unsubscribed", "push_subscription", old["id"],
                           {"region": old["region"], "push_service": origin(old["endpoint"]),
                            "reason": f"replaced: more than {settings.push_max_subscriptions} subscriptions"})
    return Subscribed.model_validate(row)


@router.delete("/subscriptions", response_model=Subscribed, summary="Unsubscribe a browser of the caller's",
               responses={**UNAUTHORIZED, **forbidden(*GRANTS["act_on_alerts"]), **_NOT_SUBSCRIBED,
                          **validation("The endpoint parameter is missing or not a URL", ["query", "endpoint"],
                                       "Field required")})
async def unsubscribe(
    conn: Conn, caller: Subscriber,
    endpoint: Annotated[str, Query(min_length=1, max_length=ENDPOINT_MAX, pattern=ENDPOINT_PATTERN,
                                   description="The `endpoint` of the browser's PushSubscription")],
) -> Subscribed:
    """Deletes the caller's subscription with this endpoint (a subscription of another
    user is a 404) and answers it. Audited as `push.unsubscribed`."""
    row = await (await conn.execute(_DELETE, (endpoint, caller.subject))).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no push subscription of {caller.subject!r} has this endpoint")
    await audit.record(conn, caller, "push.unsubscribed", "push_subscription", row["id"],
                       {"region": row["region"], "push_service": origin(endpoint)})
    return Subscribed.model_validate(row)
