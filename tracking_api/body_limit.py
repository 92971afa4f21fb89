"""A cap on request bodies (``CTT_MAX_BODY_BYTES``): larger ones are a 413 before any route
reads them, whether announced by ``Content-Length`` or streamed in chunks. Nothing the API
accepts comes near it (the largest bodies are geometry, capped at ``MAX_VERTICES``), except
the routes given their own cap (photos: ``CTT_PHOTO_MAX_BYTES``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """ASGI middleware: 413 ``{"detail"}`` for a body over ``max_bytes``, or over the cap of the
    first ``(method, path pattern, bytes)`` of ``routes`` the request matches (fully)."""

    def __init__(self, app: ASGIApp, max_bytes: int, routes: Sequence[tuple[str, str, int]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = [(method, re.compile(pattern), cap) for method, pattern, cap in routes]

    def cap(self, method: str, path: str) -> int:
        """The largest body, bytes, a request of ``method`` to ``path`` may send."""
        return next((cap for m, pattern, cap in self.routes if m == method and pattern.fullmatch(path)),
                    self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.cap(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        started = refused = False
        seen = 0

        async def counted() -> Message:
            # Past the cap: answer 413 now, and tell the route the client went away (FastAPI
            # turns an exception raised while reading into a 400).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not started:
                    refused = True
                    await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
