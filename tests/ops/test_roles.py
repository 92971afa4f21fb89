"""The database roles attacked: each application role tries what it must not do.

Roles come from deploy/postgres/roles.sql (run by deploy/services.sh), grants
from schema/013_roles.sql; the test database is created by the administrator
and migrated by the owner, as in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from ctt.config import DB_API, DB_INGEST, DB_OWNER, DB_REPORT
from tests.support import as_role, query, scalar

APPLICATION_ROLES = (DB_INGEST, DB_API, DB_REPORT)
EVERY_ROLE = (DB_OWNER, *APPLICATION_ROLES)
Refused = psycopg.errors.InsufficientPrivilege  # SQLSTATE 42501: permission denied, must be owner


@contextmanager
def connected(database_url: str, role: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(as_role(database_url, role), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
        yield conn


def test_no_role_is_a_superuser_or_may_create_roles_or_databases_or_run_programs(database_url: str) -> None:
    rows = query(database_url, "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
                               " pg_has_role(rolname, 'pg_execute_server_program', 'MEMBER'),"
                               " pg_has_role(rolname, 'pg_write_server_files', 'MEMBER')"
                               " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", (list(EVERY_ROLE),))
    assert [r[0] for r in rows] == sorted(EVERY_ROLE)
    assert [r for r in rows if any(r[1:])] == []


def test_only_the_owner_owns_tables_and_their_chunks(database_url: str) -> None:
    owners = query(database_url, "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
                                 " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                 " WHERE n.nspname IN ('public', '_timescaledb_internal')"
                                 " AND c.relkind IN ('r', 'v', 'S')"
                                 " AND (n.nspname = 'public' OR c.relname LIKE '\\_hyper\\_%%')")
    assert owners == [(DB_OWNER,)]


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_no_role_may_copy_to_a_program(database_url: str, role: str, tmp_path: object) -> None:
    with connected(database_url, role) as conn, pytest.raises(Refused):
        conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")


@pytest.mark.parametrize("role", APPLICATION_ROLES)
def test_no_application_role_may_create_tables(database_url: str, role: str) -> None:
    with connected(database_url, role) as conn, pytest.raises(Refused):
        conn.execute("CREATE TABLE public.planted (x int)")


def test_the_report_role_reads_and_writes_nothing(database_url: str) -> None:
    with connected(database_url, DB_REPORT) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() is not None
        with pytest.raises(Refused):
            conn.execute("INSERT INTO devices (device_id) VALUES ('planted')")


def test_the_api_role_cannot_write_device_records(database_url: str) -> None:
    with connected(database_url, DB_API) as conn, pytest.raises(Refused):
        conn.execute("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at)"
                     " VALUES ('x', 0, now(), 0, 0, now())")


def test_ingest_inserts_into_a_new_chunk_of_a_hypertable(database_url: str) -> None:
    """TimescaleDB creates the chunk as the hypertable's owner: INSERT is enough."""
    chunks = "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'fixes'"
    before = scalar(database_url, chunks)
    with connected(database_url, DB_INGEST) as conn:
        conn.execute("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at)"
                     " VALUES ('roles-chunk', 0, now() - interval '200 days', 0, 0, now())")  # kept by retention
    assert scalar(database_url, chunks) == before + 1
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = 'roles-chunk'") == 1
    assert query(database_url, "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM timescaledb_information.chunks k"
                               " JOIN pg_class c ON c.oid = format('%%I.%%I', k.chunk_schema, k.chunk_name)::regclass"
                               " WHERE k.hypertable_name = 'fixes'") == [(DB_OWNER,)]


# --- audit_log is append-only for every role -------------------------------------------------------

TAMPERING = {
    "update": "UPDATE audit_log SET actor = 'someone else'",
    "delete": "DELETE FROM audit_log",
    "truncate": "TRUNCATE audit_log",
    "disable trigger": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    "drop trigger": "DROP TRIGGER audit_log_no_update ON audit_log",
    "replica mode": "SET session_replication_role = replica",
}
# PostgreSQL lets a table's owner change its triggers: the signed checkpoints catch what follows (test_audit.py).
OWNER_MAY = {"disable trigger", "drop trigger"}
ATTEMPTS = [(role, name) for role in EVERY_ROLE for name in TAMPERING if not (role == DB_OWNER and name in OWNER_MAY)]


@pytest.fixture(scope="module")
def audited(database_url: str) -> None:
    """A row to tamper with, appended by the API's role (which may append)."""
    with connected(database_url, DB_API) as conn:
        conn.execute("INSERT INTO audit_log (actor, role, action, object_type) VALUES ('t', 'admin', 'test', 'test')")


@pytest.mark.parametrize(("role", "attempt"), ATTEMPTS)
def test_audit_log_refuses_tampering(database_url: str, audited: None, role: str, attempt: str) -> None:
    rows = scalar(database_url, "SELECT count(*) FROM audit_log")
    with connected(database_url, role) as conn, pytest.raises(Refused):
        conn.execute(TAMPERING[attempt])
    assert scalar(database_url, "SELECT count(*) FROM audit_log") == rows
    assert scalar(database_url, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass"
                                " AND tgenabled = 'O'") == 3


def test_the_report_role_cannot_append_to_the_audit_log(database_url: str) -> None:
    with connected(database_url, DB_REPORT) as conn, pytest.raises(Refused):
        conn.execute("INSERT INTO audit_log (actor, role, action, object_type) VALUES ('t', 'admin', 'x', 'x')")
