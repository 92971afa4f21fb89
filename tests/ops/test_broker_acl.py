"""The broker itself refuses a device writing to another device's topics (devices over TLS with their own
credentials: a certificate, or a secret for the MQTT 3.1.1 one)."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from firmware_sim.link import Credentials
from protocol.records import Fix, encode
from tests.support import BROKER_SECRET, TEST_BROKER, Device, IngestProcess, provision, scalar, unique_prefix, wait_for

NOT_AUTHORIZED = 0x87


def _fix(seq: int) -> bytes:
    return encode(Fix(seq=seq, ts=int(time.time() * 1000) - 60_000, lat=0.5, lon=34.0))


def test_mqtt5_device_gets_not_authorized_for_another_devices_topic(ingest: IngestProcess,
                                                                    database_url: str) -> None:
    own, other = unique_prefix("aclA"), unique_prefix("aclB")
    provision([own, other])
    with Device(own) as d:
        info = d.publish("pos", _fix(0), topic=f"ctt/v1/dev/{other}/pos")
        info.wait_for_publish(timeout=10)
        assert wait_for(lambda: d.puback_reasons.get(info.mid), 5, "PUBACK") == NOT_AUTHORIZED
        d.publish_all([("pos", _fix(0))])  # its own topic works
        wait_for(lambda: 0 in d.acks, 10, "ack of its own record")
    # Messages of one client are delivered in order: the refused one is not behind.
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (other,)) == 0
    assert scalar(database_url, "SELECT count(*) FROM devices WHERE device_id = %s", (other,)) == 0


def test_mqtt311_device_cannot_inject_into_another_devices_topic(ingest: IngestProcess, database_url: str) -> None:
    own, other = unique_prefix("acl3A"), unique_prefix("acl3B")
    provision([own, other], "secret")
    with Device(own, protocol=MQTTProtocolVersion.MQTTv311) as d:
        d.publish_all([("pos", _fix(0))])
        d.client.publish(f"ctt/v1/dev/{other}/pos", _fix(0), qos=1).wait_for_publish(timeout=10)
        d.client.publish(f"ctt/v1/dev/{other}/ack", b'{"seq": 99}', qos=1).wait_for_publish(timeout=10)
        d.publish_all([("pos", _fix(1))])
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (own,)) == 2,
                 10, "own records stored")
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (other,)) == 0


def test_wrong_password_and_foreign_client_id_are_refused() -> None:
    dev = unique_prefix("aclP")
    provision([dev], "secret")
    refused: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev, protocol=MQTTProtocolVersion.MQTTv5)
    Credentials(ca_file=TEST_BROKER.pki.ca_cert, password="not-the-password").apply(client, dev)
    client.on_connect = lambda c, u, f, rc, p: refused.append(str(rc))
    client.connect(*BROKER_SECRET)
    client.loop_start()
    try:
        wait_for(lambda: refused, 5, "CONNACK")
    finally:
        client.loop_stop()
    assert refused[0] in ("Not authorized", "Bad user name or password")
