"""An ingest worker that dies (SIGKILL, as ``kill -9``) right after committing its first batch,
when it starts publishing the devices' acks: the moment of a crash that must cost no ack.

Run as ``python -m tests.ingest.dying_worker DEVICE MESSAGES`` with a worker's environment
(``IngestProcess.env``): it prints ``ready`` once connected and subscribed, takes from its
session MESSAGES messages of DEVICE (and whatever else comes first: the broker also hands a
new shared subscription the retained statuses of other devices) as one batch, and commits
them through the real pipeline.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

from ingest.config import IngestSettings
from ingest.mqtt import Inbound, MqttSource
from ingest.pipeline import Pipeline
from ingest.store import Store

# Long enough for paho's network thread to send whatever the pipeline queued before its first
# ack publish (the kill of a real crash lands at any time after that).
FLUSH_S = 0.5
SUBACK_S = 0.5  # the subscriptions of the first connection take effect


class DiesAtFirstAck(MqttSource):
    """A source whose first publish is where the process is killed."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        time.sleep(FLUSH_S)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: killed")


def main(device_id: str, count: int) -> None:
    settings = IngestSettings(geofence=False, metrics_port=0)
    source = DiesAtFirstAck(settings)
    pipeline = Pipeline(settings, source, Store(settings.database_url))
    source.start()
    deadline = time.monotonic() + 20
    while source.connected_at is None:
        if time.monotonic() > deadline:
            raise SystemExit("the dying worker could not connect")
        time.sleep(0.05)
    time.sleep(SUBACK_S)
    print("ready", flush=True)
    messages: list[Inbound] = []
    while sum(m.topic.startswith(f"ctt/v1/dev/{device_id}/") for m in messages) < count:
        messages.append(source.inbox.get(timeout=20))
    pipeline.process(messages, threading.Event())
    raise SystemExit("the dying worker published no ack")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
