"""Deployment files: compose validity, idempotent services step, migrations."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml
from psycopg import sql

from ctt import retention
from ctt.config import REPO_ROOT
from ctt.migrate import MigrationError, available, migrate
from tests.support import scalar

# The secrets compose requires, and the environment each of our containers may receive: a
# container holds only the secrets it uses (the API no broker password, nothing the
# provisioning secret).
DB_PASSWORDS = {"CTT_DB_OWNER_PASSWORD", "CTT_DB_INGEST_PASSWORD", "CTT_DB_API_PASSWORD", "CTT_DB_REPORT_PASSWORD"}
COMPOSE_SECRETS = {"CTT_DB_SUPERUSER_PASSWORD", *DB_PASSWORDS, "CTT_BROKER_PASSWORD", "CTT_OBSERVER_PASSWORD",
                   "CTT_JWT_SECRET"}
CONTAINER_ENVIRONMENT = {
    "broker-setup": {"CTT_ENV", "CTT_BROKER_PASSWORD", "CTT_OBSERVER_PASSWORD"},
    "migrate": {"CTT_ENV", "CTT_DATABASE_URL"},
    "ingest": {"CTT_ENV", "CTT_DATABASE_URL", "CTT_BROKER_HOST", "CTT_BROKER_PORT", "CTT_BROKER_CA_FILE",
               "CTT_BROKER_PASSWORD", "CTT_METRICS_HOST"},
    "api": {"CTT_ENV", "CTT_DATABASE_URL", "CTT_BROKER_HOST", "CTT_JWT_SECRET", "CTT_VAPID_PRIVATE_KEY_FILE"},
    "audit-anchor": {"CTT_ENV", "CTT_DATABASE_URL", "CTT_STATE_DIR"},
}
# Which database role each container connects as: never the superuser (POSTGRES_USER).
DATABASE_ROLES = {"migrate": "ctt_owner", "ingest": "ctt_ingest", "api": "ctt_api", "audit-anchor": "ctt_api"}


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: the test set-up installs Debian's docker-compose"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CTT_")}
    return subprocess.run([tool, *args], cwd=REPO_ROOT, capture_output=True, text=True, env={**clean, **env})


def _secrets() -> dict[str, str]:
    return {name: secrets.token_urlsafe(24) for name in COMPOSE_SECRETS}


def test_docker_compose_file_is_valid_with_its_secrets() -> None:
    result = _compose("config", "-q", env=_secrets())
    assert result.returncode == 0, result.stderr
    services = _compose("config", "--services", env=_secrets())
    assert set(services.stdout.split()) >= {"mosquitto", "timescaledb", "ingest", "api"}


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_a_missing_secret_stops_compose_naming_it(missing: str) -> None:
    env = _secrets()
    del env[missing]
    result = _compose("config", "-q", env=env)
    assert result.returncode != 0
    assert f"set {missing} (" in result.stderr


def test_each_container_gets_only_the_secrets_it_uses() -> None:
    given = _secrets()
    result = _compose("config", env=given)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name, allowed in CONTAINER_ENVIRONMENT.items():
        environment = services[name].get("environment") or {}
        assert set(environment) <= allowed, f"{name} gets {set(environment) - allowed}"
        assert environment.get("CTT_ENV") == "production", name
    others = {name: service.get("environment") or {} for name, service in services.items()
              if name not in CONTAINER_ENVIRONMENT and service.get("environment")}
    assert set(others) == {"timescaledb"}  # mosquitto gets no environment
    assert {k for k, v in others["timescaledb"].items() if any(x in str(v) for x in given.values())} == \
        {"POSTGRES_PASSWORD", *DB_PASSWORDS}
    superuser = others["timescaledb"]["POSTGRES_USER"]
    for name, role in DATABASE_ROLES.items():
        url = urlsplit(services[name]["environment"]["CTT_DATABASE_URL"])
        assert (url.username, url.password) == (role, given[f"CTT_DB_{role.removeprefix('ctt_').upper()}_PASSWORD"])
        assert url.username != superuser and given["CTT_DB_SUPERUSER_PASSWORD"] not in str(services[name])
    api = services["api"]["environment"]
    assert given["CTT_BROKER_PASSWORD"] not in str(api) and given["CTT_OBSERVER_PASSWORD"] not in str(api)


_USES_SECRET = {(service, variable) for service, allowed in CONTAINER_ENVIRONMENT.items() for variable in allowed}


def test_the_image_holds_every_package_and_the_pages() -> None:
    # The image installs the project from copied folders: a package missing there imports in
    # tests (the checkout) but not in production.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {p.removesuffix("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {line.split()[1] for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") and "--from" not in line}
    assert packages | {"dashboards"} <= copied
    assert "node_modules" in (REPO_ROOT / ".dockerignore").read_text()  # built in the image, never copied


def test_services_step_is_idempotent_and_quick_when_all_is_up() -> None:
    started = time.monotonic()
    result = subprocess.run(["bash", "deploy/services.sh", "--test-tools"], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "ready:" in result.stderr
    for action in ("installing", "building", "starting", "restarting"):
        assert action not in result.stderr, result.stderr
    assert time.monotonic() - started < 30


def test_migrations_apply_once_and_refuse_edited_history(database_url: str) -> None:
    assert migrate(database_url) == []  # the session fixture already migrated
    versions = scalar(database_url, "SELECT array_agg(version ORDER BY version) FROM schema_migrations")
    assert versions == [m.version for m in available()]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    try:
        with pytest.raises(MigrationError, match="001_foundation was edited"):
            migrate(database_url)
    finally:
        first = available()[0]
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE schema_migrations SET checksum = %s WHERE version = 1", (first.checksum,))


def test_fresh_database_gets_hypertables_and_dedup_keys(database_url: str) -> None:
    hypertables = scalar(database_url, "SELECT array_agg(hypertable_name::text ORDER BY hypertable_name)"
                                       " FROM timescaledb_information.hypertables")
    assert hypertables == ["device_status", "fixes", "seal_events"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at)"
                     " VALUES ('dd', 1, now(), 0, 0, now())")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at)"
                         " SELECT device_id, seq, ts, lat, lon, received_at FROM fixes WHERE device_id = 'dd'")
        conn.execute(sql.SQL("DELETE FROM fixes WHERE device_id = 'dd'"))


def test_retention_drops_only_old_chunks(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO fixes (device_id, seq, ts, lat, lon, received_at) VALUES"
                     " ('ret', 1, now() - interval '500 days', 0, 0, now()),"
                     " ('ret', 2, now() - interval '2 days', 0, 0, now())")
    env = {**os.environ, "CTT_DATABASE_URL": database_url}
    result = subprocess.run([sys.executable, "-m", "ctt.cli", "retention", "--keep-days", "400",
                             "--min-interval-h", "0"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "fixes: dropped 1 chunks" in result.stderr
    assert scalar(database_url, "SELECT array_agg(seq) FROM fixes WHERE device_id = 'ret'") == [2]


def test_retention_scheduled_on_every_machine_does_the_work_once(database_url: str) -> None:
    env = {**os.environ, "CTT_DATABASE_URL": database_url}
    runs = [subprocess.run([sys.executable, "-m", "ctt.cli", "retention"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True) for _machine in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert "fixes: dropped" in runs[0].stderr or "less than 20.0 h ago" in runs[0].stderr
    assert "nothing to do" in runs[1].stderr and "fixes: dropped" not in runs[1].stderr
    # While one run holds the lock, another machine's run does nothing.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (retention.LOCK_KEY,))
        held = subprocess.run([sys.executable, "-m", "ctt.cli", "retention", "--min-interval-h", "0"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert "another retention run is in progress" in held.stderr, held.stderr
