"""Ingest runs the geofence engine on every committed batch: alert rows, MQTT
alert messages, duplicates, late backlog, restarts, seal events and the
wall-clock sweep, through the real broker and TimescaleDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from geofence.engine import Track
from protocol.records import Fix, SealEvent, encode
from tests.geofence.tracks import M_PER_DEG, STEP_MS, Trip
from tests.ingest.conftest import HOUR_MS, Transit
from tests.support import AlertListener, Device, IngestProcess, execute, query, scalar, wait_for


def fixes(track: Track, first_seq: int = 0) -> list[Fix]:
    return [Fix(seq=first_seq + i, ts=int(t), lat=float(lat), lon=float(lon))
            for i, (t, lon, lat) in enumerate(zip(track.t, track.lon, track.lat, strict=True))]


def acked(device: Device, seq: int) -> None:
    wait_for(lambda: device.acks and device.acks[-1] >= seq, 30, f"ack of seq {seq} for {device.device_id}")


def alerts(database_url: str, shipment_id: int) -> list[tuple[Any, ...]]:
    """(type, device, started ms, ended ms, crossed ms, late, withdrawn) of a shipment, oldest first."""
    return query(database_url,
                 "SELECT type, device_id, (extract(epoch FROM started_at) * 1000)::int8,"
                 " (extract(epoch FROM ended_at) * 1000)::int8, (extract(epoch FROM crossed_at) * 1000)::int8,"
                 " late, detail ? 'withdrawn' FROM alerts WHERE shipment_id = %s"
                 # A backlog sent newest first shows a fix-time gap until its older part lands: a
                 # suspicious_gap may open and is withdrawn then (tests/geofence/test_progress.py).
                 " AND NOT (type = 'suspicious_gap' AND detail ? 'withdrawn') ORDER BY started_at, type",
                 (shipment_id,))


def trip_with_deviation_and_stop(start_ms: int) -> Track:
    """20 fixes on route, 8 fixes 900 m off it, back on route, a 20-minute stop, off again."""
    return Trip(start_ms=start_ms).drive(20).drive(8, north_m=900).drive(10, north_m=0).park(80).drive(6).track()


def expected_for(start_ms: int, late: bool, tracker: str) -> list[tuple[Any, ...]]:
    out_ms = start_ms + 20 * STEP_MS
    stop_ms = start_ms + 38 * STEP_MS
    return [("route_deviation", tracker, out_ms, out_ms + 7 * STEP_MS, out_ms + 60_000, late, False),
            ("unscheduled_stop", tracker, stop_ms, stop_ms + 80 * STEP_MS, stop_ms + 15 * 60_000, late, False)]


def test_live_alerts_open_and_end_on_fix_time_and_are_published(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("live", start)
    records = fixes(trip_with_deviation_and_stop(start))
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in records])
        acked(dev, records[-1].seq)
        # Depending on how the messages fell into batches, an alert is announced
        # opened then ended, or opened already ended; the last word always agrees.
        wait_for(lambda: [m["ended_at"] is not None for m in listener.latest(tr.tracker).values()] == [True, True],
                 10, "two alerts announced as ended")
        assert alerts(database_url, tr.shipment_id) == expected_for(start, False, tr.tracker)
        first: dict[int, str] = {}
        for m in listener.messages:
            first.setdefault(m["id"], m["event"])
        assert [first[i] for i in listener.latest(tr.tracker)] == ["opened", "opened"]
        deviation, stop = listener.latest(tr.tracker).values()
        assert (deviation["type"], stop["type"]) == ("route_deviation", "unscheduled_stop")
        assert stop["shipment"] == tr.shipment_id and stop["severity"] == "high" and stop["status"] == "open"
        assert stop["ended_at"].endswith("Z") and stop["late"] is False
        announced = len(listener.messages)

        # Every message again (a device that missed its acks): nothing changes.
        updated = query(database_url, "SELECT max(updated_at) FROM alerts WHERE shipment_id = %s", (tr.shipment_id,))
        dev.publish_all([("pos", encode(f)) for f in records])
        extra = Fix(seq=len(records), ts=records[-1].ts + STEP_MS, lat=records[-1].lat, lon=records[-1].lon + 0.003)
        dev.publish_all([("pos", encode(extra))])
        acked(dev, extra.seq)  # ingest took messages in order: the duplicates are behind us
    assert alerts(database_url, tr.shipment_id) == expected_for(start, False, tr.tracker)
    assert query(database_url, "SELECT max(updated_at) FROM alerts WHERE shipment_id = %s",
                 (tr.shipment_id,)) == updated
    assert len(listener.messages) == announced


def test_reversed_backlog_in_separate_batches_gives_the_same_alerts_marked_late(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("late", start)
    records = fixes(trip_with_deviation_and_stop(start))
    live, backlog = records[:10], records[10:]
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in live])
        acked(dev, live[-1].seq)
        newest_first = backlog[::-1]
        for i in range(0, len(newest_first), 20):
            dev.publish_all([("pos", encode(newest_first[i:i + 20]))])
            time.sleep(0.4)  # longer than a batch: each array is its own batch
        acked(dev, records[-1].seq)
    wait_for(lambda: alerts(database_url, tr.shipment_id) == expected_for(start, True, tr.tracker), 10,
             "the alerts of the whole track")
    events = listener.of(tr.tracker)
    assert ("opened", "route_deviation") in events and ("opened", "unscheduled_stop") in events
    replays = ingest.metric("ctt_geofence_replays_total")
    assert replays is not None and replays >= 1


def test_restart_mid_trip_neither_loses_nor_repeats_an_alert(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("restart", start)
    records = fixes(trip_with_deviation_and_stop(start))
    cut = 38 + 70  # in the middle of the stop, after it was alerted (at 60 fixes of it)
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in records[:cut]])
        acked(dev, records[cut - 1].seq)
        assert [a[0] for a in alerts(database_url, tr.shipment_id)] == ["route_deviation", "unscheduled_stop"]
        ingest.kill()
        ingest.start()
        dev.publish_all([("pos", encode(f)) for f in records[cut:]])
        acked(dev, records[-1].seq)
    wait_for(lambda: alerts(database_url, tr.shipment_id) == expected_for(start, False, tr.tracker), 10,
             "the alerts after the restart")
    # Progress along the route is readable next to the saved state.
    ((chainage, distance, last_fix),) = query(
        database_url, "SELECT chainage_m, distance_m, (extract(epoch FROM last_fix_at) * 1000)::int8"
                      " FROM geofence_state WHERE device_id = %s", (tr.tracker,))
    assert chainage == pytest.approx((records[-1].lon - 30.0) * M_PER_DEG, rel=2e-3)
    assert distance < 1.0 and last_fix == records[-1].ts


def test_seal_breach_mid_route_but_not_at_the_destination_office(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("seal", start)
    trip = Trip(start_ms=start).drive(30)
    mid_lon = trip.lon
    track = trip.track()
    opened = SealEvent(seq=1, ts=start + 10 * STEP_MS, seal_id=tr.seal, event="opened", lat=0.0, lon=mid_lon)
    with Device(tr.tracker) as trk, Device(tr.seal) as seal:
        trk.publish_all([("pos", encode(f)) for f in fixes(track)])
        acked(trk, len(track.t) - 1)
        armed = SealEvent(seq=0, ts=start - 600_000, seal_id=tr.seal, event="armed", lat=0.0, lon=30.0)
        seal.publish_all([("seal", encode(armed)), ("seal", encode(opened)), ("seal", encode(opened))])
        acked(seal, 1)
        wait_for(lambda: listener.of(tr.seal) == [("opened", "seal_breach")], 10, "the breach message")
        breach = listener.messages[-1]
        assert breach["severity"] == "critical" and breach["lon"] == pytest.approx(mid_lon)
        # Re-armed: recorded, but only an officer ends the breach. Opened again at the destination office: no breach.
        closed = SealEvent(seq=2, ts=start + 20 * STEP_MS, seal_id=tr.seal, event="closed")
        at_office = SealEvent(seq=3, ts=start + 40 * STEP_MS, seal_id=tr.seal, event="opened", lat=0.001,
                              lon=30.999)
        seal.publish_all([("seal", encode(closed)), ("seal", encode(at_office))])
        acked(seal, 3)
        # No position on the event: the tracker's, parked at the destination office, decides.
        trk.publish_all([("pos", encode(Fix(seq=len(track.t), ts=start + 45 * STEP_MS, lat=0.0, lon=30.9995)))])
        acked(trk, len(track.t))
        blind = SealEvent(seq=4, ts=start + 46 * STEP_MS, seal_id=tr.seal, event="cut")
        seal.publish_all([("seal", encode(blind))])
        acked(seal, 4)
    assert alerts(database_url, tr.shipment_id) == [
        ("seal_breach", tr.seal, opened.ts, None, opened.ts, False, False)]
    assert listener.of(tr.seal) == [("opened", "seal_breach")]
    assert scalar(database_url, "SELECT count(*) FROM seal_events WHERE device_id = %s AND event = 'closed'",
                  (tr.seal,)) == 1
    # The engine's lifecycle changes are audited too, as the database role that made them, with their event.
    assert query(database_url, "SELECT a.actor, a.role, a.action, e.event FROM audit_log a JOIN alert_events e"
                               " ON e.id = (a.detail->>'event')::bigint AND e.alert_id::text = a.object_id"
                               " WHERE e.shipment_id = %s ORDER BY a.id", (tr.shipment_id,)) == [
        ("ctt_ingest", "system", "alert.opened", "opened")]


def test_sweep_raises_signal_lost_and_transit_overdue_on_wall_time(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    now = int(time.time() * 1000)
    silent = transit("silent", now - HOUR_MS)
    overdue = transit("overdue", now - 3 * HOUR_MS, deadline_ms=now - HOUR_MS)
    ingest.restart_with(CTT_SIGNAL_LOST_S="2", CTT_SWEEP_INTERVAL_S="0.5")
    try:
        wait_for(lambda: ("opened", "signal_lost") in listener.of(silent.tracker), 15, "signal_lost")
        wait_for(lambda: ("opened", "transit_overdue") in listener.of(overdue.tracker), 15, "transit_overdue")
        ((started,),) = query(database_url, "SELECT started_at FROM alerts WHERE shipment_id = %s"
                              " AND type = 'transit_overdue'", (overdue.shipment_id,))
        assert int(started.timestamp() * 1000) == now - HOUR_MS  # the deadline
        with Device(silent.tracker) as dev:  # a record comes in: signal is back
            dev.publish_all([("pos", encode(Fix(seq=0, ts=int(time.time() * 1000), lat=0.0, lon=30.01)))])
            acked(dev, 0)
        wait_for(lambda: ("ended", "signal_lost") in listener.of(silent.tracker), 10, "signal_lost to end")
        execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE id = ANY(%s)",
              ([silent.shipment_id, overdue.shipment_id],))
        wait_for(lambda: ("ended", "transit_overdue") in listener.of(overdue.tracker), 10, "overdue to end")
    finally:
        # Leave nothing in transit that a 2 s signal rule would flag in later tests.
        execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = now() WHERE status = 'in_transit'")
        ingest.restart_with(CTT_SIGNAL_LOST_S="", CTT_SWEEP_INTERVAL_S="")
    back = next(m for m in listener.messages if m["device"] == silent.tracker and m["event"] == "ended")
    assert back["started_at"] < back["ended_at"]


def test_late_data_contests_an_acknowledged_alert_instead_of_withdrawing_it(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("contest", start)
    live = fixes(Trip(start_ms=start).drive(20).drive(8, north_m=900).drive(10, north_m=0).track())
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in live])
        acked(dev, live[-1].seq)
        wait_for(lambda: ("opened", "route_deviation") in listener.of(tr.tracker), 10, "the deviation")
        ((alert_id,),) = query(database_url, "SELECT id FROM alerts WHERE shipment_id = %s", (tr.shipment_id,))
        # An officer acknowledges it, as the API does.
        execute(database_url, "UPDATE alerts SET status = 'acknowledged', acknowledged_by = 'officer-1',"
                              " acknowledged_at = now(), updated_at = now() WHERE id = %s", (alert_id,))
        # Late fixes between those 900 m off show the truck on the route every 7.5 s:
        # it was never out for 60 s, so the track no longer shows the deviation.
        between = [Fix(seq=len(live) + i, ts=f.ts + STEP_MS // 2, lat=0.0, lon=f.lon + 0.0015)
                   for i, f in enumerate(live[19:28])]
        dev.publish_all([("pos", encode(between))])
        acked(dev, between[-1].seq)
    wait_for(lambda: ("contested", "route_deviation") in listener.of(tr.tracker), 10, "the contested message")
    ((status, reason, withdrawn, ended),) = query(
        database_url, "SELECT status, contested_reason, detail ? 'withdrawn', ended_at IS NOT NULL FROM alerts"
                      " WHERE shipment_id = %s", (tr.shipment_id,))
    assert (status, withdrawn, ended) == ("acknowledged", False, True)
    assert reason.startswith("late data from ") and reason.endswith(" no longer shows this route_deviation")
    ((actor, role, detail),) = query(database_url, "SELECT actor, role, detail FROM audit_log"
                                                   " WHERE action = 'alert.contested' AND object_id = %s",
                                     (str(alert_id),))
    assert (actor, role, detail["reason"], detail["status"]) == ("ctt-ingest", "system", reason, "acknowledged")
    message = listener.latest(tr.tracker)[alert_id]
    assert message["contested"] is True and message["contested_reason"] == reason
    assert message["withdrawn"] is False and message["status"] == "acknowledged"


def test_an_acknowledgement_made_while_ingest_is_down_reaches_the_alert_topic_after_restart(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 3 * HOUR_MS
    tr = transit("relay", start)
    records = fixes(Trip(start_ms=start).drive(20).drive(8, north_m=900).track())
    with Device(tr.tracker) as dev:
        dev.publish_all([("pos", encode(f)) for f in records])
        acked(dev, records[-1].seq)
    wait_for(lambda: ("opened", "route_deviation") in listener.of(tr.tracker), 10, "the deviation")
    ingest.stop()
    try:
        execute(database_url, "UPDATE alerts SET status = 'acknowledged', acknowledged_by = 'officer-2',"
                              " acknowledged_at = now(), updated_at = now() WHERE shipment_id = %s",
                (tr.shipment_id,))
    finally:
        ingest.start()
    wait_for(lambda: ("acknowledged", "route_deviation") in listener.of(tr.tracker), 10, "the acknowledgement")
    acknowledged = [m for m in listener.messages if m["device"] == tr.tracker and m["event"] == "acknowledged"]
    assert acknowledged[-1]["acknowledged_by"] == "officer-2"
    # The stored cursor passes the event once the broker has it.
    seq = query(database_url, "SELECT max(seq) FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
                              " WHERE a.shipment_id = %s AND e.event = 'acknowledged'", (tr.shipment_id,))[0][0]
    wait_for(lambda: query(database_url, "SELECT seq FROM relay_cursors WHERE name = 'workflow'")[0][0] >= seq, 5,
             "the relay cursor to pass the acknowledgement")
