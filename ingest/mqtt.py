"""The broker side of ingest (the only paho import in ``ingest``).

paho's network thread only queues: it never parses, never touches the
database. Messages are acknowledged (PUBACK) explicitly, after the batch that
holds them is committed. The MQTT 5 Receive Maximum caps how many unacknowledged
messages the broker sends us, which bounds memory while the database is down.
"""

from __future__ import annotations

import queue
import ssl
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest import metrics
from ingest.config import IngestSettings
from protocol.topics import SUBSCRIPTIONS, shared_subscriptions

log = structlog.get_logger("ingest.mqtt")
SESSION_EXPIRY_S = 0xFFFFFFFF  # MQTT 5: the session never expires on the broker


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message. ``generation`` counts connections: a PUBACK for a
    message of an earlier connection would name a packet id the broker has
    already redelivered under another, so it is never sent."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ms: int


class MqttSource:
    """Persistent MQTT 5 session that feeds ``self.inbox``: the device topics, or this
    worker's share of them (a shared subscription)."""

    def __init__(self, settings: IngestSettings, retire: bool = False) -> None:
        self.inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._settings = settings
        self._generation = 0
        # Each counter has one writer thread, so their difference needs no lock.
        self._received = 0
        self._released = 0
        # time.monotonic() of the current connection, None while disconnected (the sweep waits on it).
        self.connected_at: float | None = None
        metrics.HELD_MESSAGES.set_function(self.held)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(settings.broker_username, settings.broker_password)
        if settings.broker_ca_file is not None:
            client.tls_set(ca_certs=str(settings.broker_ca_file), cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        # A worker with an identity takes its share of the group; without one, ingest is the
        # single v1 subscriber. Never both on one session: Mosquitto before 2.0.19 corrupts its
        # memory when a session unsubscribes a topic it also holds as a shared subscription.
        self._topics = SUBSCRIPTIONS if settings.worker_id is None else shared_subscriptions(settings.share_group)
        # Retiring: leave the group (no new share), drain what the session holds, end the session.
        self._retire = retire
        self._expiry_s = SESSION_EXPIRY_S if settings.worker_id is None else settings.worker_session_expiry_s

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._expiry_s
        props.ReceiveMaximum = self._settings.receive_maximum
        self._client.connect_async(
            self._settings.broker_host,
            self._settings.broker_port,
            keepalive=self._settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        props = None
        if self._retire:  # MQTT 5: a DISCONNECT may end the session it was keeping
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self._client.disconnect(properties=props)
        self._client.loop_stop()

    def held(self) -> int:
        """Messages received and not yet released by ``ack``: ingest's memory bound."""
        return self._received - self._released

    def ack(self, messages: list[Inbound]) -> None:
        """PUBACK messages in the order received (those of the current connection)."""
        generation = self._generation
        for m in messages:
            if m.qos > 0 and m.generation == generation:
                self._client.ack(m.mid, m.qos)
        self._released += len(messages)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """QoS 1 publish; paho queues it while the broker is away (``is_published()`` after PUBACK)."""
        return self._client.publish(topic, payload, qos=1, retain=retain)

    # paho callbacks: network thread, keep them trivial.
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused connection", reason=str(reason))
            return
        self._generation += 1
        self.connected_at = time.monotonic()
        if self._retire:
            client.unsubscribe(list(self._topics))
        else:
            client.subscribe([(t, 1) for t in self._topics])
        metrics.MQTT_CONNECTED.set(1)
        log.info("connected to broker", session_present=flags.session_present, generation=self._generation)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        metrics.MQTT_CONNECTED.set(0)
        self.connected_at = None
        log.warning("disconnected from broker", reason=str(reason))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._received += 1
        self.inbox.put(
            Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, int(time.time() * 1000))
        )
