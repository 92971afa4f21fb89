"""Health, readiness and metrics: what orchestrators and Prometheus poll."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool

from tracking_api.config import ApiSettings
from tracking_api.deps import App

router = APIRouter(tags=["operations"])
# At the root, where Prometheus looks by default (not under the API prefix).
metrics_router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up",
            responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and broker are reachable, and the live stream is listening",
            responses={200: {"content": {"application/json": {"example": {
                           "status": "ok", "checks": {"database": True, "broker": True, "stream": True}}}}},
                       503: {"description": "A dependency is unreachable; the body names it",
                             "content": {"application/json": {"example": {
                                 "status": "unavailable", "checks": {"database": True, "broker": False,
                                                                     "stream": True}}}}}})
async def readyz(app: App) -> JSONResponse:
    checks = {"database": await _database_ok(app.settings, app.pool), "broker": await _broker_ok(app.settings),
              "stream": app.hub.ready.is_set()}
    ok = all(checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@metrics_router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                    responses={200: {"content": {"text/plain": {
                        "example": "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n"}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _database_ok(settings: ApiSettings, pool: AsyncConnectionPool) -> bool:
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
