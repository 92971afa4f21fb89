"""Web Push (VAPID, RFC 8030/8291/8292) to subscribed browsers when an alert opens:
an officer's or supervisor's browser for the openings of their region, an admin's or
operator's for every region; and when an alert escalates (its response time passed
unanswered, ``tracking_api.escalation``): the supervisors of the shipment's regions, the
officer it is assigned to, and admins and operators.

The stream's ``Hub`` hands every batch of alert changes to ``PushNotifier.notify``;
only ``opened`` and ``escalated`` events are pushed. Every API process hears every opening, so each
first claims its pushes in ``push_deliveries`` (one INSERT ... ON CONFLICT DO
NOTHING RETURNING per opening) and sends only what it claimed: at most one push
per subscription and opening, whatever the number of processes. pywebpush's
``webpush`` blocks (``requests``), so sends run on a small thread pool of their
own: a slow push service never holds up the stream or the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from tracking_api.addresses import address_problem as _address_problem
from tracking_api.config import ApiSettings
from tracking_api.i18n import FALLBACK, Messages, UnknownLanguageError
from tracking_api.metrics import PUSH_SENT
from tracking_api.stream import Event

log = structlog.get_logger("tracking_api.push")

# Kept this long by the push service while the browser is offline: an older
# alert is better read on the page than announced late.
TTL_S = 3600
URGENT = frozenset({"critical", "high"})
# The browser unsubscribed or the subscription expired (RFC 8030 §7.3): never again.
GONE = frozenset({404, 410})

# What is pushed.
PUSHED = frozenset({"opened", "escalated"})
# The subscriptions an opening (or escalation) concerns, claimed by this process. Plain-http
# endpoints only when this process allows them (the test suite's push service).
_CLAIM = """
WITH claimed AS (
    INSERT INTO push_deliveries (subscription_id, alert_event_id)
    SELECT p.id, %(event)s FROM push_subscriptions p
    WHERE (p.region IS NULL
           OR (p.region IN (SELECT region_code FROM shipment_regions WHERE shipment_id = %(shipment)s)
               AND (NOT %(escalated)s OR p.role = 'supervisor' OR p.subject = %(assignee)s)))
      AND (%(insecure)s OR p.endpoint ~* '^https://')
    ON CONFLICT DO NOTHING
    RETURNING subscription_id
)
SELECT p.id, p.endpoint, p.p256dh, p.auth, p.language FROM push_subscriptions p
JOIN claimed c ON c.subscription_id = p.id
"""
_ANSWERED = "UPDATE push_deliveries SET sent_at = now(), status = %s WHERE subscription_id = %s AND alert_event_id = %s"
_SUCCEEDED = "UPDATE push_subscriptions SET last_sent_at = now(), failures = 0 WHERE id = %s"
_FAILED = "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = %s"
_GONE = "DELETE FROM push_subscriptions WHERE id = %s"
# Notices about the system rather than one alert (a webhook subscription disabled): the
# control room's browsers, whoever subscribed from them as an admin or an operator.
_OPERATORS = """
SELECT id, endpoint, p256dh, auth, language FROM push_subscriptions
WHERE role IN ('admin', 'operator') AND (%(insecure)s OR endpoint ~* '^https://')
"""
# How many subscriptions an escalation was pushed to (claimed: each process adds its own).
_NOTIFIED = "UPDATE escalations SET notified = notified + %s WHERE alert_id = %s AND level = %s"


def b64url(raw: bytes) -> str:
    """Unpadded base64url, as browsers give and take push keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_or_create_key(path: Path) -> Vapid02:
    """The VAPID key pair in ``path`` (PEM), created there first if missing."""
    if not path.exists():
        _create_key(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path} is not an EC P-256 private key")
    return Vapid02(key)


def _create_key(path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name (mode 0600) and linked into place: of two
    # processes starting together, the second's link fails and both use the first key.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vapid-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def public_key(vapid: Vapid02) -> str:
    """The uncompressed P-256 point, base64url: the ``applicationServerKey`` of ``pushManager.subscribe``."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(raw)


def endpoint_problem(endpoint: str, allow_insecure: bool, push_hosts: Sequence[str]) -> str | None:
    """Why the API will not post to ``endpoint``, or None if it will: an https URL on a push
    service of ``push_hosts`` whose every address is public. ``allow_insecure`` (the test
    suite's local push service only; production refuses it) lifts all three checks."""
    try:
        parts = urlsplit(endpoint)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError:
        return f"endpoint {endpoint!r} is not a URL"
    if parts.scheme not in (("https", "http") if allow_insecure else ("https",)):
        return f"endpoint {endpoint!r} is not an https:// URL (push services are https)"
    if not host:
        return f"endpoint {endpoint!r} has no host"
    if allow_insecure:
        return None
    if not any(_host_matches(host, allowed) for allowed in push_hosts):
        return f"endpoint host {host!r} is not a known push service (CTT_PUSH_SERVICE_HOSTS)"
    return _address_problem(host)


def _host_matches(host: str, allowed: str) -> bool:
    """``allowed`` is a host name, or ``*.suffix`` for any host under that suffix."""
    host, allowed = host.lower().rstrip("."), allowed.lower()
    if allowed.startswith("*."):
        return host.endswith(allowed[1:]) and len(host) > len(allowed) - 1
    return host == allowed


def origin(endpoint: str) -> str:
    """The push service of ``endpoint``, for logs: the rest is a capability URL, not to be logged."""
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{parts.netloc}"


def payload(event: Event, t: Messages) -> dict[str, Any]:
    """The alert change as the stream carries it (the one alert object and ``event``), plus what
    the officer's service worker shows, in the subscriber's language (``push.*`` keys): a title,
    a line, where to open the alert, and a tag (one notification per alert)."""
    a = event.data
    words = {"type": t(f"alert.type.{a['type']}") if a.get("type") else "?",
             "severity": t(f"severity.{a['severity']}"), "reference": a["reference"], "device": a["device"]}
    title = "push.alert.escalated_title" if a.get("event") == "escalated" else "push.alert.title"
    return {**a, "title": _capitalised(t(title, **words)), "body": t("push.alert.body", **words),
            "url": f"/officer/#alert-{a['id']}", "tag": f"alert-{a['id']}", "language": t.code}


def _capitalised(text: str) -> str:
    # A severity word may open the sentence ("{severity} alert"): the catalogues keep it lower case.
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Target:
    """A claimed subscription."""

    id: int
    endpoint: str
    p256dh: str
    auth: str
    language: str = FALLBACK


class PushNotifier:
    """Pushes every alert opening and escalation to the subscriptions it concerns; fed by the Hub
    (``notify``)."""

    def __init__(self, settings: ApiSettings, pool: AsyncConnectionPool, vapid: Vapid02) -> None:
        self._settings = settings
        self._pool = pool
        self._vapid = vapid
        self.public_key = public_key(vapid)
        # A pool of its own: its threads wait on push services, never on the default executor's work.
        self._executor = ThreadPoolExecutor(settings.push_concurrency, thread_name_prefix="ctt-push")
        self._tasks: set[asyncio.Task[None]] = set()
        self._local = threading.local()
        self._catalogues: dict[str, Messages] = {}

    def messages(self, code: str) -> Messages:
        """The catalogue of ``code``; English if it has none (a catalogue removed since the subscription)."""
        if code not in self._catalogues:
            try:
                self._catalogues[code] = Messages(self._settings.dashboards_dir, code)
            except UnknownLanguageError:
                log.warning("push in English: no catalogue for the subscription's language", language=code)
                return self.messages(FALLBACK)
        return self._catalogues[code]

    @classmethod
    def create(cls, settings: ApiSettings, pool: AsyncConnectionPool) -> PushNotifier | None:
        """A notifier with the configured key; None (logged) if the key can be neither read nor
        created: the API then runs without Web Push rather than not at all."""
        try:
            vapid = load_or_create_key(settings.vapid_private_key_file)
        except (OSError, ValueError) as exc:
            log.error("web push disabled: no VAPID key", file=str(settings.vapid_private_key_file), error=str(exc))
            return None
        return cls(settings, pool, vapid)

    def notify(self, events: Iterable[Event]) -> None:
        """Hub listener: start pushing each alert opening or escalation among ``events`` (returns at once)."""
        for event in events:
            if event.kind == "alert" and event.data.get("event") in PUSHED and event.row is not None:
                task = asyncio.create_task(self._deliver(event))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    async def stop(self) -> None:
        """Abandon the pushes not sent yet (their claims stay: at most once) and the threads."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("push delivery failed", error=repr(exc), exc_info=exc)

    async def _deliver(self, event: Event) -> None:
        assert event.row is not None
        targets = await self._claim(event)
        if targets:
            bodies = {code: json.dumps(payload(event, self.messages(code))) for code in {t.language for t in targets}}
            urgency = "high" if event.data["severity"] in URGENT else "normal"
            await asyncio.gather(*(self._send(t, event.row, bodies[t.language], urgency) for t in targets))

    async def _claim(self, event: Event) -> list[Target]:
        escalated = event.data.get("event") == "escalated"
        params = {"event": event.row, "shipment": event.shipment, "escalated": escalated,
                  "assignee": event.data.get("assignee"), "insecure": self._settings.push_allow_insecure_endpoints}
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_CLAIM, params)).fetchall()
            if escalated and rows:
                await conn.execute(_NOTIFIED, (len(rows), event.data["id"], event.data["escalation_level"]))
        return [Target(**row) for row in rows]

    async def _send(self, target: Target, event_id: int, body: str, urgency: str) -> None:
        loop = asyncio.get_running_loop()
        status, error = await loop.run_in_executor(self._executor, partial(self._post, target, body, urgency))
        await self._record(target, event_id, status, error)

    def _post(self, target: Target, body: str, urgency: str) -> tuple[int | None, str | None]:
        """One push (blocking, on the pool): the push service's status, None if it did not answer,
        and what went wrong."""
        subscription = {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
        # Again at each send: the host's addresses may have changed since the subscription (DNS rebinding).
        problem = endpoint_problem(target.endpoint, self._settings.push_allow_insecure_endpoints,
                                   self._settings.push_service_hosts)
        if problem:
            return None, problem
        try:
            response = webpush(subscription, data=body, vapid_private_key=self._vapid,
                               vapid_claims={"sub": self._settings.vapid_subject}, ttl=TTL_S,
                               headers={"Urgency": urgency}, timeout=self._settings.push_timeout_s,
                               requests_session=self._session())
        except WebPushException as exc:  # an answer above 202
            return exc.status_code, exc.message
        except Exception as exc:  # noqa: BLE001 - network, TLS, redirect, key: counted and logged, never raised
            return None, repr(exc)
        return int(response.status_code), None

    def _session(self) -> requests.Session:
        # One per pool thread (a Session is not thread-safe), keeping connections to push services open.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.max_redirects = 0  # a push service does not redirect; following could reach internal hosts
        return session

    async def notify_operators(self, notice: str, params: dict[str, object], tag: str, url: str = "/") -> int:
        """Push a notice that concerns no one alert (a webhook subscription disabled) to every
        admin's and operator's browser, in each one's language (``notice.<notice>.title`` and
        ``.body`` with ``params``); the number the push services accepted. Once per notice: the
        caller is the one process that made the change."""
        query = {"insecure": self._settings.push_allow_insecure_endpoints}
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_OPERATORS, query)).fetchall()
        targets = [Target(**row) for row in rows]
        messages = {code: json.dumps({"title": t(f"notice.{notice}.title", **params),
                                      "body": t(f"notice.{notice}.body", **params), "tag": tag, "url": url,
                                      "severity": "high", "language": t.code})
                    for code in {target.language for target in targets} for t in (self.messages(code),)}
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*(loop.run_in_executor(
            self._executor, partial(self._post, t, messages[t.language], "high")) for t in targets))
        accepted = 0
        for target, (status, error) in zip(targets, answers, strict=True):
            accepted += await self._account(target, status, error) == "sent"
        return accepted

    async def _record(self, target: Target, event_id: int, status: int | None, error: str | None) -> None:
        if await self._account(target, status, error) != "gone":
            async with self._pool.connection() as conn:
                await conn.execute(_ANSWERED, (status, target.id, event_id))

    async def _account(self, target: Target, status: int | None, error: str | None) -> str:
        """Counts, logs and keeps the subscription's health for one push's answer; its outcome."""
        outcome = "unreachable" if status is None else "gone" if status in GONE else \
            "sent" if status < 300 else "rejected"
        PUSH_SENT.labels(outcome).inc()
        async with self._pool.connection() as conn:
            if outcome == "gone":
                await conn.execute(_GONE, (target.id,))
            else:
                await conn.execute(_SUCCEEDED if outcome == "sent" else _FAILED, (target.id,))
        if outcome == "gone":
            log.info("push subscription gone, deleted", subscription=target.id, status=status)
        elif outcome != "sent":
            log.warning("push not delivered", outcome=outcome, status=status, subscription=target.id,
                        push_service=origin(target.endpoint), error=error)
        return outcome
