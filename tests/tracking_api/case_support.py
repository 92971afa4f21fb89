"""A tiny world for assignment, cases and escalation: two regions, a shipment in each, alerts
inserted with SQL (the engine is not under test here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support import unique_prefix
from tests.tracking_api.test_alerts import add_alert, auth

__all__ = ["CaseWorld", "add_alert", "another_shipment", "auth", "case_world", "new_alert"]

_SQUARE = {"type": "Polygon", "coordinates": [[[38.0, -4.0], [38.1, -4.0], [38.1, -3.9], [38.0, -3.9], [38.0, -4.0]]]}


@dataclass
class CaseWorld:
    prefix: str
    region_a: str
    region_b: str
    s_a: int  # a shipment of region A
    s_b: int  # a shipment of region B
    unit_a: str  # a unit of region A
    unit_b: str
    route: int

    def tracker(self, shipment: int) -> str:
        return f"{self.prefix}-trk{shipment}"


def _shipment(conn: psycopg.Connection[Any], w: str, route: int, region: str, n: int) -> int:
    row = conn.execute(
        "INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination,"
        " deadline, status, departed_at) VALUES (%s, %s, 'pending', %s, %s, now() + interval '1 day', 'arrived',"
        " now() - interval '3 hours') RETURNING id", (f"26{w}{n}", route, f"{w}D", f"{w}A")).fetchone()
    assert row is not None
    conn.execute("UPDATE shipments SET tracker_id = %s WHERE id = %s", (f"{w}-trk{row[0]}", row[0]))
    conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) VALUES (%s, %s)", (row[0], region))
    return int(row[0])


def case_world(database_url: str, name: str) -> CaseWorld:
    p = unique_prefix(name)
    with psycopg.connect(database_url) as conn:
        for code in (f"{p}D", f"{p}A"):
            conn.execute("INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'office', %s, %s)",
                         (code, code, Jsonb(_SQUARE)))
        route = conn.execute("INSERT INTO routes (name, geometry) VALUES (%s, %s) RETURNING id",
                             (f"{p}-route", Jsonb({"type": "LineString", "coordinates": [[38.0, -4.0], [39.0, -3.0]]})
                              )).fetchone()
        assert route is not None
        regions = (f"{p}-A", f"{p}-B")
        units = (f"{p}-UA".upper(), f"{p}-UB".upper())
        for region, unit in zip(regions, units, strict=True):
            conn.execute("INSERT INTO regions (code, name, geometry) VALUES (%s, %s, %s)",
                         (region, region, Jsonb(_SQUARE)))
            conn.execute("INSERT INTO units (code, name, region) VALUES (%s, %s, %s)", (unit, unit, region))
        return CaseWorld(p, *regions, _shipment(conn, p, int(route[0]), regions[0], 1),
                         _shipment(conn, p, int(route[0]), regions[1], 2), *units, int(route[0]))


def another_shipment(database_url: str, w: CaseWorld, region: str) -> int:
    """A further shipment of ``region`` (one without a case yet)."""
    with psycopg.connect(database_url) as conn:
        n = conn.execute("SELECT count(*) FROM shipments WHERE route_id = %s", (w.route,)).fetchone()
        assert n is not None
        return _shipment(conn, w.prefix, w.route, region, int(n[0]) + 1)


def new_alert(database_url: str, w: CaseWorld, shipment: int, **kwargs: Any) -> int:
    with psycopg.connect(database_url) as conn:
        return add_alert(conn, shipment, w.tracker(shipment), **kwargs)
