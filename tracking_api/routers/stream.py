"""``GET /stream``: server-sent events of positions and alert changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from tracking_api.auth import Principal, TokenError, verify
from tracking_api.deps import LiveHub, Settings, bearer
from tracking_api.stream import Hub, Subscriber

router = APIRouter(tags=["live"])


def stream_caller(settings: Settings,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                  access_token: Annotated[str | None, Query(description="For browsers' EventSource, which "
                                                                        "cannot send headers")] = None,
                  ) -> Principal:
    token = credentials.credentials if credentials else access_token
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token (header or access_token)",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify(settings, token)
    except TokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc


@router.get(
    "/stream", summary="Live positions and alert changes (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"example": (
        'event: position\ndata: {"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[37.47,-2.08]},'
        '"properties":{"shipment":7,"reference":"26KE0000000000001","device":"trk-0042",'
        '"ts":"2026-11-23T07:00:05Z","spd":61.5,"hdg":310.0,"state":"online"}}\n\n'
        'id: 118\nevent: alert\ndata: {"id":42,"type":"seal_breach","shipment":7,...,"event":"opened"}\n\n'
        ': keep-alive\n\n')}},
        "description": "An endless event stream. `position` events (no id) carry a GeoJSON Feature; "
                       "`alert` events carry the alert object with `event` (opened, ended, updated, "
                       "withdrawn, contested, acknowledged, resolved) and an id (the change's sequence "
                       "number) to resume from. `resync` (only right after connecting with a "
                       "`Last-Event-ID`): changes after that id are no longer kept; reload the alerts."},
        401: {"description": "Missing or invalid token"}},
)
async def stream(request: Request, hub: LiveHub, settings: Settings,
                 caller: Annotated[Principal, Depends(stream_caller)],
                 last_event_id: Annotated[int | None, Header(ge=0, description="Resume after this alert event")]
                 = None,
                 kinds: Annotated[list[Literal["position", "alert"]] | None,
                                  Query(alias="kind", description="Only these events (repeatable); default both. "
                                                                  "An officer's phone wants only `alert`.")]
                 = None) -> StreamingResponse:
    """On connect: the alert changes after ``Last-Event-ID`` (if given; all of them, or a
    ``resync`` event if some are no longer kept), then the latest position of every visible
    in-transit truck, then live events as they happen; a comment line every 15 s keeps
    proxies from closing the connection. Officers get only their region's shipments."""
    wanted = frozenset(kinds or ("position", "alert"))
    sub = hub.subscribe(caller, wanted)  # before the replay, so that nothing falls between the two
    resume = last_event_id if "alert" in wanted else None
    keepalive_s = settings.stream_keepalive_s
    return StreamingResponse(_events(request, hub, sub, resume, keepalive_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(request: Request, hub: Hub, sub: Subscriber, resume: int | None,
                  keepalive_s: float) -> AsyncIterator[bytes]:
    sent = resume or 0  # the newest alert change sent; the live queue may repeat the replay's last ones
    try:
        yield b"retry: 2000\n\n"
        if resume is not None:
            async for event in hub.replay(sub.caller, resume):  # streamed: never the whole gap in memory
                sent = event.id or sent  # ascending; a resync sets it to the newest change kept
                yield event.encode()
        if "position" in sub.kinds:
            for event in hub.snapshot(sub.caller):
                yield event.encode()
        while not sub.dropped:
            try:
                event = await asyncio.wait_for(sub.queue.get(), keepalive_s)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if event.id is not None and event.id <= sent:
                continue  # already in the replay
            yield event.encode()
    finally:
        hub.unsubscribe(sub)
