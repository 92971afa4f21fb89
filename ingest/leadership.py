"""The elected worker: the one that runs the jobs that must happen once (the
wall-clock sweep, the officers' workflow relay).

Election is a PostgreSQL session advisory lock. The jobs run in transactions of
the very session that holds it, so a worker that lost the lock (its connection
died: the process was killed, the network or the primary went away) cannot run
a job any more: the job fails with the connection. Another worker's next try
takes the lock once the server has dropped that session: at once when the
process dies, within the TCP keepalive settings below when the network does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import structlog

from ingest import metrics
from ingest.session import Session

log = structlog.get_logger("ingest.leadership")
T = TypeVar("T")
LOCK_KEY = 7710010  # pg_advisory_lock key of the ingest leader (7710001-7710003: audit and alert events)

# The server notices a silent peer within about 5 + 3 * 2 = 11 s; session GUCs any role may set.
_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"


class NotLeaderError(RuntimeError):
    """A once-only job was asked of a worker that does not hold the leader lock."""


class Leadership:
    """This worker's leader session: ``elect`` tries to take the lock; ``transact``
    runs work under it."""

    def __init__(self, database_url: str, worker: str, key: int = LOCK_KEY) -> None:
        self.worker = worker
        self._key = key
        self._session = Session(database_url, f"ctt-ingest {worker}", options=_KEEPALIVES,
                                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
        self.leading = False

    def elect(self) -> bool:
        """Whether this worker leads now (taking the lock if it is free). Raises what
        the database raises; the caller postpones and calls ``lost`` on failure."""
        if not self.leading or not self._session.open:
            self.leading = False
            got = self._session.transact(
                lambda cur: cur.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone())
            self.leading = bool(got and got[0])
            if self.leading:
                log.info("elected leader", worker=self.worker)
        metrics.LEADER.set(int(self.leading))
        return self.leading

    def transact(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run ``work`` in a transaction of the session that holds the lock."""
        if not self.leading:
            raise NotLeaderError(f"worker {self.worker!r} is not the leader")
        return self._session.transact(work)

    def session(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run ``work`` (leader or not) in a transaction of this worker's own session."""
        return self._session.transact(work)

    def check(self) -> None:
        """After a failed transaction: if the session died, the lock went with it."""
        if not self._session.open:
            self.lost()

    def lost(self) -> None:
        """The session failed: the lock went with it."""
        if self.leading:
            log.warning("leader session lost", worker=self.worker)
        self.leading = False
        metrics.LEADER.set(0)
        self._session.close()

    def close(self) -> None:
        self.lost()
