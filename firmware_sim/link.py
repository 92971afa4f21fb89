"""One device's MQTT connection (the only paho import in the simulator)."""

from __future__ import annotations

import contextlib
import queue
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from protocol.records import DeviceAck, Status, encode
from protocol.topics import ack_topic, record_topic

_decode_ack = msgspec.json.Decoder(DeviceAck).decode


@dataclass(frozen=True)
class Credentials:
    """What a device holds to connect: the CA certificate it trusts (TLS; None: plaintext,
    loopback only) and either its client certificate and key or its secret."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password: str | None = None

    def apply(self, client: mqtt.Client, device_id: str) -> None:
        if self.ca_file is not None:
            # Verifies the broker's certificate and host name against the project CA.
            client.tls_set(ca_certs=str(self.ca_file), certfile=_opt(self.cert_file), keyfile=_opt(self.key_file),
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # With a certificate the broker takes the username from its CN and needs no password.
        client.username_pw_set(device_id, self.password)


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)


class Link:
    """MQTT 5 client with the device's own credentials (client id = username).

    Acks from the backend land in ``acks`` (read by the simulation thread).
    """

    def __init__(self, device_id: str, credentials: Credentials, host: str, port: int, fw: str = "sim-1.0") -> None:
        self.device_id = device_id
        self.acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.connected = threading.Event()
        self.refused: str | None = None
        self._host, self._port, self._fw = host, port, fw
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=MQTTProtocolVersion.MQTTv5)
        credentials.apply(client, device_id)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        self._started = False

    @property
    def active(self) -> bool:
        """True from connect() until drop() or close(): the device wants a connection."""
        return self._started

    def connect(self, t_ms: int, buffered: int) -> None:
        """Connect (asynchronously); the Last Will marks the device lost."""
        self._status_online = encode(Status(ts=t_ms, state="online", fw=self._fw, buffered=buffered))
        will = encode(Status(ts=t_ms, state="lost", fw=self._fw))
        self._client.will_set(record_topic(self.device_id, "status"), will, qos=1, retain=True)
        self._client.connect_async(self._host, self._port, keepalive=30, clean_start=True)
        self._client.loop_start()
        self._started = True

    def drop(self) -> None:
        """Lose coverage: disconnect asking the broker to publish the Last Will."""
        self._client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        self._client.loop_stop()
        self._started = False
        self.connected.clear()

    def publish(self, kind: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self._client.publish(record_topic(self.device_id, kind), payload, qos=1, retain=retain)  # type: ignore[arg-type]

    def close(self, t_ms: int) -> None:
        """Power down cleanly: retained ``offline`` status, then disconnect."""
        if self.connected.is_set():
            info = self.publish("status", encode(Status(ts=t_ms, state="offline", fw=self._fw)), retain=True)
            info.wait_for_publish(timeout=5)
            self._client.disconnect()
        if self._started:
            self._client.loop_stop()
            self._started = False

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
            return
        client.subscribe(ack_topic(self.device_id), qos=1)
        client.publish(record_topic(self.device_id, "status"), self._status_online, qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        self.connected.clear()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # The backend is the only writer of ack topics; anything else is ignored.
        with contextlib.suppress(msgspec.DecodeError):
            self.acks.put(_decode_ack(msg.payload).seq)
