"""The audit log's hash chain: append-only for everyone, and ``ctt audit verify``
names the first row a superuser tampered with. Runs on its own database: the
tampering must not leak into the session's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from ctt.audit import CHAIN_BROKEN, CONTENT_CHANGED, verify
from ctt.config import REPO_ROOT, OpsSettings
from ctt.migrate import drop_database, fresh_database
from tests.support import execute, scalar
from tracking_api.auth import verify as verify_token
from tracking_api.config import ApiSettings

AUDIT_DB = "ctt_audit_test"
ROWS = 6


@pytest.fixture(scope="module")
def audit_db() -> Iterator[str]:
    admin = OpsSettings().database_url
    yield fresh_database(admin, AUDIT_DB)
    with psycopg.connect(admin, autocommit=True) as conn:
        drop_database(conn, AUDIT_DB)


def superuser(url: str, statement: str, trigger: str = "audit_log_no_update") -> None:
    """Run ``statement`` with the append-only trigger off, as an attacker with superuser rights would."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("ALTER TABLE audit_log DISABLE TRIGGER {}").format(sql.Identifier(trigger)))
        conn.execute(statement)
        conn.execute(sql.SQL("ALTER TABLE audit_log ENABLE TRIGGER {}").format(sql.Identifier(trigger)))


@pytest.fixture
def log(audit_db: str) -> str:
    """A log of ROWS rows, ids 1..ROWS, each test starting from a clean chain."""
    superuser(audit_db, "TRUNCATE audit_log RESTART IDENTITY", trigger="audit_log_no_truncate")
    with psycopg.connect(audit_db) as conn:
        for i in range(1, ROWS + 1):
            conn.execute("INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)"
                         " VALUES (%s, 'operator', 'alert.acknowledged', 'alert', %s, %s)",
                         (f"user-{i}", str(i), Jsonb({"note": f"note {i}", "from": "open"})))
    return audit_db


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTT_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "ctt.cli", *(args or ("audit", "verify"))], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_minted_token_is_recorded_with_its_id(log: str) -> None:
    done = run_cli(log, "token", "--role", "officer", "--region", "KE-WEST", "--subject", "officer.busia")
    assert done.returncode == 0, done.stderr
    caller = verify_token(ApiSettings(), done.stdout.strip())
    assert (caller.subject, caller.role, caller.region) == ("officer.busia", "officer", "KE-WEST")
    assert scalar(log, "SELECT detail FROM audit_log WHERE action = 'token.minted' ORDER BY id DESC LIMIT 1") == {
        "region": "KE-WEST", "hours": 12.0, "token_id": caller.token_id}


def test_an_officer_token_without_a_region_is_refused(log: str) -> None:
    done = run_cli(log, "token", "--role", "officer")
    assert done.returncode == 2
    assert "an officer's token needs a region" in done.stderr
    assert scalar(log, "SELECT count(*) FROM audit_log WHERE action = 'token.minted'") == 0


def test_appended_rows_form_an_intact_chain(log: str) -> None:
    seen: list[tuple[int, int]] = []
    report = verify(log, lambda done, total: seen.append((done, total)), every=2)
    assert report.intact and report.rows == ROWS
    assert report.summary() == f"audit chain intact: {ROWS} rows"
    assert report.head_id == ROWS
    assert report.head_hash == scalar(log, "SELECT encode(hash, 'hex') FROM audit_log WHERE id = %s", (ROWS,))
    assert seen == [(0, ROWS), (2, ROWS), (4, ROWS), (6, ROWS), (6, ROWS)]
    # The first row links to the empty hash, every other to its predecessor.
    assert scalar(log, "SELECT prev_hash FROM audit_log WHERE id = 1") == b""
    assert scalar(log, "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.id = a.id - 1"
                       " WHERE a.prev_hash = b.hash") == ROWS - 1


def test_an_empty_log_is_intact(log: str) -> None:
    superuser(log, "TRUNCATE audit_log", trigger="audit_log_no_truncate")
    assert verify(log).summary() == "audit chain intact: 0 rows"


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET detail = '{}' WHERE id = 2",
                                       "DELETE FROM audit_log WHERE id = 2", "TRUNCATE audit_log"])
def test_updates_and_deletes_are_refused_even_for_the_owner(log: str, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log is append-only"):
        execute(log, statement)
    assert scalar(log, "SELECT count(*) FROM audit_log") == ROWS
    assert verify(log).intact


def test_an_edited_row_is_named_as_content_changed(log: str) -> None:
    superuser(log, """UPDATE audit_log SET detail = '{"note": "nothing happened", "from": "open"}' WHERE id = 3""")
    report = verify(log)
    assert (report.broken_id, report.reason, report.rows) == (3, CONTENT_CHANGED, 3)
    assert report.summary().startswith("audit chain broken at row 3: content changed")


def test_an_edit_that_rewrites_the_hash_breaks_the_link_of_the_next_row(log: str) -> None:
    superuser(log, """UPDATE audit_log SET detail = '{"note": "nothing happened"}' WHERE id = 3""")
    superuser(log, "UPDATE audit_log a SET hash = audit_row_hash(a.prev_hash, a) WHERE id = 3")
    report = verify(log)
    assert (report.broken_id, report.reason) == (4, CHAIN_BROKEN)


@pytest.mark.parametrize(("deleted", "named"), [(3, 4), (1, 2)])
def test_a_deleted_row_breaks_the_chain_at_the_row_after_it(log: str, deleted: int, named: int) -> None:
    superuser(log, f"DELETE FROM audit_log WHERE id = {deleted}")
    report = verify(log)
    assert (report.broken_id, report.reason) == (named, CHAIN_BROKEN)
    assert report.summary().startswith(f"audit chain broken at row {named}: chain broken")


def test_the_cli_exits_0_when_intact_and_1_naming_the_broken_row(log: str) -> None:
    intact = run_cli(log)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == f"audit chain intact: {ROWS} rows"
    assert f"head: row {ROWS}" in intact.stderr

    superuser(log, "DELETE FROM audit_log WHERE id = 5")
    broken = run_cli(log)
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.startswith("audit chain broken at row 6: chain broken")
