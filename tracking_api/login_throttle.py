"""Refused logins per client address: past ``max_failures`` within ``window_s`` seconds,
``POST /session`` from that address is a 429 with ``Retry-After`` until the oldest
failure leaves the window. Kept in each API process's memory (with N processes an
address gets up to N times the budget); the client address is the connection's, or the
proxy's ``X-Forwarded-For`` when uvicorn runs with ``--proxy-headers``."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

# Addresses remembered at most; the least recently refused are forgotten first.
MAX_ADDRESSES = 100_000


class LoginThrottle:
    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        now = time.monotonic() if now is None else now
        if address not in self._failures:
            return None
        failures = self._recent(address, now)
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def failed(self, address: str, now: float | None = None) -> None:
        """Count a refused login from ``address``."""
        now = time.monotonic() if now is None else now
        self._recent(address, now).append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures
