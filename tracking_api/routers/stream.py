"""``GET /stream``: server-sent events of positions and alert changes; ``POST /stream/tickets``:
the single-use ticket a browser opens it with (``tracking_api.stream_tickets``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from tracking_api import stream_tickets
from tracking_api.auth import Principal
from tracking_api.deps import App, Caller, Conn, LiveHub, Settings, bearer, invalid_token, principal, refuse_revoked
from tracking_api.stream import Event, Hub, Subscriber

router = APIRouter(tags=["live"])


class StreamTicket(BaseModel):
    ticket: str = Field(description="Opens one stream: `GET /stream?ticket=...`, once, before `expires_at`")
    expires_at: datetime

    model_config = {"json_schema_extra": {"examples": [{"ticket": "kq3N0l0Zb8a5Yc1Vt2QxUu7Wm4Hs9Jd6Fg0Re3Ty5Io",
                                                        "expires_at": "2026-11-23T07:00:30Z"}]}}


@router.post("/stream/tickets", response_model=StreamTicket, status_code=status.HTTP_201_CREATED,
             summary="A single-use ticket to open the live stream (for browsers' EventSource)")
async def ticket(caller: Caller, conn: Conn, settings: Settings) -> StreamTicket:
    """EventSource cannot send headers, and a token in a URL lands in access logs: the
    ticket opens one stream within ``CTT_STREAM_TICKET_TTL_S`` seconds and nothing after."""
    issued, expires_at = await stream_tickets.issue(conn, caller, settings.stream_ticket_ttl_s)
    # Committed before the client has it: it may open the stream (another connection) at once.
    await conn.commit()
    return StreamTicket(ticket=issued, expires_at=expires_at)


async def stream_caller(app: App,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                        ticket: Annotated[str | None, Query(max_length=100, description=(
                            "From `POST /stream/tickets`, for browsers' EventSource (which cannot send "
                            "headers); other clients send the bearer token in the header"))] = None,
                        ) -> Principal:
    """The stream's caller, from the bearer header or a ticket (used up here). A pooled
    connection only for the redemption: the stream itself holds none."""
    if credentials is not None or ticket is None:
        return await principal(app, credentials)
    async with app.pool.connection() as conn:
        try:
            caller = await stream_tickets.redeem(conn, ticket)  # type: ignore[arg-type]
        except stream_tickets.TicketError as exc:
            raise invalid_token(str(exc)) from exc
    await refuse_revoked(app, caller)  # revoked after the ticket was issued
    return caller


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
                       "`Last-Event-ID`): changes after that id are no longer kept; reload the alerts. "
                       "`end` (then the stream closes): its token expired or was revoked; "
                       "`data` says which."},
        401: {"description": "Missing or invalid token"}},
)
async def stream(request: Request, hub: LiveHub, settings: Settings,
                 caller: Annotated[Principal, Depends(stream_caller)],
                 last_event_id: Annotated[int | None, Header(ge=0, description="Resume after this alert event")]
                 = None,
                 resume_after: Annotated[int | None, Query(alias="last_event_id", ge=0, description=(
                     "`Last-Event-ID` for a client that reopens the stream with a new ticket (a new "
                     "EventSource sends no header); the header wins"))] = None,
                 kinds: Annotated[list[Literal["position", "alert"]] | None,
                                  Query(alias="kind", description="Only these events (repeatable); default both. "
                                                                  "An officer's phone wants only `alert`.")]
                 = None) -> StreamingResponse:
    """On connect: the alert changes after ``Last-Event-ID`` (if given; all of them, or a
    ``resync`` event if some are no longer kept), then the latest position of every visible
    in-transit truck, then live events as they happen; a comment line every 15 s keeps
    proxies from closing the connection. Officers get only their region's shipments. The
    stream ends (an ``end`` event) when its token expires or is revoked."""
    wanted = frozenset(kinds or ("position", "alert"))
    sub = hub.subscribe(caller, wanted)  # before the replay, so that nothing falls between the two
    resume = (last_event_id if last_event_id is not None else resume_after) if "alert" in wanted else None
    keepalive_s = settings.stream_keepalive_s
    return StreamingResponse(_events(request, hub, sub, resume, keepalive_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _end(reason: str) -> bytes:
    return f'event: end\ndata: {{"reason": "{reason}"}}\n\n'.encode()


def _expired(sub: Subscriber) -> bool:
    return sub.caller.expires_at is not None and sub.caller.expires_at <= time.time()


def _wait_s(sub: Subscriber, keepalive_s: float) -> float:
    """Until the next keep-alive, or the token's expiry if sooner."""
    if sub.caller.expires_at is None:
        return keepalive_s
    return max(0.0, min(keepalive_s, sub.caller.expires_at - time.time()))


async def _next(sub: Subscriber, keepalive_s: float) -> Event | None:
    """The subscriber's next event, or None when it is time for a keep-alive (or its token's end)."""
    try:
        return await asyncio.wait_for(sub.queue.get(), _wait_s(sub, keepalive_s))
    except TimeoutError:
        return None


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
            live = await _next(sub, keepalive_s)
            if sub.ended or _expired(sub):
                yield _end(sub.ended or "token expired")
                return
            if live is None:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if live.id is not None and live.id <= sent:
                continue  # already in the replay
            yield live.encode()
    finally:
        hub.unsubscribe(sub)
