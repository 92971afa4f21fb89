"""ASGI app ``tracking_api.main:app``: transit resources under ``/api/v1``
(routers in ``tracking_api/routers/``), health, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tracking_api import pages
from tracking_api.config import ApiSettings
from tracking_api.metrics import RequestMetrics
from tracking_api.push import PushNotifier
from tracking_api.routers import alerts, geography, kpi, push, session, shipments, stream, tracks
from tracking_api.schemas.errors import UNAUTHORIZED, error, validation_error_handler
from tracking_api.stream import Hub

API_PREFIX = "/api/v1"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = ApiSettings()
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=10, open=False,
                               kwargs={"row_factory": dict_row})
    await pool.open(wait=False)
    hub = Hub(settings.database_url, pool)
    notifier = PushNotifier.create(settings, pool)  # None: Web Push off (logged), the rest runs
    if notifier is not None:
        hub.alert_listeners.append(notifier.notify)
    hub.start()
    app.state.settings, app.state.pool, app.state.hub, app.state.push = settings, pool, hub, notifier
    try:
        yield
    finally:
        await hub.stop()
        if notifier is not None:
            await notifier.stop()
        await pool.close()


# Every resource operation may meet a body that is not JSON (400) or a missing or bad token (401).
COMMON_ERRORS = {**error(400, "The body is not parseable JSON", "There was an error parsing the body"),
                 **UNAUTHORIZED}
app = FastAPI(title="Cargo track-and-trace API", version="0.1.0", lifespan=lifespan,
              openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs")
app.add_exception_handler(RequestValidationError, validation_error_handler)
app.add_middleware(RequestMetrics)
for module in (session, geography, shipments, tracks, alerts, kpi, push, stream):
    app.include_router(module.router, prefix=API_PREFIX, responses=COMMON_ERRORS)


@app.get(f"{API_PREFIX}/healthz", tags=["operations"], summary="The process is up",
         responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get(f"{API_PREFIX}/readyz", tags=["operations"],
         summary="Database and broker are reachable, and the live stream is listening",
         responses={200: {"content": {"application/json": {"example": {
                        "status": "ok", "checks": {"database": True, "broker": True, "stream": True}}}}},
                    503: {"description": "A dependency is unreachable; the body names it",
                          "content": {"application/json": {"example": {
                              "status": "unavailable", "checks": {"database": True, "broker": False,
                                                                  "stream": True}}}}}})
async def readyz() -> JSONResponse:
    settings: ApiSettings = app.state.settings
    hub: Hub = app.state.hub
    checks = {"database": await _database_ok(settings), "broker": await _broker_ok(settings),
              "stream": hub.ready.is_set()}
    ok = all(checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response,
         responses={200: {"content": {"text/plain": {"example": "# TYPE process_cpu_seconds_total counter\n"
                                                                "process_cpu_seconds_total 1.25\n"}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _database_ok(settings: ApiSettings) -> bool:
    pool: AsyncConnectionPool = app.state.pool
    try:
        async with asyncio.timeout(settings.readiness_timeout_s), pool.connection() as conn:
            await conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


async def _broker_ok(settings: ApiSettings) -> bool:
    try:
        async with asyncio.timeout(settings.readiness_timeout_s):
            _, writer = await asyncio.open_connection(settings.broker_host, settings.broker_port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


# After every API route: the control room's mount at "/" matches any path.
pages.mount(app, ApiSettings(), API_PREFIX)
