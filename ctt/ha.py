"""Control of the local Patroni cluster (``deploy/ha.sh``): start and stop it, find its
leader and synchronous standby from Patroni's REST API, kill the primary, and time a
failover from the client's side. Used by the failover tests and ``bench/scale.py``;
needs root (or the ``postgres`` user) to signal the cluster's processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from ctt.config import REPO_ROOT

HA_SCRIPT = REPO_ROOT / "deploy" / "ha.sh"
# Seconds a client waits for each host: a dead primary's port refuses at once, but a
# host that does not answer at all would otherwise hold every reconnect for libpq's default (forever).
CONNECT_TIMEOUT_S = 2


class ClusterError(RuntimeError):
    """The cluster did not reach the state asked for; the message says which and what it was."""


@dataclass(frozen=True)
class Member:
    """One Patroni node as ``GET /cluster`` lists it."""

    name: str
    role: str  # "leader", "sync_standby", "replica"
    state: str  # "running", "starting", "stopped", ...
    port: int  # PostgreSQL's
    timeline: int | None = None


def _ports(variables: tuple[str, str], defaults: tuple[int, int]) -> tuple[int, int]:
    return (int(os.environ.get(variables[0], defaults[0])), int(os.environ.get(variables[1], defaults[1])))


@dataclass(frozen=True)
class Cluster:
    """The two-node cluster of ``deploy/ha.sh`` (ports from the same ``CTT_HA_*`` variables)."""

    state_dir: Path
    pg_ports: tuple[int, int] = field(default_factory=lambda: _ports(("CTT_HA_PG_PORT1", "CTT_HA_PG_PORT2"),
                                                                     (5433, 5434)))
    rest_ports: tuple[int, int] = field(default_factory=lambda: _ports(("CTT_HA_REST_PORT1", "CTT_HA_REST_PORT2"),
                                                                       (8008, 8009)))

    @property
    def home(self) -> Path:
        """The cluster's directory, postgres's own (as ``deploy/ha.sh`` computes it)."""
        configured = os.environ.get("CTT_HA_DIR")
        if configured:
            return Path(configured)
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path("/var/lib/postgresql/ctt-ha") / digest

    def url(self, database: str = "postgres") -> str:
        """A multi-host URL without credentials: libpq tries each node and keeps the writable one."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.pg_ports)
        return (f"postgresql://{hosts}/{database}"
                f"?target_session_attrs=read-write&connect_timeout={CONNECT_TIMEOUT_S}")

    def up(self, sync: bool = True, test_tools: bool = True, timeout: float = 300) -> None:
        """Start (or keep) the cluster in the replication mode asked for; returns once it has a
        leader and a (synchronous, with ``sync``) standby and the application's roles."""
        args = ["up"] + ([] if sync else ["--async"]) + (["--test-tools"] if test_tools else [])
        self._script(args, timeout)

    def down(self, timeout: float = 120) -> None:
        self._script(["down"], timeout)

    def _script(self, args: list[str], timeout: float) -> None:
        env = {**os.environ, "CTT_STATE_DIR": str(self.state_dir)}
        result = subprocess.run(["bash", str(HA_SCRIPT), *args], env=env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise ClusterError(f"deploy/ha.sh {' '.join(args)} exited with {result.returncode}: "
                               f"{result.stderr.strip()[-2000:]}")

    def members(self) -> list[Member]:
        """The members as the first REST API that answers sees them (empty when none answers)."""
        for port in self.rest_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/cluster", timeout=2) as response:
                    body: dict[str, Any] = json.load(response)
            except (OSError, ValueError):
                continue
            return [Member(m["name"], m["role"], m["state"], int(m["port"]), m.get("timeline"))
                    for m in body.get("members", [])]
        return []

    def leader(self) -> Member | None:
        """The running leader, if any."""
        return next((m for m in self.members() if m.role == "leader" and m.state == "running"), None)

    def sync_standby(self) -> Member | None:
        return next((m for m in self.members() if m.role == "sync_standby" and m.state in ("running", "streaming")),
                    None)

    def replica(self) -> Member | None:
        """A running member that is not the leader."""
        return next((m for m in self.members() if m.role != "leader" and m.state in ("running", "streaming")),
                    None)

    def postmaster_pid(self, member: Member) -> int:
        """The PID in the member's ``data/postmaster.pid`` (its first line)."""
        path = self.home / member.name / "data" / "postmaster.pid"
        try:
            return int(_read_as_postgres(path).split("\n", 1)[0])
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            raise ClusterError(f"no postmaster PID for {member.name} in {path}: {exc}") from None

    def kill_primary(self, with_children: bool = False) -> Member:
        """``kill -9`` the leader's postmaster (Patroni itself stays up); returns the member killed.

        ``with_children``: its backends and WAL senders too, at once, as when the machine dies; alone,
        they finish what they were doing (a WAL sender may still ship WAL already written)."""
        leader = self.leader()
        if leader is None:
            raise ClusterError(f"no running leader to kill (members: {self.members()})")
        postmaster = self.postmaster_pid(leader)
        children = _children(postmaster) if with_children else []
        for pid in [postmaster, *children]:
            send_signal(pid, signal.SIGKILL)
        return leader

    def wait_for_new_leader(self, old: Member, timeout: float = 90) -> Member:
        """The running leader other than ``old``, once Patroni has promoted it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader.name != old.name:
                return leader
            time.sleep(0.2)
        raise ClusterError(f"no new leader {timeout} s after {old.name} died (members: {self.members()})")

    def wait_healthy(self, sync: bool = True, timeout: float = 120) -> Member:
        """Wait until there is a leader and a running standby (synchronous with ``sync``), e.g. the
        old primary rejoined after a failover; returns the leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader, standby = self.leader(), self.sync_standby() if sync else self.replica()
            if leader is not None and standby is not None:
                return leader
            time.sleep(0.5)
        raise ClusterError(f"cluster not healthy after {timeout} s (members: {self.members()})")


def _children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _privileged() -> bool:
    return os.geteuid() == 0 or os.environ.get("USER") == "postgres"


def _read_as_postgres(path: Path) -> str:
    """A file in the cluster's 0700 directories: directly as root or ``postgres``, else ``sudo -n cat``."""
    if _privileged():
        return path.read_text()
    return subprocess.run(["sudo", "-n", "cat", str(path)], capture_output=True, text=True, check=True).stdout


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Signal one of the cluster's processes (they run as ``postgres``): directly as root or
    ``postgres``, else through ``sudo -n``."""
    if _privileged():
        os.kill(pid, sig)
    else:
        subprocess.run(["sudo", "-n", "kill", "-s", sig.name.removeprefix("SIG"), str(pid)], check=True)


def committed_write(url: str) -> int:
    """One short INSERT committed through ``url``; returns the port of the server that took it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO ha_probe DEFAULT VALUES")
        row = conn.execute("SELECT inet_server_port()").fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class WriteProbe:
    """Commits short INSERTs in a loop through a multi-host URL, on a fresh connection after each
    failure, and records when each commit returned (``time.monotonic()``) and on which port."""

    url: str
    interval_s: float = 0.02
    commits: list[tuple[float, int]] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> WriteProbe:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ha_probe (id bigserial PRIMARY KEY,"
                         " at timestamptz NOT NULL DEFAULT clock_timestamp())")
        self._thread = threading.Thread(target=self._run, name="ha-write-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                port = committed_write(self.url)
            except psycopg.Error:
                self.errors += 1
            else:
                self.commits.append((time.monotonic(), port))
            self._stop.wait(self.interval_s)

    def first_commit_after(self, moment: float, timeout: float = 90, not_on: int | None = None) -> tuple[float, int]:
        """The first commit that returned after ``moment`` (on a port other than ``not_on``):
        (its time, its port); waits for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [c for c in self.commits if c[0] > moment and c[1] != not_on]
            if later:
                return later[0]
            time.sleep(0.05)
        raise ClusterError(f"no write committed within {timeout} s of the kill ({self.errors} failed attempts)"
                           + (f" on a port other than {not_on}" if not_on is not None else ""))


def failover_seconds(cluster: Cluster, url: str, timeout: float = 90) -> float:
    """Seconds from ``kill -9`` of the primary's postmaster to the first committed write on the
    new primary, measured by a :class:`WriteProbe` on ``url`` (a multi-host URL whose role may
    create a table). Leaves the cluster failed over; :meth:`Cluster.wait_healthy` waits for the
    old primary to rejoin.

    Commits on the old primary's port after the kill do not count: a backend that was already
    running when its postmaster died finishes its statement (and commits, the standby
    confirming) before it notices; and a primary restarted in place (``primary_start_timeout``
    not 0) is no failover."""
    with WriteProbe(url) as probe:
        probe.first_commit_after(time.monotonic() - 1, timeout)  # the probe writes before the kill
        killed_at = time.monotonic()
        old = cluster.kill_primary()
        at, _ = probe.first_commit_after(killed_at, timeout, not_on=old.port)
    return at - killed_at


def on_member(url: str, member: Member) -> str:
    """``url`` (credentials, database) pointed at ``member`` alone, whatever its role."""
    return make_conninfo(url, host="127.0.0.1", port=str(member.port), target_session_attrs="any")


def walreceiver_pid(standby: Member, url: str) -> int:
    """The PID of ``standby``'s WAL receiver (``pg_stat_wal_receiver``), asked with ``url``'s credentials."""
    with psycopg.connect(on_member(url, standby), autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_wal_receiver").fetchone()
    if row is None or row[0] is None:
        raise ClusterError(f"{standby.name} has no WAL receiver running")
    return int(row[0])
