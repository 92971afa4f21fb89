"""A local webhook receiver for the tests (http.server on a thread): records every request,
answers what the test tells it, and checks each signature twice: with the project's verifier
and with an independent computation written from the specification's text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracking_api.webhooks.signing import SignatureError, verify


@dataclass(frozen=True)
class Received:
    msg_id: str
    timestamp: str
    signature: str
    body: bytes
    answered: int
    verified: bool  # tracking_api.webhooks.signing.verify
    independent: bool  # the spec's scheme, computed here
    at: float  # time.time() on arrival

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


def independent_check(secret: str, msg_id: str, timestamp: str, body: bytes, signature_header: str) -> bool:
    """the Standard Webhooks specification, "Signature scheme": HMAC-SHA256 over ``msg_id.timestamp.payload``
    with the base64-decoded secret after ``whsec_``, sent as ``v1,<base64>`` among space-separated signatures."""
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return any(hmac.compare_digest(s.encode(), b"v1," + expected) for s in signature_header.split())


class Receiver:
    """``answer()`` gives each request's status (default 204); ``fail_rate`` answers 500 at random."""

    def __init__(self, fail_rate: float = 0.0, seed: int = 14, redirect_to: str | None = None) -> None:
        self.secret = ""
        self.fail_rate = fail_rate
        self.status = 204
        self.redirect_to = redirect_to
        # When set: the status for a body (its JSON), instead of ``status``.
        self.rule: Callable[[dict[str, Any]], int] | None = None
        self.received: list[Received] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ctt?x=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def _answer(self, body: bytes) -> int:
        with self._lock:
            if self.redirect_to:
                return 302
            if self.rule is not None:
                return self.rule(json.loads(body))
            return 500 if self._rng.random() < self.fail_rate else self.status

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                h = {k.lower(): v for k, v in self.headers.items()}
                msg_id, stamp, sig = h.get("webhook-id", ""), h.get("webhook-timestamp", ""), \
                    h.get("webhook-signature", "")
                try:
                    verify(receiver.secret, h, body)
                    verified = True
                except SignatureError:
                    verified = False
                independent = bool(receiver.secret) and independent_check(receiver.secret, msg_id, stamp, body, sig)
                status = receiver._answer(body)
                with receiver._lock:
                    receiver.received.append(Received(msg_id, stamp, sig, body, status, verified, independent,
                                                      time.time()))
                self.send_response(status)
                if status == 302 and receiver.redirect_to:
                    self.send_header("location", receiver.redirect_to)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
