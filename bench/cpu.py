"""CPU time of the processes a bench measures, read from ``/proc`` (Linux), in seconds.

A process's time is ``utime + stime`` (fields 14 and 15 of ``/proc/<pid>/stat``) plus
``cutime + cstime`` (16 and 17: its children that it has waited for).

PostgreSQL is a tree: the postmaster forks a backend per connection and the background
workers, and one server holds every engineer's databases. The bench counts the children
that work for its database: the backends and autovacuum workers whose process title names
it, TimescaleDB's scheduler for its OID, and the server-wide writers (checkpointer,
background writer, WAL writer), read together at the start and end of an interval. A
backend of the bench's database that exits within the interval takes its time with it (the
kernel adds it to the postmaster's ``cutime``, which cannot be told apart by database): the
services under test hold their connections for the whole interval, so what is missed is the
bench's own short queries. ``tree_cpu`` (the postmaster and all its children, living and
reaped) gives the whole server's time, other engineers' work included.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


class ProcessGoneError(RuntimeError):
    """A measured process exited before its last reading."""


def _fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces):
    index 0 is the state (field 3), 1 the parent pid (field 4)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGoneError(f"process {pid} is gone") from None
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children it has reaped."""
    f = _fields(pid)
    return sum(int(v) for v in f[11:15]) / CLOCK_TICKS


def _children(parent: int) -> list[int]:
    out = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int(_fields(int(entry.name))[1]) == parent:
                    out.append(int(entry.name))
            except ProcessGoneError:
                continue  # exited while we listed: its time is in the parent's cutime now
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and of its direct children, living or reaped (see the module docstring)."""
    total = process_cpu(root)
    for child in _children(root):
        try:
            total += process_cpu(child)
        except ProcessGoneError:
            continue  # reaped between the listing and now: counted in the root's cutime by now
    return total


SERVER_WIDE = ("checkpointer", "background writer", "walwriter")


def _title(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGoneError(f"process {pid} is gone") from None


def works_for(title: str, database: str, oid: int) -> bool:
    """Whether a PostgreSQL process title belongs to ``database`` (or to every database)."""
    words = title.split()
    return (database in words or title.endswith(f"for database {oid}")
            or any(title.endswith(f": {name}") for name in SERVER_WIDE))


def database_cpu(postmaster: int, database: str, oid: int) -> float:
    """CPU seconds of the living PostgreSQL processes that work for ``database`` (see the module docstring)."""
    total = 0.0
    for child in _children(postmaster):
        try:
            if works_for(_title(child), database, oid):
                total += process_cpu(child)
        except ProcessGoneError:
            continue
    return total


def postmaster_pid(database_url: str) -> int:
    """The PID of the postmaster serving ``database_url``: the parent of our backend."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(_fields(int(row[0]))[1])


@dataclass
class Meter:
    """CPU seconds of several named sources, read together; ``since`` gives the time spent
    by each since the last ``mark``."""

    sources: dict[str, Callable[[], float]] = field(default_factory=dict)
    _marks: dict[str, float] = field(default_factory=dict)

    def read(self) -> dict[str, float]:
        return {name: read() for name, read in self.sources.items()}

    def mark(self) -> None:
        self._marks = self.read()

    def since(self) -> dict[str, float]:
        now = self.read()
        return {name: now[name] - self._marks.get(name, 0.0) for name in now}
