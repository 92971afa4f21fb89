"""Writers extend the audit chain concurrently or roll back: ids follow commit order without gaps,
and the chain stays intact."""

from __future__ import annotations

import threading

import psycopg

from ctt.audit import verify

_APPEND = ("INSERT INTO audit_log (actor, role, action, object_type, object_id) "
           "VALUES (%s, 'system', 'test.order', 'test', %s) RETURNING id")


def test_interleaved_writers_keep_ids_in_commit_order_and_the_chain_intact(database_url: str) -> None:
    first = psycopg.connect(database_url)
    second = psycopg.connect(database_url)
    try:
        # The first writer appends and holds its transaction open (as a slow batch would);
        # the second starts its insert meanwhile and can only finish after the first commits.
        # A writer that rolls back leaves no hole: ids are taken under the chain's lock.
        first.execute(_APPEND, ("before", "0"))
        first.commit()
        first.execute(_APPEND, ("aborted", "0"))
        first.rollback()
        first.execute(_APPEND, ("first", "1"))
        done = threading.Event()

        def append_second() -> None:
            second.execute(_APPEND, ("second", "2"))
            second.commit()
            done.set()

        writer = threading.Thread(target=append_second)
        writer.start()
        assert not done.wait(0.5), "the second writer must wait for the chain's lock"
        first.commit()
        writer.join(10)
        assert done.is_set()
        with psycopg.connect(database_url) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM audit_log WHERE action = 'test.order' ORDER BY id").fetchall()]
            gaps = conn.execute("SELECT count(*) FROM (SELECT id - lag(id) OVER (ORDER BY id) AS step "
                                "FROM audit_log) s WHERE step <> 1").fetchone()
        assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))
        assert gaps == (0,)
        assert verify(database_url).intact
    finally:
        first.close()
        second.close()
