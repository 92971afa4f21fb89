"""One alert object: the MQTT alert message (ingest), the live stream's ``alert`` event,
the Web Push payload and ``GET /alerts`` carry the same fields with the same values,
times as identical strings, for a seal breach that ingest opens and for an officer's
acknowledgement that ingest relays."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import psycopg
from psycopg.rows import dict_row

from protocol.alerts import FIELDS
from protocol.records import SealEvent, encode
from tests.dashboards.world import shipments_on
from tests.support import AlertListener, ApiServer, Device, EventStream, IngestProcess, SseEvent, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings
from tracking_api.i18n import Messages
from tracking_api.push import payload
from tracking_api.stream import _ALERT_EVENTS, alert_event

LAT = -0.8  # a parallel of its own


def _request(api: ApiServer, method: str, path: str, token: str) -> Any:
    request = urllib.request.Request(f"{api.url}{path}", method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _push_payload(database_url: str, change: SseEvent) -> dict[str, Any]:
    """What the Web Push notifier sends for this change: ``payload()`` of the event the Hub reads."""
    assert change.id is not None
    with psycopg.connect(database_url) as conn:
        rows = conn.cursor(row_factory=dict_row).execute(_ALERT_EVENTS, (change.id - 1, 1)).fetchall()
    (event,) = [alert_event(r) for r in rows]
    assert event.id == change.id
    english = Messages(ApiSettings().dashboards_dir)
    received: dict[str, Any] = json.loads(json.dumps(payload(event, english)))  # as the service worker gets it
    return received


def _same_alert(mqtt: dict[str, Any], sse: dict[str, Any], push: dict[str, Any], listed: dict[str, Any]) -> None:
    assert list(listed) == list(FIELDS)
    for name, carrier in (("mqtt", mqtt), ("stream", sse), ("push", push)):
        assert set(FIELDS) <= set(carrier), f"{name} lacks {set(FIELDS) - set(carrier)}"
        assert {f: carrier[f] for f in FIELDS} == listed, name
    assert mqtt["event"] == sse["event"] == push["event"]
    assert set(mqtt) == set(sse) == {*FIELDS, "event"}


def test_mqtt_stream_push_and_list_carry_one_alert_object(ingest: IngestProcess, api_server: ApiServer,
                                                          listener: AlertListener, database_url: str) -> None:
    (shipment,) = shipments_on(database_url, "object", LAT, 36.0, 37.0, 1)
    operator = mint(ApiSettings(), "object-operator", "operator")
    stream = EventStream(api_server.url, operator, query="?kind=alert")
    try:
        now = int(time.time() * 1000)
        with Device(shipment.seal) as seal:
            seal.publish_all([
                # Armed at the office of departure (elsewhere it is a seal_mismatch, a second alert).
                ("seal", encode(SealEvent(seq=0, ts=now - 600_000, seal_id=shipment.seal, event="armed",
                                          lat=LAT, lon=36.0))),
                ("seal", encode(SealEvent(seq=1, ts=now - 30_000, seal_id=shipment.seal, event="opened",
                                          lat=LAT, lon=36.2)))])
        for event in ("opened", "acknowledged"):
            message = wait_for(lambda e=event: [m for m in listener.messages  # type: ignore[misc]
                                                if m["device"] == shipment.seal and m["event"] == e], 15,
                               f"the {event} message on the alert topic")[-1]
            change = wait_for(lambda e=event: [c for c in stream.of("alert")  # type: ignore[misc]
                                               if c.data["device"] == shipment.seal and c.data["event"] == e], 5,
                              f"the {event} change on the stream")[-1]
            page = _request(api_server, "GET", f"/alerts?shipment={shipment.id}", operator)
            (listed,) = page["items"]
            _same_alert(message, change.data, _push_payload(database_url, change), listed)
            assert listed["type"] == "seal_breach" and listed["started_at"].endswith("Z")
            if event == "opened":
                _request(api_server, "POST", f"/alerts/{listed['id']}/ack", operator)
        assert listed["acknowledged_by"] == "object-operator" and listed["acknowledged_at"].endswith("Z")
    finally:
        stream.close()
