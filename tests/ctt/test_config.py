"""Database URLs as a role: every host of a multi-host URL and its query survive (unit, no services)."""

from __future__ import annotations

import psycopg
import pytest

from ctt.config import with_role
from ctt.migrate import _on_database

MULTI = "postgresql://x:y@127.0.0.1:5433,127.0.0.1:5434/ctt?target_session_attrs=read-write&connect_timeout=3"


def test_a_multi_host_url_keeps_every_host_and_its_query() -> None:
    url = with_role(MULTI, "ctt_ingest", "s3cret")
    assert url == ("postgresql://ctt_ingest:s3cret@127.0.0.1:5433,127.0.0.1:5434/ctt"
                   "?target_session_attrs=read-write&connect_timeout=3")


def test_libpq_reads_both_hosts_and_the_session_attributes() -> None:
    info = psycopg.conninfo.conninfo_to_dict(with_role(MULTI, "ctt_api", "pw", "other"))
    assert (info["host"], info["port"], info["dbname"]) == ("127.0.0.1,127.0.0.1", "5433,5434", "other")
    assert (info["user"], info["password"], info["target_session_attrs"]) == ("ctt_api", "pw", "read-write")


@pytest.mark.parametrize(("url", "hosts"), [
    ("postgresql://a:b@db.example:5432/ctt", "db.example:5432"),
    ("postgresql://db.example/ctt", "db.example"),
    ("postgresql:///ctt", "127.0.0.1"),
    ("postgresql://[::1]:5433,[::1]:5434/ctt", "[::1]:5433,[::1]:5434"),
])
def test_single_host_and_hostless_urls(url: str, hosts: str) -> None:
    assert with_role(url, "r", "p") == f"postgresql://r:p@{hosts}/ctt"


def test_credentials_are_quoted_and_an_at_sign_in_the_old_password_is_dropped() -> None:
    url = with_role("postgresql://u:p@ss@h1:1,h2:2/d", "ctt owner", "p@ss/:word")
    assert url == "postgresql://ctt%20owner:p%40ss%2F%3Aword@h1:1,h2:2/d"
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "p@ss/:word"


def test_another_database_keeps_every_host() -> None:
    assert _on_database(MULTI, "ctt_test_ha") == MULTI.replace("/ctt?", "/ctt_test_ha?")
