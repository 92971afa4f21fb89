"""A consolidated truck: three shipments on one tracker (one vehicle, one route). The
engine evaluates the tracker once; each alert and milestone reaches every shipment on
the truck, one incident; changes to an alert reach the whole incident."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from geofence import engine
from geofence.engine import Transition
from geofence.rules import Rules
from geofence.state import DeviceState
from ingest.alerting import apply
from ingest.alerting.live import apply_transitions
from ingest.alerting.reconcile import Withdraw
from ingest.alerting.replay import replace_milestones
from ingest.registry import load_network, load_registry
from tests.geofence.tracks import Trip
from tests.ingest.conftest import HOUR_MS, Transit

RULES = Rules()
_SIBLING = """
INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline, vehicle,
                       risk_level, status, departed_at)
SELECT %s, route_id, tracker_id, office_of_departure, office_of_destination, deadline, vehicle, %s, 'in_transit',
       departed_at
FROM shipments WHERE id = %s RETURNING id
"""
_ITINERARY = """
INSERT INTO shipment_offices (shipment_id, position, role, office_code)
SELECT %s, position, role, office_code FROM shipment_offices WHERE shipment_id = %s
"""


def truck(cur: psycopg.Cursor[Any], tr: Transit, risk: str = "high") -> list[int]:
    """``tr``'s shipment loaded on vehicle KBX 001A with two more declarations, the last of ``risk``."""
    cur.execute("UPDATE shipments SET status = 'in_transit', departed_at = to_timestamp(%s / 1000.0),"
                " vehicle = 'KBX 001A' WHERE id = %s", (tr.start_ms, tr.shipment_id))
    cur.execute("INSERT INTO shipment_offices (shipment_id, position, role, office_code)"
                " VALUES (%s, 0, 'departure', 'TSTDEP'), (%s, 1, 'destination', 'TSTDST') ON CONFLICT DO NOTHING",
                (tr.shipment_id, tr.shipment_id))
    ids = [tr.shipment_id]
    for k, level in enumerate(("medium", risk)):
        row = cur.execute(_SIBLING, (f"{tr.tracker}-{k}", level, tr.shipment_id)).fetchone()
        assert row is not None
        cur.execute(_ITINERARY, (row[0], tr.shipment_id))
        ids.append(row[0])
    return ids


def test_a_deviation_alerts_every_shipment_on_the_truck_as_one_incident(
        database_url: str, transit: Callable[..., Transit]) -> None:
    start = (int(time.time() * 1000) - 5 * HOUR_MS) // 1000 * 1000
    tr = transit("truck", start)
    trip = Trip(start_ms=start).drive(20).drive(10, north_m=900).drive(20, north_m=0).track()
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        ids = truck(cur, tr)
        registry = load_registry(cur, load_network(cur), RULES)
        shipment = registry.trackers[tr.tracker]
        assert shipment.id == tr.shipment_id and sorted(shipment.ids) == sorted(ids)
        binding = shipment.binding
        assert binding is not None
        # the strictest thresholds on the truck: the high-risk declaration's
        assert binding.corridor_factor == 0.6 and binding.stop_min_ms == 600_000
        assert len(binding.offices) == 2 and binding.transit == (False, False)
        assert binding.office_codes == ("TSTDEP", "TSTDST")  # the engine names offices in alert details
        transitions, _ = engine.evaluate(registry.network, RULES,
                                         {tr.tracker: (binding, DeviceState(shipment_id=tr.shipment_id), trip)})
        changes = apply_transitions(cur, transitions)
        rows = cur.execute("SELECT shipment_id, incident, severity, ended_at IS NOT NULL FROM alerts"
                           " WHERE device_id = %s AND type = 'route_deviation' ORDER BY shipment_id",
                           (tr.tracker,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert len({r[1] for r in rows}) == 1  # one incident
    assert {r[1] for r in rows} == {min(c.id for c in changes if c.event == "opened")}
    # severity per shipment's own risk: high (base) for medium risk, critical for high risk
    assert [r[2] for r in rows] == ["high", "high", "critical"]
    assert all(r[3] for r in rows)  # the truck came back: every shipment's alert ended
    assert sorted(c.shipment for c in changes if c.event == "ended") == sorted(ids)


def test_milestones_reach_every_shipment_and_a_replay_replaces_them(
        database_url: str, transit: Callable[..., Transit]) -> None:
    start = (int(time.time() * 1000) - 5 * HOUR_MS) // 1000 * 1000
    tr = transit("truck-ms", start)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        ids = truck(cur, tr)
        arrived = Transition("milestone", "arrived", tr.tracker, tr.shipment_id, start + 60_000, None,
                             start + 90_000, 31.0, 0.0, False, office=1, country="KEN")
        apply_transitions(cur, [arrived])
        rows = cur.execute("SELECT shipment_id, kind, office_code, country, detail FROM shipment_events"
                           " WHERE device_id = %s ORDER BY shipment_id", (tr.tracker,)).fetchall()
        assert [r[0] for r in rows] == sorted(ids)
        assert {(r[1], r[2], r[3]) for r in rows} == {("arrived", "TSTDST", "KEN")}
        assert all(r[4] == {"position": 1, "confirmed_ms": start + 90_000} for r in rows)
        # a replay of that window found the arrival 30 s later: the old one is gone, the new one is there
        later = Transition("milestone", "arrived", tr.tracker, tr.shipment_id, start + 90_000, None, start + 120_000,
                           31.0, 0.0, True, office=1, country="KEN")
        binding = load_registry(cur, load_network(cur), RULES).trackers[tr.tracker].binding
        assert binding is not None
        replace_milestones(cur, binding, tr.tracker, [later], start, start + 150_000)
        times = cur.execute("SELECT DISTINCT (extract(epoch FROM at) * 1000)::int8, late FROM shipment_events"
                            " WHERE device_id = %s", (tr.tracker,)).fetchall()
        assert times == [(start + 90_000, True)]


def test_a_withdrawal_reaches_the_whole_incident_and_the_detail_is_kept(
        database_url: str, transit: Callable[..., Transit]) -> None:
    start = (int(time.time() * 1000) - 5 * HOUR_MS) // 1000 * 1000
    tr = transit("truck-wd", start)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        ids = truck(cur, tr)
        # As the engine names it, from the binding's office codes.
        skipped = Transition("opened", "office_skipped", tr.tracker, tr.shipment_id, start, start, start, 30.5, 0.0,
                             False, office=0, country="UGA",
                             detail={"office": "TSTDEP", "position": 0, "reached": "TSTDST"})
        (first, *_rest) = apply_transitions(cur, [skipped])
        detail = cur.execute("SELECT detail, country FROM alerts WHERE id = %s", (first.id,)).fetchone()
        assert detail == ({"position": 0, "office": "TSTDEP", "reached": "TSTDST"}, "UGA")
        apply.apply(cur, tr.shipment_id, tr.tracker, [Withdraw(first.id)])
        withdrawn = cur.execute("SELECT shipment FROM alert_view WHERE incident = %s AND withdrawn"
                                " ORDER BY shipment", (first.incident,)).fetchall()
        assert [w[0] for w in withdrawn] == sorted(ids)
