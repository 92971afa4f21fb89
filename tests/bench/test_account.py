"""The scale bench's broker account (bench/account.py) stays in the bench's own broker and
may only write positions: attacks on each guard."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.account import ACCOUNT, BenchAccountError, add_account
from bench.broker import bench_broker
from firmware_sim.link import Credentials
from tests.support import TEST_BROKER, TEST_INGEST_PASSWORD, TEST_INGEST_USER

ACL = "# the project's ACL\n"


def broker_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "acl").write_text(ACL)
    return path


@pytest.mark.parametrize("name", ["mosquitto", "mosquitto-test"])
def test_the_projects_brokers_never_get_the_account(tmp_path: Path, name: str) -> None:
    target = broker_dir(tmp_path, name)
    with pytest.raises(BenchAccountError, match="bench's own broker only"):
        add_account(target, tmp_path / "devices")
    assert (target / "acl").read_text() == ACL and not (target / "passwd").exists()


def test_a_device_named_like_the_account_is_refused(tmp_path: Path) -> None:
    target = broker_dir(tmp_path, "mosquitto-bench")
    (tmp_path / "devices" / ACCOUNT).mkdir(parents=True)
    with pytest.raises(BenchAccountError, match="would gain"):
        add_account(target, tmp_path / "devices")
    assert (target / "acl").read_text() == ACL


class Client:
    """An account on the bench's broker (TLS with a secret, or the loopback listener): PUBACK
    reasons and the topics of the messages it receives."""

    def __init__(self, port: int, user: str, password: str, tls: bool = True) -> None:
        self.reasons: dict[int, ReasonCode] = {}
        self.received: list[str] = []
        self.event = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=MQTTProtocolVersion.MQTTv5)
        Credentials(ca_file=TEST_BROKER.pki.ca_cert if tls else None, password=password).apply(client, user)
        client.on_connect = lambda c, u, f, r, p: self.event.set()
        client.on_publish = self._on_publish
        client.on_subscribe = lambda c, u, m, r, p: self.event.set()
        client.on_message = lambda c, u, m: self.received.append(m.topic)
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert self.event.wait(10), "the bench account could not connect"
        self.client = client

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self.reasons[mid] = reason

    def publish(self, topic: str) -> ReasonCode:
        info = self.client.publish(topic, b"{}", qos=1)
        info.wait_for_publish(10)
        return self.reasons[info.mid]

    def subscribe(self, topic: str) -> None:
        self.event.clear()
        self.client.subscribe(topic, qos=1)
        assert self.event.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_account_writes_positions_only() -> None:
    with bench_broker() as broker:
        bench = Client(broker.ports[2], ACCOUNT, broker.password)
        # Mosquitto grants any subscription and checks the ACL on each delivery: the account
        # subscribes to everything and must receive nothing of what is published.
        bench.subscribe("#")
        ingest = Client(broker.ports[0], TEST_INGEST_USER, TEST_INGEST_PASSWORD, tls=False)
        try:
            assert not bench.publish("ctt/v1/dev/bench-t1/pos").is_failure
            for kind in ("seal", "status"):
                assert bench.publish(f"ctt/v1/dev/bench-t1/{kind}").value == 0x87  # not authorised
            for topic in ("ctt/v1/dev/bench-t1/ack", "ctt/v1/alerts/seal_breach"):
                assert not ingest.publish(topic).is_failure
            time.sleep(0.5)
            assert bench.received == []
        finally:
            bench.close()
            ingest.close()
