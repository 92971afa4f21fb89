"""``GET /stream`` on a real API process: fan-out by region, resume, positions, keep-alives."""

from __future__ import annotations

import http.client
import json
import secrets
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import ApiServer, EventStream, StreamRefusedError, execute, query, scalar, wait_for
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

HOUR_MS = 3_600_000
BOX = ((36.79, -1.31), (36.81, -1.31), (36.81, -1.29), (36.79, -1.29), (36.79, -1.31))
REGION = '{"type": "Polygon", "coordinates": [[[36, -2], [37, -2], [37, -1], [36, -1], [36, -2]]]}'


def token(role: str, region: str | None = None) -> str:
    return mint(ApiSettings(), "stream-tester", role, region)


@pytest.fixture
def api(api_server: ApiServer) -> ApiServer:
    return api_server


@dataclass
class Pair:
    """Two in-transit shipments, each in a region of its own."""

    ids: tuple[int, int]
    trackers: tuple[str, str]
    regions: tuple[str, str]


@pytest.fixture
def pair(database_url: str) -> Pair:
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    zones = [ZoneSpec("Stream office A", "office", BOX, "STRA"), ZoneSpec("Stream office B", "office", BOX, "STRB")]
    route = RouteSpec(f"route-{tag}", ((36.8, -1.3), (36.8, -1.0)))
    trackers = (f"a-{tag}", f"b-{tag}")
    shipments = [ShipmentSpec(f"26ST{tag.upper()}0000{i}", route.name, t, (), "STRA", "STRB", now - HOUR_MS,
                              now + 24 * HOUR_MS) for i, t in enumerate(trackers)]
    with psycopg.connect(database_url) as conn:
        ids = register(conn, Scenario("stream", [], zones, [route], shipments, [], now, now, 15.0))
    sids = (ids[shipments[0].reference], ids[shipments[1].reference])
    regions = (f"A{tag}", f"B{tag}")
    for sid, region in zip(sids, regions, strict=True):
        execute(database_url, "INSERT INTO regions (code, name, geometry) VALUES (%s, 'test', %s)", (region, REGION))
        execute(database_url, "INSERT INTO shipment_regions VALUES (%s, %s)", (sid, region))
    return Pair(sids, trackers, regions)


def open_alert(database_url: str, shipment_id: int, device: str, kind: str = "unscheduled_stop") -> int:
    return int(scalar(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat,"
                                    " lon, severity) VALUES (%s, %s, %s, now(), now(), -1.2, 36.8, 'high')"
                                    " RETURNING id", (kind, shipment_id, device)))


def alert_ids(stream: EventStream) -> list[int]:
    return [e.data["id"] for e in stream.of("alert")]


def test_alert_changes_reach_the_clients_allowed_to_see_them(api: ApiServer, pair: Pair, database_url: str) -> None:
    admin = EventStream(api.url, token("admin"))
    officer_a = EventStream(api.url, token("officer", pair.regions[0]))
    officer_b = EventStream(api.url, token("officer", pair.regions[1]))
    try:
        time.sleep(0.3)
        first = open_alert(database_url, pair.ids[0], pair.trackers[0])
        second = open_alert(database_url, pair.ids[1], pair.trackers[1], "route_deviation")
        wait_for(lambda: {first, second} <= set(alert_ids(admin)), 5, "both alerts on the admin's stream")
        wait_for(lambda: second in alert_ids(officer_b), 5, "region B's alert on officer B's stream")
        wait_for(lambda: first in alert_ids(officer_a), 5, "region A's alert on officer A's stream")
        assert first not in alert_ids(officer_b) and second not in alert_ids(officer_a)
        (event,) = [e for e in admin.of("alert") if e.data["id"] == first]
        assert event.id is not None and event.data["event"] == "opened" and event.data["type"] == "unscheduled_stop"
        assert event.data["shipment"] == pair.ids[0] and event.data["ended_at"] is None
    finally:
        for s in (admin, officer_a, officer_b):
            s.close()


def test_a_client_resumes_after_last_event_id_without_gaps(api: ApiServer, pair: Pair, database_url: str) -> None:
    stream = EventStream(api.url, token("operator"))
    mark = open_alert(database_url, pair.ids[0], pair.trackers[0])
    wait_for(lambda: mark in alert_ids(stream), 5, "the first alert")
    last_id = stream.of("alert")[-1].id
    stream.close()
    missed = open_alert(database_url, pair.ids[1], pair.trackers[1])
    execute(database_url, "UPDATE alerts SET ended_at = now() WHERE id = %s", (mark,))
    resumed = EventStream(api.url, token("operator"), last_event_id=last_id)
    try:
        wait_for(lambda: len(resumed.of("alert")) >= 2, 5, "the missed events")
        got = [(e.data["id"], e.data["event"]) for e in resumed.of("alert")[:2]]
        assert got == [(missed, "opened"), (mark, "ended")]
        assert last_id is not None
        ids = [e.id or 0 for e in resumed.of("alert")]
        assert ids == sorted(ids) and min(ids) > last_id
    finally:
        resumed.close()


@dataclass
class Interleaved:
    """An ingest-like transaction that opened an alert and stays open, and an API-like
    acknowledgement that commits first: the ingest event has the lower id, yet commits last."""

    ingest: psycopg.Connection[Any]
    ingest_event_id: int
    ack_event_id: int
    opened: int
    acknowledged: int

    def commit_ingest(self) -> None:
        self.ingest.commit()


def interleave(database_url: str, pair: Pair) -> Interleaved:
    acknowledged = open_alert(database_url, pair.ids[1], pair.trackers[1])
    ingest = psycopg.connect(database_url)
    opened = int(ingest.execute(
        "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)"
        " VALUES ('route_deviation', %s, %s, now(), now(), -1.2, 36.8, 'high') RETURNING id",
        (pair.ids[0], pair.trackers[0])).fetchone()[0])  # type: ignore[index]
    ingest_event = ingest.execute("SELECT id FROM alert_events WHERE alert_id = %s", (opened,)).fetchone()
    with psycopg.connect(database_url) as api:  # commits on leaving the block
        api.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = 'o', acknowledged_at = now(),"
                    " updated_at = now() WHERE id = %s", (acknowledged,))
        ack_event = api.execute("SELECT max(id) FROM alert_events WHERE alert_id = %s", (acknowledged,)).fetchone()
    assert ingest_event is not None and ack_event is not None
    assert ingest_event[0] < ack_event[0]  # ids in insert order, the reverse of commit order
    return Interleaved(ingest, ingest_event[0], ack_event[0], opened, acknowledged)


def read_after(database_url: str, column: str, last: int) -> list[tuple[int, int, str]]:
    """A reader of alert_events that resumes after ``last`` by ``column`` (seq, or the unsafe id)."""
    return [(r[0], r[1], r[2]) for r in query(
        database_url, f"SELECT {column}, alert_id, event FROM alert_events WHERE {column} > %s ORDER BY {column}",
        (last,))]


def test_a_seq_reader_gets_an_event_whose_transaction_commits_after_a_later_one(pair: Pair,
                                                                                database_url: str) -> None:
    start = int(scalar(database_url, "SELECT coalesce(max(seq), 0) FROM alert_events"))
    id_start = int(scalar(database_url, "SELECT coalesce(max(id), 0) FROM alert_events"))
    t = interleave(database_url, pair)
    try:
        first = read_after(database_url, "seq", start)
        by_id = read_after(database_url, "id", id_start)
        # The opening of the alert acknowledged, then its acknowledgement; not yet the ingest event.
        assert [(a, e) for _, a, e in first] == [(t.acknowledged, "opened"), (t.acknowledged, "acknowledged")]
        t.commit_ingest()
        second = read_after(database_url, "seq", first[-1][0])
        assert [(a, e) for _, a, e in second] == [(t.opened, "opened")]
        # The same reader by id has already passed the ingest event's id: it never sees it.
        assert read_after(database_url, "id", by_id[-1][0]) == []
    finally:
        t.ingest.close()


def test_the_stream_delivers_an_event_whose_transaction_commits_after_a_later_one(api: ApiServer, pair: Pair,
                                                                                 database_url: str) -> None:
    stream = EventStream(api.url, token("admin"))
    t = interleave(database_url, pair)
    try:
        wait_for(lambda: t.acknowledged in alert_ids(stream), 5, "the acknowledgement, committed first")
        t.commit_ingest()
        wait_for(lambda: t.opened in alert_ids(stream), 5, "the opening, committed last with the lower id")
        got = [(e.data["id"], e.data["event"]) for e in stream.of("alert")]
        assert got == [(t.acknowledged, "opened"), (t.acknowledged, "acknowledged"), (t.opened, "opened")]
        ids = [e.id or 0 for e in stream.of("alert")]
        assert ids == sorted(ids)  # stream ids are seqs: in commit order, safe to resume from
    finally:
        t.ingest.close()
        stream.close()


def test_a_replay_longer_than_a_page_and_the_old_cap_arrives_whole(api: ApiServer, pair: Pair,
                                                                  database_url: str) -> None:
    changes = 12_000  # the replay was capped at 10,000 and cut silently
    alert = open_alert(database_url, pair.ids[0], pair.trackers[0])
    last = int(scalar(database_url, "SELECT max(seq) FROM alert_events"))
    execute(database_url, f"DO $$ BEGIN FOR i IN 1..{changes} LOOP UPDATE alerts SET updated_at = now()"
                          f" WHERE id = {alert}; END LOOP; END $$")
    resumed = EventStream(api.url, token("operator"), last_event_id=last, query="?kind=alert")
    try:
        wait_for(lambda: len(resumed.of("alert")) >= changes, 60, f"{changes} replayed changes")
        mine = [e for e in resumed.of("alert") if e.data["id"] == alert]
        assert len(mine) == changes and {e.data["event"] for e in mine} == {"updated"}
        ids = [e.id or 0 for e in resumed.of("alert")]
        assert ids == sorted(set(ids)) and ids[0] > last  # in order, none twice
        kept = [r[0] for r in query(database_url, "SELECT seq FROM alert_events WHERE seq > %s AND seq <= %s"
                                                  " ORDER BY seq", (last, ids[-1]))]
        assert ids == kept
    finally:
        resumed.close()


def test_a_client_whose_gap_is_no_longer_kept_is_told_to_resync(api: ApiServer, pair: Pair,
                                                                database_url: str) -> None:
    seen = open_alert(database_url, pair.ids[0], pair.trackers[0])
    last = int(scalar(database_url, "SELECT seq FROM alert_events WHERE alert_id = %s", (seen,)))
    missed = open_alert(database_url, pair.ids[1], pair.trackers[1])
    pruned = int(scalar(database_url, "SELECT seq FROM alert_events WHERE alert_id = %s", (missed,)))
    execute(database_url, "DELETE FROM alert_events WHERE seq <= %s", (pruned,))  # retention passed over them
    execute(database_url, "UPDATE alerts SET ended_at = now() WHERE id = %s", (missed,))  # kept
    oldest, newest = query(database_url, "SELECT min(seq), max(seq) FROM alert_events")[0]
    resumed = EventStream(api.url, token("operator"), last_event_id=last)
    try:
        wait_for(lambda: resumed.of("resync"), 5, "the resync event")
        (resync,) = resumed.of("resync")
        assert resync.id == newest and resync.data == {"after": last, "oldest": oldest, "newest": newest}
        assert resumed.of("alert") == []  # nothing replayed: the client reloads instead
        live = open_alert(database_url, pair.ids[0], pair.trackers[0], "route_deviation")
        wait_for(lambda: live in alert_ids(resumed), 5, "live changes after the resync")
    finally:
        resumed.close()
    # Resuming from the resync's id (what a browser sends next) replays normally.
    again = EventStream(api.url, token("operator"), last_event_id=newest)
    try:
        wait_for(lambda: live in alert_ids(again), 5, "the change after the resync's id")
        assert again.of("resync") == []
    finally:
        again.close()


def test_a_last_event_id_this_database_never_gave_gets_a_resync(api: ApiServer, database_url: str) -> None:
    ahead = int(scalar(database_url, "SELECT coalesce(max(seq), 0) FROM alert_events")) + 1_000_000
    resumed = EventStream(api.url, token("admin"), last_event_id=ahead)
    try:
        wait_for(lambda: resumed.of("resync"), 5, "the resync event")
        assert resumed.of("resync")[0].data["after"] == ahead
    finally:
        resumed.close()


def test_positions_are_pushed_and_idle_streams_get_keepalives(api: ApiServer, pair: Pair,
                                                              database_url: str) -> None:
    stream = EventStream(api.url, token("officer", pair.regions[0]))
    phone = EventStream(api.url, token("officer", pair.regions[0]), query="?kind=alert")
    try:
        time.sleep(0.3)
        for tracker, lat in zip(pair.trackers, (-1.25, -1.15), strict=True):
            execute(database_url, "INSERT INTO latest_positions (device_id, seq, ts, lat, lon, received_at)"
                                  " VALUES (%s, 0, now(), %s, 36.8, now())", (tracker, lat))
        execute(database_url, "SELECT pg_notify('ctt_positions', '')")
        wait_for(lambda: any(e.data["properties"]["device"] == pair.trackers[0] for e in stream.of("position")), 5,
                 "the position of region A's truck")
        (mine,) = [e for e in stream.of("position") if e.data["properties"]["device"] == pair.trackers[0]]
        assert mine.data["geometry"] == {"type": "Point", "coordinates": [36.8, -1.25]} and mine.id is None
        assert all(e.data["properties"]["device"] != pair.trackers[1] for e in stream.of("position"))
        wait_for(lambda: stream.comments >= 2 and phone.comments >= 2, 5, "keep-alive comments")
        assert phone.of("position") == []  # it asked for alerts only
    finally:
        stream.close()
        phone.close()


def test_the_stream_needs_a_valid_token(api: ApiServer) -> None:
    with pytest.raises(StreamRefusedError) as refused:
        EventStream(api.url, "not-a-token")
    assert refused.value.status == 401


def new_ticket(api: ApiServer, bearer_token: str) -> str:
    request = urllib.request.Request(f"{api.url}/stream/tickets", method="POST",
                                     headers={"Authorization": f"Bearer {bearer_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        body = json.load(response)
    assert datetime.fromisoformat(body["expires_at"]) <= datetime.now(UTC) + timedelta(seconds=31)
    return str(body["ticket"])


def open_without_header(api: ApiServer, query: str) -> tuple[int, bytes]:
    """``GET /stream?<query>`` as a browser's EventSource does it (no Authorization header):
    the status and the first bytes of the body (a stream's retry line, or the refusal)."""
    parts = urllib.parse.urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path}/stream?{query}", headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        return response.status, response.read1(200)
    finally:
        conn.close()


def test_a_stream_ticket_opens_one_stream_once(api: ApiServer) -> None:
    ticket = new_ticket(api, token("operator"))
    status, first = open_without_header(api, urllib.parse.urlencode({"ticket": ticket}))
    assert (status, first) == (200, b"retry: 2000\n\n")
    status, body = open_without_header(api, urllib.parse.urlencode({"ticket": ticket}))
    assert status == 401 and b"already used" in body


def test_an_expired_or_forged_ticket_opens_nothing(api: ApiServer, database_url: str) -> None:
    ticket = new_ticket(api, token("operator"))
    execute(database_url, "UPDATE stream_tickets SET expires_at = now() - interval '1 second'"
                          " WHERE digest = sha256(%s::bytea)", (ticket.encode(),))
    status, body = open_without_header(api, urllib.parse.urlencode({"ticket": ticket}))
    assert status == 401 and b"expired" in body
    forged = secrets.token_urlsafe(32)
    status, body = open_without_header(api, urllib.parse.urlencode({"ticket": forged}))
    assert status == 401 and b"unknown stream ticket" in body


def test_a_token_in_the_query_string_opens_nothing(api: ApiServer) -> None:
    status, _ = open_without_header(api, urllib.parse.urlencode({"access_token": token("admin")}))
    assert status == 401


def test_a_ticket_carries_its_officers_region(api: ApiServer, pair: Pair, database_url: str) -> None:
    ticket = new_ticket(api, token("officer", pair.regions[1]))
    parts = urllib.parse.urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    conn.request("GET", f"{parts.path}/stream?kind=alert&ticket={ticket}")
    response = conn.getresponse()
    try:
        assert response.status == 200
        time.sleep(0.3)
        open_alert(database_url, pair.ids[0], pair.trackers[0])
        mine = open_alert(database_url, pair.ids[1], pair.trackers[1])
        seen = b""
        while f'"id":{mine},'.encode() not in seen:
            seen += response.read1(4096)
        assert f'"shipment":{pair.ids[0]},'.encode() not in seen  # region A's alert never reached it
    finally:
        conn.close()
