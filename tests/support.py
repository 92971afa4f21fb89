"""Helpers for tests against the real broker and database (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ctt import devices
from ctt.broker_auth import service_secret
from ctt.config import DB_API, DB_INGEST, REPO_ROOT, OpsSettings
from firmware_sim.link import Credentials, Link
from protocol.records import DeviceAck

# The tests' own broker instance (``deploy/services.sh --test-tools``): test
# devices and sessions never reach the broker a local ingest or demo uses.
# Plaintext on loopback for the backend's accounts; devices over TLS, with a
# client certificate or with a secret.
BROKER = ("127.0.0.1", int(os.environ.get("CTT_TEST_BROKER_PORT", "1884")))
BROKER_CERT = ("127.0.0.1", int(os.environ.get("CTT_TEST_BROKER_CERT_PORT", "8884")))
BROKER_SECRET = ("127.0.0.1", int(os.environ.get("CTT_TEST_BROKER_SECRET_PORT", "8886")))
BROKER_STATE = OpsSettings().state_dir / "mosquitto-test"
TEST_BROKER = devices.local_broker(OpsSettings().state_dir, "mosquitto-test")
TEST_INGEST_USER = "ctt-ingest"
TEST_INGEST_PASSWORD = os.environ.get("CTT_BROKER_PASSWORD") or service_secret(OpsSettings().secrets_dir,
                                                                                TEST_INGEST_USER)


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)`` in a thread of its own: the calling thread may already run an
    event loop (Playwright's sync API keeps one in the main thread for the session's browser)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def as_role(database_url: str, role: str) -> str:
    """The test database as one of the application's roles (password from deploy/services.sh).

    The fixtures' ingest and API connect this way, as in production; tests keep
    the administrator's connection for set-up and inspection."""
    return OpsSettings().url_for(role, database_url)


def unique_prefix(name: str) -> str:
    return f"t{name}{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def provision(device_ids: list[str], kind: devices.Kind = "certificate") -> list[devices.Issued]:
    """Each device its own credential on the tests' broker (``ctt devices provision``'s code)."""
    issued = devices.provision(TEST_BROKER, device_ids, kind)
    if any(i.new and i.kind == "secret" for i in issued):
        time.sleep(0.3)  # the broker re-reads its password file
    return issued


def endpoint(credentials: Credentials) -> tuple[str, int]:
    """The tests' broker's TLS listener for a device holding ``credentials``."""
    return BROKER_CERT if credentials.cert_file else BROKER_SECRET


def device_link(device_id: str) -> Link:
    """A simulated device's connection with its own credentials from provisioning."""
    creds = devices.credentials(TEST_BROKER, device_id)
    return Link(device_id, creds, *endpoint(creds))


_HOLDING_OFFICE = """
INSERT INTO zones (name, kind, office_code, geometry)
VALUES ('Test holding office', 'office', 'TSTHLD',
        '{"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]]}')
ON CONFLICT (office_code) DO NOTHING
"""
_HOLDING_ROUTE = """
INSERT INTO routes (name, geometry) VALUES (%s, '{"type": "LineString", "coordinates": [[0, 0], [0.01, 0.01]]}')
RETURNING id
"""
_HOLDING_SHIPMENT = """
INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline)
VALUES (%s, %s, %s, 'TSTHLD', 'TSTHLD', now() + interval '2 days') RETURNING id
"""


def hold_seals(database_url: str, prefix: str, seal_ids: list[str]) -> None:
    """A registered shipment (never departed, so nothing is evaluated) holding ``seal_ids`` as its
    e-seals: their events then belong to an active shipment (ingest dead-letters the events of
    a seal no active shipment knows). For tests about storing records, not about seals."""
    with psycopg.connect(database_url) as conn:
        conn.execute(_HOLDING_OFFICE)
        route = conn.execute(_HOLDING_ROUTE, (f"{prefix}-holding",)).fetchone()
        assert route is not None
        shipment = conn.execute(_HOLDING_SHIPMENT, (f"{prefix}-holding", route[0], f"{prefix}-holding-trk")).fetchone()
        assert shipment is not None
        conn.execute("INSERT INTO shipment_seals (shipment_id, seal_id) SELECT %s, unnest(%s::text[])",
                     (shipment[0], seal_ids))


def query(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql, params)


def scalar(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return query(database_url, sql, params)[0][0]


@dataclass
class Device:
    """A device connected with its own credentials (client id = username)."""

    device_id: str
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5
    acks: list[int] = field(default_factory=list)
    puback_reasons: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id, protocol=self.protocol)
        self.credentials = devices.credentials(TEST_BROKER, self.device_id)
        self.credentials.apply(client, self.device_id)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.refused: str | None = None
        client.on_connect = self._on_connect
        client.on_message = lambda c, u, m: self.acks.append(msgspec.json.decode(m.payload, type=DeviceAck).seq)
        client.on_publish = self._on_publish
        self.client = client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            return
        client.subscribe(f"ctt/v1/dev/{self.device_id}/ack", 1)
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.puback_reasons[mid] = reason.value

    def __enter__(self) -> Device:
        self.client.connect(*endpoint(self.credentials), keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.client.loop_stop()
            raise AssertionError(f"device {self.device_id} could not connect ({self.refused or 'no CONNACK'})")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, kind: str, payload: bytes, topic: str | None = None) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic or f"ctt/v1/dev/{self.device_id}/{kind}", payload, qos=1)

    def publish_all(self, items: list[tuple[str, bytes]]) -> None:
        """Publish and wait until the broker has every one (PUBACK).

        In windows: paho refuses a publish whose 16-bit packet id is still in use."""
        window = 20_000
        for start in range(0, len(items), window):
            infos = [self.publish(kind, payload) for kind, payload in items[start : start + window]]
            for info in infos:
                info.wait_for_publish(timeout=30)


def reset_session(username: str, password: str, topics: list[str], client_id: str | None = None) -> None:
    """Start the persistent session of ``client_id`` (default: ``username``, as the broker's
    devices and a single ingest have it) afresh: subscribed to ``topics``, queue empty.

    With no topics the session is simply removed."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(username, password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0xFFFFFFFF if topics else 0
    client.connect(*BROKER, clean_start=True, properties=props)
    client.loop_start()
    for topic in topics:
        client.subscribe(topic, qos=1)
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


class IngestProcess:
    """``ctt ingest`` as a real process on the test database and test broker account."""

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "CTT_DATABASE_URL": as_role(database_url, DB_INGEST),
            "CTT_BROKER_PORT": str(BROKER[1]),
            "CTT_BROKER_USERNAME": TEST_INGEST_USER,
            "CTT_BROKER_PASSWORD": TEST_INGEST_PASSWORD,
            "CTT_METRICS_PORT": str(self.metrics_port),
            **env,
        }
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IngestProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ctt.cli", "ingest"], env=self.env,
                                     stdout=log, stderr=log, cwd=REPO_ROOT)
        wait_for(lambda: self.metric("ctt_ingest_broker_connected") == 1.0, 30, "ingest to connect")
        return self

    def metric(self, name: str) -> float | None:
        """Current value of an unlabelled metric, or None if unreachable."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"ingest exited with {self.proc.returncode}; see {self.log_path}")
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
        except OSError:
            return None
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def restart_with(self, **env: str) -> None:
        """Restart with extra environment (an empty value removes the variable)."""
        self.stop()
        for key, value in env.items():
            if value:
                self.env[key] = value
            else:
                self.env.pop(key, None)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AlertListener:
    """The officers' side: every message on ctt/v1/alerts/#."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._ready = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_prefix("obs"),
                             protocol=MQTTProtocolVersion.MQTTv5)
        client.username_pw_set("ctt-observer", OpsSettings().observer_password)
        client.on_connect = self._on_connect
        client.on_message = lambda c, u, m: self.messages.append(msgspec.json.decode(m.payload))
        client.connect(*BROKER)
        client.loop_start()
        assert self._ready.wait(10)
        time.sleep(0.2)  # the SUBACK
        self.client = client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        client.subscribe("ctt/v1/alerts/#", qos=1)
        self._ready.set()

    def of(self, device_id: str) -> list[tuple[str, str]]:
        return [(m["event"], m["type"]) for m in self.messages if m["device"] == device_id]

    def latest(self, device_id: str) -> dict[int, dict[str, Any]]:
        """The last message about each alert of ``device_id``, by alert id."""
        return {m["id"]: m for m in self.messages if m["device"] == device_id}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ApiServer:
    """``uvicorn tracking_api.main:app`` as a real process on the test database and broker."""

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.env = {**os.environ, "CTT_DATABASE_URL": as_role(database_url, DB_API), "CTT_BROKER_PORT": str(BROKER[1]),
                    "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "tracking_api.main:app", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--log-level", "warning",
                                      "--timeout-graceful-shutdown", "3"],
                                     env=self.env, stdout=log, stderr=log, cwd=REPO_ROOT)
        wait_for(self._ready, 30, "the API to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"API exited with {self.proc.returncode}; see {self.log_path}")
        try:
            return urllib.request.urlopen(f"{self.url}/readyz", timeout=2).status == 200  # type: ignore[no-any-return]
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class SseEvent:
    kind: str
    data: dict[str, Any]
    id: int | None


class StreamRefusedError(Exception):
    """``GET /stream`` answered with something other than 200."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"GET /stream: {status} {body[:200]!r}")
        self.status = status


class EventStream:
    """A client of ``GET /stream``: a thread reads events into ``events`` (and comments into ``comments``)."""

    def __init__(self, url: str, token: str, last_event_id: int | None = None, query: str = "") -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        parts = urllib.parse.urlsplit(f"{url}/stream{query}")
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers)
        # Kept so that close() can shut the socket down: closing the response alone waits for the
        # reader thread's pending read (the buffered reader's lock), i.e. for the next keep-alive.
        assert conn.sock is not None
        self._socket: socket.socket = conn.sock
        self._response = conn.getresponse()
        if self._response.status != 200:
            body = self._response.read()
            conn.close()
            raise StreamRefusedError(self._response.status, body)
        self.events: list[SseEvent] = []
        self.comments = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self._response:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in fields:
                        self.events.append(SseEvent(fields.get("event", "message"), msgspec.json.decode(fields["data"]),
                                                    int(fields["id"]) if "id" in fields else None))
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    name, _, value = line.partition(": ")
                    fields[name] = value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # closed mid-chunk (IncompleteRead) or after (http.client drops its file object)

    def of(self, kind: str) -> list[SseEvent]:
        return [e for e in self.events if e.kind == kind]

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the server may have gone first
            self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._response.close()
