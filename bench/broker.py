"""The scale bench's own Mosquitto: the project's configuration (``deploy/mosquitto/``'s
template and ACL, rendered as ``deploy/services.sh`` renders them) with the project's CA
and CRL, on free loopback ports and in a fresh state directory removed afterwards.

Why not the tests' broker on 1884: offline sessions that other test runs leave on it
subscribe to every device topic, so each would take (and keep for 30 days) a copy of the
bench's hundreds of thousands of messages, inflating the broker's CPU figure; and a broker
the bench brings down takes every engineer's tests with it (the bench's first run there
ended with Mosquitto 2.0.11 dying of a general protection fault: memory corrupted by an
unsubscribe from a topic a session held shared, fixed in Mosquitto 2.0.19 and avoided by
ingest since commit a4168aa). The same binary and settings, alone: the figure is the
tests' broker's, without the others' load.

Accounts: ``ctt-ingest`` with the tests' secret (``tests.support``'s ingest helpers connect
unchanged) and the bench account (``bench/account.py``); devices with a certificate from
the project CA connect as on any broker of the project.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.account import PASSWORD_ENV, add_account
from ctt.broker_auth import upsert_accounts
from ctt.config import REPO_ROOT
from tests.support import TEST_BROKER, TEST_INGEST_PASSWORD, TEST_INGEST_USER, free_port

TEMPLATE = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf.in"
ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl"
MOSQUITTO = "/usr/sbin/mosquitto"
PID_ENV = "CTT_BENCH_BROKER_PID"
# tests.support reads these at import: a bench process started with them talks to this broker.
PORT_ENV = ("CTT_TEST_BROKER_PORT", "CTT_TEST_BROKER_CERT_PORT", "CTT_TEST_BROKER_SECRET_PORT")


@dataclass(frozen=True)
class BenchBroker:
    dir: Path
    ports: tuple[int, int, int]  # plaintext (loopback, backend accounts), certificates, secrets
    pid: int
    password: str  # the bench account's

    def env(self) -> dict[str, str]:
        """What a bench process needs in its environment to use this broker."""
        return {**dict(zip(PORT_ENV, map(str, self.ports), strict=True)), PID_ENV: str(self.pid),
                PASSWORD_ENV: self.password}


def _render(state: Path, ports: tuple[int, int, int]) -> str:
    values = {"@STATE@": str(state), "@PORT@": str(ports[0]), "@USER@": getpass.getuser(),
              "@PKI@": str(TEST_BROKER.pki.root), "@CERT_PORT@": str(ports[1]), "@SECRET_PORT@": str(ports[2]),
              "@TLS_BIND@": "127.0.0.1"}
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def bench_broker() -> Iterator[BenchBroker]:
    """Start the bench's broker; stop it and remove its state on the way out."""
    root = Path(tempfile.mkdtemp(prefix="ctt-bench-broker-"))
    state = root / "mosquitto-bench"
    (state / "data").mkdir(parents=True)
    state.chmod(0o700)
    ports = (free_port(), free_port(), free_port())
    (state / "mosquitto.conf").write_text(_render(state, ports))
    shutil.copy(ACL, state / "acl")
    upsert_accounts(state / "passwd", {TEST_INGEST_USER: TEST_INGEST_PASSWORD})
    password = add_account(state, TEST_BROKER.dir / "devices")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(state / "mosquitto.conf")], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not all(map(_listening, ports)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bench's Mosquitto did not start; see {state / 'mosquitto.log'}")
            time.sleep(0.1)
        yield BenchBroker(state, ports, proc.pid, password)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
