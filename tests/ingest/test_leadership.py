"""One leader among the workers: a session advisory lock, and the once-only jobs
run in that very session, so a worker that lost it cannot run them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from ctt.config import DB_INGEST
from ingest import workers
from ingest.leadership import Leadership, NotLeaderError
from tests.support import as_role, execute, unique_prefix


@pytest.fixture
def pair(database_url: str) -> Iterator[tuple[Leadership, Leadership]]:
    url = as_role(database_url, DB_INGEST)
    # A key of their own: the session's ingest process may hold the real one.
    key = secrets.randbits(62)
    a, b = Leadership(url, unique_prefix("a"), key), Leadership(url, unique_prefix("b"), key)
    yield a, b
    a.close()
    b.close()


def _backend(leader: Leadership) -> int:
    return int(leader.session(lambda cur: cur.execute("SELECT pg_backend_pid()").fetchone()[0]))  # type: ignore[index]


def test_one_leader_and_the_next_takes_over_when_its_session_dies(
        pair: tuple[Leadership, Leadership], database_url: str) -> None:
    a, b = pair
    assert a.elect() and not b.elect()
    assert a.transact(lambda cur: cur.execute("SELECT 1").fetchone()) == (1,)
    with pytest.raises(NotLeaderError):
        b.transact(lambda cur: None)
    # The leader's process dies (or its network): the server ends its session.
    execute(database_url, "SELECT pg_terminate_backend(%s)", (_backend(a),))
    assert b.elect()
    # The old leader does not know yet; its next job fails with its session, so a job
    # never runs twice, and it stands again on a new session: the lock is taken.
    with pytest.raises(psycopg.OperationalError):
        a.transact(lambda cur: cur.execute("SELECT 1"))
    a.check()
    assert not a.leading and not a.elect()


def test_a_worker_silent_or_not_drained_holds_signal_lost_back(
        pair: tuple[Leadership, Leadership], database_url: str) -> None:
    a, b = pair
    a.session(lambda cur: workers.heartbeat(cur, a.worker, 0.0, True, True))
    b.session(lambda cur: workers.heartbeat(cur, b.worker, 0.0, False, False))
    assert b.worker in a.session(lambda cur: workers.lagging(cur, a.worker, 300, 15))
    b.session(lambda cur: workers.heartbeat(cur, b.worker, 0.0, True, False))
    assert b.worker not in a.session(lambda cur: workers.lagging(cur, a.worker, 300, 15))
    # Drained once, then silent past the freshness window: may be lagging now.
    execute(database_url, "UPDATE ingest_workers SET heartbeat_at = now() - interval '60 s' WHERE worker_id = %s",
            (b.worker,))
    assert b.worker in a.session(lambda cur: workers.lagging(cur, a.worker, 300, 15))
    # Silent past the expiry: gone, it no longer counts.
    execute(database_url, "UPDATE ingest_workers SET heartbeat_at = now() - interval '1 hour' WHERE worker_id = %s",
            (b.worker,))
    assert b.worker not in a.session(lambda cur: workers.lagging(cur, a.worker, 300, 15))
