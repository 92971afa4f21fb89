"""One webhook POST (blocking: the dispatcher runs it on a thread pool). The host is resolved
once, every address checked (unless the subscription allows private ones) and the connection
made to a checked address, so a name that changes its answer between the check and the
connection (DNS rebinding) reaches nothing unchecked. ``http.client`` never follows a
redirect: a 3xx is a failed attempt, as the specification advises."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from tracking_api.addresses import AddressError, IPAddress, public_addresses, resolve
from tracking_api.webhooks.urls import Target, parse

_TLS = ssl.create_default_context()
_USER_AGENT = "ctt-webhooks/1"
_ERROR_MAX = 500  # characters of an error kept in the log


@dataclass(frozen=True)
class Answer:
    """An attempt's outcome: the receiver's status (None: no answer) and what went wrong."""

    status: int | None
    error: str | None
    latency_ms: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to ``address`` for ``host`` (the Host header names the host)."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(_Pinned):
    """The same over TLS, the certificate checked against the host name (SNI too)."""

    def connect(self) -> None:
        super().connect()
        self.sock = _TLS.wrap_socket(self.sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, allow_private: bool,
         allow_http: bool) -> Answer:
    """POSTs ``body`` (JSON) to ``url``; never raises for the receiver's or the network's faults."""
    started = time.perf_counter()
    try:
        target = parse(url, allow_http or allow_private)
        addresses = resolve(target.host, target.port) if allow_private else public_addresses(target.host, target.port)
        status = _send(target, addresses[0], body, headers, timeout_s)
    except (AddressError, ValueError, OSError, http.client.HTTPException) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:_ERROR_MAX], _ms(started))
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Answer(status, error, _ms(started))


def _send(target: Target, address: IPAddress, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    kind = _PinnedTLS if target.scheme == "https" else _Pinned
    conn = kind(target.host, target.port, address, timeout_s)
    try:
        conn.request("POST", target.path, body=body, headers={
            **headers, "content-type": "application/json", "user-agent": _USER_AGENT})
        response = conn.getresponse()
        response.read(64 * 1024)  # the receiver's answer is not used; read a little so it can finish
        return response.status
    finally:
        conn.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
