"""The ASGI app: ``create_app(settings)`` builds it; ``tracking_api.main:app`` is the
one uvicorn runs. Transit resources under ``/api/v1`` (routers in
``tracking_api/routers/``), health, readiness and metrics, and the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ctt_common import logs
from tracking_api import pages
from tracking_api.body_limit import BodySizeLimit
from tracking_api.config import ApiSettings
from tracking_api.deps import Services
from tracking_api.escalation import Escalator
from tracking_api.login_throttle import LoginThrottle
from tracking_api.metrics import RequestMetrics
from tracking_api.push import PushNotifier
from tracking_api.routers import (
    alerts,
    audit,
    cases,
    countries,
    declarations,
    devices,
    escalation,
    exports,
    geography,
    kpi,
    operations,
    places,
    push,
    risk,
    session,
    shipments,
    stream,
    tracks,
    units,
    webhooks,
    workers,
)
from tracking_api.schemas.errors import UNAUTHORIZED, error, validation_error_handler
from tracking_api.services.errors import ServiceError
from tracking_api.stream import Hub
from tracking_api.webhooks.dispatcher import Dispatcher

API_PREFIX = "/api/v1"
# Every resource operation may meet a body that is not JSON (400) or a missing or bad token (401).
COMMON_ERRORS = {**error(400, "The body is not parseable JSON", "There was an error parsing the body"),
                 **UNAUTHORIZED,
                 **error(413, "The body is larger than CTT_MAX_BODY_BYTES", "request body larger than 1048576 bytes")}

log = structlog.get_logger("tracking_api.main")
# Never logged (the database URL is logged without its password).
_SECRETS = {"jwt_secret", "database_url"}


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API with its routes and pages. Without ``settings`` they are read from the
    ``CTT_*`` environment when the app starts (each start: tests set it after import)."""
    app = FastAPI(title="Cargo track-and-trace API", version="0.1.0", lifespan=_lifespan(settings),
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs")
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_middleware(RequestMetrics)
    app.add_middleware(BodySizeLimit, max_bytes=(settings or ApiSettings()).max_body_bytes)
    for module in (session, geography, countries, shipments, declarations, tracks, alerts, units, cases, escalation,
                   kpi, risk, push, stream, audit, workers, webhooks, exports, devices, places):
        app.include_router(module.router, prefix=API_PREFIX, responses=COMMON_ERRORS)
    app.include_router(operations.router, prefix=API_PREFIX)
    app.include_router(operations.metrics_router)
    # After every API route: the control room's mount at "/" matches any path.
    pages.mount(app, settings or ApiSettings(), API_PREFIX)
    return app


def _lifespan(configured: ApiSettings | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = configured if configured is not None else ApiSettings()
        logs.configure(settings.log_level)
        async with _services(settings) as services:
            app.state.services = services
            log.info("api started", database=_without_password(settings.database_url),
                     broker=f"{settings.broker_host}:{settings.broker_port}", push=services.push is not None)
            log.debug("api settings", **settings.model_dump(mode="json", exclude=_SECRETS))
            yield
        log.info("api stopped")

    return lifespan


@asynccontextmanager
async def _services(settings: ApiSettings) -> AsyncIterator[Services]:
    # check: a pooled connection is tried (an empty query) before a request gets it, so one
    # the server's death broke (a failover) is replaced instead of failing the request.
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=10, open=False,
                               kwargs={"row_factory": dict_row}, check=AsyncConnectionPool.check_connection)
    await pool.open(wait=False)
    hub = Hub(settings.database_url, pool)
    notifier = PushNotifier.create(settings, pool)  # None: Web Push off (logged), the rest runs
    if notifier is not None:
        hub.alert_listeners.append(notifier.notify)
    hub.start()
    told = _operators_told(notifier)
    dispatcher = Dispatcher(settings, pool, on_disabled=told) if settings.webhooks_dispatch else None
    if dispatcher is not None:
        dispatcher.start()
    escalator = Escalator(settings, pool)
    escalator.start()
    try:
        yield Services(settings, pool, hub, notifier,
                       LoginThrottle(settings.login_max_failures, settings.login_window_s))
    finally:
        await escalator.stop()
        if dispatcher is not None:
            await dispatcher.stop()
        await hub.stop()
        if notifier is not None:
            await notifier.stop()
        await pool.close()


def _operators_told(notifier: PushNotifier | None) -> Callable[[int, str], Awaitable[int]] | None:
    """How the operators learn that a webhook subscription was disabled: a push to their browsers."""
    if notifier is None:
        return None

    async def tell(subscription_id: int, reason: str) -> int:
        return await notifier.notify_operators(f"Webhook subscription {subscription_id} disabled", reason,
                                               tag=f"webhook-{subscription_id}", url=f"/#webhook-{subscription_id}")
    return tell


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    """A service's refusal, answered like an HTTPException: ``{"detail": message}``."""
    assert isinstance(exc, ServiceError)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.partition(':')[0]}{at}{host}" if at else url


app = create_app()
