"""Shared fixtures. Services (PostgreSQL+TimescaleDB, and the tests' own
Mosquitto on port 1884) come from the set-up command (``./dev test`` runs
``deploy/services.sh --test-tools``); tests start only what they test: the
ingest process and simulated devices."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from geofence.warmup import warm_up
from protocol.topics import SUBSCRIPTIONS
from tests.support import (
    TEST_INGEST_PASSWORD,
    TEST_INGEST_USER,
    AlertListener,
    ApiServer,
    IngestProcess,
    reset_session,
)

# The escalation sweep changes every old open alert (an 'escalated' event each): off in the tests'
# API processes unless a test turns it on (tests/tracking_api/test_escalation.py).
os.environ.setdefault("CTT_ESCALATION_SWEEP_S", "0")

# Overridable so that two checkouts can run their suites side by side.
TEST_DB = os.environ.get("CTT_TEST_DB", "ctt_test")


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """The engine's kernels compiled (or loaded from numba's cache) once, first: every ingest
    process the tests start then loads them from the cache in a fraction of a second."""
    warm_up()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh test database for the whole session, migrated by the owner role; the administrator's URL."""
    ops = OpsSettings()
    yield fresh_database(ops.admin_url(), TEST_DB, ops.url_for(DB_OWNER))


@pytest.fixture(scope="session")
def countries(database_url: str) -> list[str]:
    """East Africa's outlines (bbox 28,-12,42,6) loaded into the test database once; their codes.
    The extract is cached in $CTT_STATE_DIR/countries: only the first session parses the 168 MB file."""
    import psycopg

    from ctt.countries import EAST_AFRICA, load_countries

    with psycopg.connect(database_url) as conn:
        report = load_countries(conn, bbox=EAST_AFRICA)
    return sorted([*report.inserted, *report.updated, *report.unchanged])


@pytest.fixture(scope="session")
def ingest(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestProcess]:
    """The one ingest process of the test session (one client id: one process at a time).

    Tests may stop, kill or restart it; they leave it running."""
    log = Path(tmp_path_factory.mktemp("ingest")) / "ingest.log"
    # Whatever an aborted earlier run left queued in the test session is dropped.
    reset_session(TEST_INGEST_USER, TEST_INGEST_PASSWORD, list(SUBSCRIPTIONS))
    proc = IngestProcess(database_url, log).start()
    yield proc
    proc.stop()


@pytest.fixture
def listener() -> Iterator[AlertListener]:
    """An officers' app: every alert message published while the test runs."""
    obs = AlertListener()
    yield obs
    obs.close()


@pytest.fixture(scope="session")
def api_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API as a real uvicorn process on the test database (keep-alives every 0.5 s)."""
    server = ApiServer(database_url, Path(tmp_path_factory.mktemp("api")) / "api.log",
                       CTT_STREAM_KEEPALIVE_S="0.5", CTT_WEBHOOKS_DISPATCH="0").start()
    yield server
    server.stop()
