"""Versioned SQL migrations from ``schema/NNN_name.sql``.

Each file runs once, in its own transaction, recorded with its checksum in
``schema_migrations``; an advisory lock keeps two migrators from racing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

LOCK_KEY = 0x0C77_5C4E  # pg_advisory_lock key reserved for migrations
FILENAME = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")


class MigrationError(RuntimeError):
    """A migration file or the recorded history is not what this code expects."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("schema").iterdir():
        match = FILENAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
        elif entry.name.endswith(".sql"):
            raise MigrationError(f"migration file {entry.name!r} is not named NNN_name.sql")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def migrate(database_url: str) -> list[Migration]:
    """Apply pending migrations; return the ones applied (empty when up to date)."""
    applied: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[int, str] = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            for migration in available():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:03d}_{migration.name} was edited "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def fresh_database(admin_url: str, name: str, owner_url: str | None = None) -> str:
    """Drop database ``name`` if it exists, create it and migrate it; return its URL as ``admin_url``'s role.

    For tests and benchmarks: ``admin_url`` is a superuser's connection to any
    database of the server. With ``owner_url`` (the same server as the owner
    role) the database is the owner's and the owner runs the migrations, as in
    production; the superuser only creates it and its TimescaleDB extension."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        drop_database(conn, name)
        owner = urlsplit(owner_url).username if owner_url else None
        conn.execute(sql.SQL("CREATE DATABASE {}{}").format(
            sql.Identifier(name), sql.SQL(" OWNER {}").format(sql.Identifier(owner)) if owner else sql.SQL("")))
    url = _on_database(admin_url, name)
    if owner_url is None:
        migrate(url)
        return url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    migrate(_on_database(owner_url, name))
    return url


def _on_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
