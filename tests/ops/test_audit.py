"""The audit log's hash chain: append-only for everyone, and ``ctt audit verify``
names the first row a superuser tampered with, an id gap, and the first signed
checkpoint an insider holding the owner's password could not re-sign. Runs on
its own database: the tampering must not leak into the session's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from ctt.audit import CHAIN_BROKEN, CHECKPOINT_MISMATCH, CHECKPOINT_MISSING, CONTENT_CHANGED, ID_GAP, verify
from ctt.audit_anchor import AnchorFiles, CheckpointError, anchor_files, read_checkpoints, write_checkpoint
from ctt.config import DB_API, DB_INGEST, DB_OWNER, REPO_ROOT, OpsSettings
from ctt.migrate import drop_database, fresh_database
from tests.support import ApiServer, as_role, execute, query, scalar
from tracking_api.auth import mint
from tracking_api.auth import verify as verify_token
from tracking_api.config import ApiSettings

AUDIT_DB = os.environ.get("CTT_TEST_DB", "ctt_test") + "_audit"
ROWS = 6
# Rebuilds every row's prev_hash and hash in id order: an internally consistent chain.
RECOMPUTE_CHAIN = """
DO $$
DECLARE r audit_log; prev bytea := '\\x';
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        UPDATE audit_log SET prev_hash = prev, hash = audit_row_hash(prev, r) WHERE id = r.id RETURNING hash INTO prev;
    END LOOP;
END $$
"""


@pytest.fixture(scope="module")
def audit_db() -> Iterator[str]:
    ops = OpsSettings()
    admin = ops.admin_url()
    yield fresh_database(admin, AUDIT_DB, ops.url_for(DB_OWNER))
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
    execute(audit_db, "TRUNCATE audit_checkpoints")
    with psycopg.connect(audit_db) as conn:
        for i in range(1, ROWS + 1):
            conn.execute("INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)"
                         " VALUES (%s, 'operator', 'alert.acknowledged', 'alert', %s, %s)",
                         (f"user-{i}", str(i), Jsonb({"note": f"note {i}", "from": "open"})))
    return audit_db


def append(url: str, count: int) -> None:
    with psycopg.connect(url) as conn:
        for _ in range(count):
            conn.execute("INSERT INTO audit_log (actor, role, action, object_type) VALUES ('later', 'admin', 'x', 'y')")


@pytest.fixture
def anchor(tmp_path: Path) -> AnchorFiles:
    """The signer's files in a state directory of the test's own."""
    return anchor_files(tmp_path)


def run_cli(url: str, *args: str, state_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTT_DATABASE_URL": url, **({"CTT_STATE_DIR": str(state_dir)} if state_dir else {})}
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
    assert "a token of role 'officer' needs a region" in done.stderr
    assert scalar(log, "SELECT count(*) FROM audit_log WHERE action = 'token.minted'") == 0


def test_appended_rows_form_an_intact_chain(log: str) -> None:
    seen: list[tuple[int, int]] = []
    report = verify(log, lambda done, total: seen.append((done, total)), every=2)
    assert report.intact and report.rows == ROWS
    assert report.summary() == f"audit chain intact: {ROWS} rows, no signed checkpoint"
    assert report.head_id == ROWS
    assert report.head_hash == scalar(log, "SELECT encode(hash, 'hex') FROM audit_log WHERE id = %s", (ROWS,))
    assert seen == [(0, ROWS), (2, ROWS), (4, ROWS), (6, ROWS), (6, ROWS)]
    # The first row links to the empty hash, every other to its predecessor.
    assert scalar(log, "SELECT prev_hash FROM audit_log WHERE id = 1") == b""
    assert scalar(log, "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.id = a.id - 1"
                       " WHERE a.prev_hash = b.hash") == ROWS - 1


def test_an_empty_log_is_intact(log: str) -> None:
    superuser(log, "TRUNCATE audit_log", trigger="audit_log_no_truncate")
    assert verify(log).summary() == "audit chain intact: 0 rows, no signed checkpoint"


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
    assert intact.stdout.strip() == f"audit chain intact: {ROWS} rows, no signed checkpoint"
    assert f"head: row {ROWS}" in intact.stderr

    superuser(log, "DELETE FROM audit_log WHERE id = 5")
    broken = run_cli(log)
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.startswith("audit chain broken at row 6: chain broken")


def test_a_deleted_row_with_the_chain_recomputed_leaves_an_id_gap(log: str) -> None:
    superuser(log, "DELETE FROM audit_log WHERE id = 3")
    superuser(log, RECOMPUTE_CHAIN)
    report = verify(log)
    assert (report.broken_id, report.reason) == (4, ID_GAP)
    assert report.summary().startswith("audit chain broken at row 4: id gap")


def owner_rewrites_history(url: str, statement: str) -> None:
    """The insider with the owner's password: PostgreSQL lets a table's owner turn its triggers off and grant
    itself back what the migrations revoked; the chain is then recomputed, internally consistent again."""
    with psycopg.connect(as_role(url, DB_OWNER)) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute("GRANT UPDATE, DELETE ON audit_log TO ctt_owner")
        conn.execute(statement)
        conn.execute(RECOMPUTE_CHAIN)
        conn.execute("REVOKE UPDATE, DELETE ON audit_log FROM ctt_owner")
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def signed_log(log: str, anchor: AnchorFiles) -> list[int]:
    """A log of 8 rows with checkpoints at rows 3, 6 and 8, signed as the API's role (like docker-compose's signer)."""
    superuser(log, "TRUNCATE audit_log RESTART IDENTITY", trigger="audit_log_no_truncate")
    heads = []
    for rows in (3, 3, 2):
        append(log, rows)
        checkpoint = write_checkpoint(as_role(log, DB_API), anchor)
        assert checkpoint is not None
        heads.append(checkpoint.head_id)
    return heads


def test_checkpoints_are_signed_exported_and_served(log: str, anchor: AnchorFiles, tmp_path: Path) -> None:
    assert signed_log(log, anchor) == [3, 6, 8]
    exported = read_checkpoints(anchor)
    assert [(c.id, c.head_id) for c in exported] == [(1, 3), (2, 6), (3, 8)]
    assert [c.head_hash for c in exported] == [
        scalar(log, "SELECT encode(hash, 'hex') FROM audit_log WHERE id = %s", (c.head_id,)) for c in exported]
    assert anchor.private_key.stat().st_mode & 0o777 == 0o600
    key = anchor.private_key.read_text().splitlines()[1]
    assert scalar(log, "SELECT count(*) FROM audit_checkpoints WHERE signature::text LIKE %s", (f"%{key}%",)) == 0
    assert verify(log, checkpoints=exported).summary() == "audit chain intact: 8 rows, 3 signed checkpoints match"
    server = ApiServer(log, tmp_path / "api.log").start()
    try:
        served = [_get(server.url, role) for role in ("admin", "operator", "officer")]
    finally:
        server.stop()
    fields = ("id", "head_id", "head_hash", "signature", "key_id")
    expected = [{f: getattr(c, f) for f in fields} for c in reversed(exported)]
    for items in served[:2]:
        assert isinstance(items, list) and [{f: i[f] for f in fields} for i in items] == expected
    assert served[2] == 403


def _get(url: str, role: str) -> list[dict[str, object]] | int:
    token = mint(ApiSettings(), f"test-{role}", role, "KE-MSA" if role == "officer" else None)
    request = urllib.request.Request(f"{url}/audit/checkpoints", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["items"]  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_owner_rewriting_history_is_caught_by_the_first_checkpoint_that_no_longer_matches(
        log: str, anchor: AnchorFiles) -> None:
    signed_log(log, anchor)
    owner_rewrites_history(log, """UPDATE audit_log SET detail = '{"note": "nothing happened"}' WHERE id = 5""")
    assert verify(log).intact  # the chain alone cannot tell
    report = verify(log, checkpoints=read_checkpoints(anchor))
    assert (report.checkpoint_id, report.broken_id, report.reason, report.checkpoints) == (2, 6, CHECKPOINT_MISMATCH, 1)
    done = run_cli(log, state_dir=anchor.export.parents[1])
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("audit chain broken at checkpoint 2 (row 6): checkpoint mismatch")


def test_rows_removed_from_the_end_are_caught_by_the_last_checkpoint(log: str, anchor: AnchorFiles) -> None:
    signed_log(log, anchor)
    owner_rewrites_history(log, "DELETE FROM audit_log WHERE id > 6")
    report = verify(log, checkpoints=read_checkpoints(anchor))
    assert (report.checkpoint_id, report.broken_id, report.reason) == (3, 8, CHECKPOINT_MISSING)


def test_a_forged_or_foreign_checkpoint_is_not_trusted(log: str, anchor: AnchorFiles, tmp_path: Path) -> None:
    signed_log(log, anchor)
    lines = anchor.export.read_text().splitlines()
    forged = json.loads(lines[1]) | {"head_hash": "00" * 32}
    anchor.export.write_text("\n".join([lines[0], json.dumps(forged), lines[2]]) + "\n")
    with pytest.raises(CheckpointError, match="checkpoint 2's signature is not valid"):
        read_checkpoints(anchor)
    done = run_cli(log, state_dir=anchor.export.parents[1])
    assert done.returncode == 2 and "signature is not valid" in done.stderr
    other = anchor_files(tmp_path / "other")
    write_checkpoint(as_role(log, DB_API), other)
    with pytest.raises(CheckpointError, match="names key"):
        read_checkpoints(AnchorFiles(anchor.private_key, anchor.public_key, other.export))


def test_the_cli_signs_on_demand(log: str, tmp_path: Path) -> None:
    done = run_cli(log, "audit", "checkpoint", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"checkpoint 1: row {ROWS}, hash ")
    verified = run_cli(log, state_dir=tmp_path)
    assert verified.stdout.strip() == f"audit chain intact: {ROWS} rows, 1 signed checkpoint matches"


OPEN = ("INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity)"
        " VALUES ('unscheduled_stop', %s, 'audit-trk', now(), now(), 'medium') RETURNING id")
END = "UPDATE alerts SET ended_at = now(), updated_at = now() WHERE id = %s"
WITHDRAW = "UPDATE alerts SET detail = detail || '{\"withdrawn\": true}' WHERE id = %s"


def test_the_engines_alert_lifecycle_is_audited_as_its_role(log: str) -> None:
    """Opened, ended, withdrawn as the engine writes them (ctt_ingest's statements), not only officers' actions;
    tests/ingest/test_alerting.py checks the same through a real ingest run."""
    office = {"type": "Polygon", "coordinates": [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0.1], [0, 0]]]}
    with psycopg.connect(log) as conn:
        for code in ("AUDITDEP", "AUDITDST"):
            conn.execute("INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'office', %s, %s)",
                         (code, code, Jsonb(office)))
        route = conn.execute("INSERT INTO routes (name, geometry) VALUES ('audit', %s) RETURNING id",
                             (Jsonb({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),)).fetchone()
        shipment = conn.execute(
            "INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination,"
            " deadline, status, departed_at) VALUES ('26AUDIT0000000000', %s, 'audit-trk', 'AUDITDEP', 'AUDITDST',"
            " now() + interval '1 day', 'in_transit', now()) RETURNING id", (route[0] if route else None,)).fetchone()
    assert shipment is not None
    with psycopg.connect(as_role(log, DB_INGEST), autocommit=True) as engine:  # the engine's role and statements
        opened = engine.execute(OPEN, (shipment[0],)).fetchone()
        assert opened is not None
        for statement in (END, WITHDRAW):
            engine.execute(statement, (opened[0],))
    rows = query(log, "SELECT a.actor, a.role, a.action, e.event FROM audit_log a JOIN alert_events e"
                      " ON e.id = (a.detail->>'event')::bigint WHERE a.object_type = 'alert' AND a.object_id = %s"
                      " ORDER BY a.id", (str(opened[0]),))
    assert rows == [(DB_INGEST, "system", f"alert.{event}", event) for event in ("opened", "ended", "withdrawn")]
    assert verify(log).intact
