"""Tiny transit worlds for the page tests: a straight route along a parallel, offices at both
ends, shipments in transit on it; optionally a region around it (officers' visibility)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import execute, provision, unique_prefix

HOUR_MS = 3_600_000
HALF_DEG = 0.01  # an office zone's half-size, degrees


@dataclass
class Shipment:
    id: int
    reference: str
    tracker: str
    seal: str


def box(lon: float, lat: float, half: float) -> tuple[tuple[float, float], ...]:
    return ((lon - half, lat - half), (lon + half, lat - half), (lon + half, lat + half), (lon - half, lat + half),
            (lon - half, lat - half))


def add_region(database_url: str, code: str, west: float, south: float, east: float, north: float) -> None:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO regions (code, name, geometry) VALUES (%s, %s, %s)",
                     (code, f"test region {code}", Jsonb({"type": "Polygon", "coordinates": [ring]})))


def shipments_on(database_url: str, name: str, lat: float, west: float, east: float, count: int) -> list[Shipment]:
    """``count`` shipments in transit for an hour on one route from ``west`` to ``east`` along ``lat``."""
    prefix = unique_prefix(name)
    departure, destination = f"D{prefix[-6:].upper()}", f"A{prefix[-6:].upper()}"
    zones = [ZoneSpec(f"{prefix} departure", "office", box(west, lat, HALF_DEG), departure),
             ZoneSpec(f"{prefix} destination", "office", box(east, lat, HALF_DEG), destination)]
    route = RouteSpec(f"{prefix} route", ((west, lat), ((west + east) / 2, lat), (east, lat)), 500.0)
    departed = int(time.time() * 1000) - HOUR_MS
    specs = [ShipmentSpec(f"26TS{prefix.upper()[-9:]}{i:04d}", route.name, f"{prefix}-{i}-trk", (f"{prefix}-{i}-seal",),
                          departure, destination, departed, departed + 48 * HOUR_MS) for i in range(count)]
    scenario = Scenario(name, [], zones, [route], specs, [], departed, departed, 15.0)
    with psycopg.connect(database_url) as conn:
        ids = register(conn, scenario)
    provision([d for s in specs for d in (s.tracker_id, *s.seal_ids)])
    return [Shipment(ids[s.reference], s.reference, s.tracker_id, s.seal_ids[0]) for s in specs]


def ellipse(a: tuple[float, float], b: tuple[float, float], reach_deg: float, vertices: int = 48) -> dict[str, Any]:
    """A suspicious gap's reachable area as the engine gives it: the ellipse with foci ``a`` and ``b``
    (lon, lat) whose points P have |AP| + |PB| <= ``reach_deg`` (planar degrees are enough for a
    drawing), closed ring of ``vertices`` + 1 points."""
    cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    c = math.dist(a, b) / 2
    major = reach_deg / 2
    minor = math.sqrt(major**2 - c**2)
    turn = math.atan2(b[1] - a[1], b[0] - a[0])
    ring = []
    for i in range(vertices):
        t = 2 * math.pi * i / vertices
        x, y = major * math.cos(t), minor * math.sin(t)
        ring.append([cx + x * math.cos(turn) - y * math.sin(turn), cy + x * math.sin(turn) + y * math.cos(turn)])
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def add_alert(database_url: str, shipment: Shipment, kind: str, lon: float, lat: float, **columns: Any) -> int:
    """An alert as the engine would insert it; ``columns``: started_at, country, detail (a dict), ... ."""
    values = {"type": kind, "shipment_id": shipment.id, "device_id": shipment.tracker, "severity": "high", "lat": lat,
              "lon": lon, **{k: Jsonb(v) if isinstance(v, dict) else v for k, v in columns.items()}}
    values.setdefault("started_at", values.get("ended_at") or datetime.now(UTC))
    values.setdefault("crossed_at", values["started_at"])
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"INSERT INTO alerts ({names}) VALUES ({marks}) RETURNING id",
                           tuple(values.values())).fetchone()
    assert row is not None
    return int(row[0])


def consolidate(database_url: str, shipments: list[Shipment], vehicle: str) -> None:
    """Put ``shipments`` (one route) on one truck: one vehicle, the first one's tracker."""
    ids = [s.id for s in shipments]
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE shipments SET vehicle = %s WHERE id = ANY(%s)", (vehicle, ids))
        conn.execute("UPDATE shipments SET tracker_id = %s WHERE id = ANY(%s)", (shipments[0].tracker, ids))
    for s in shipments:
        s.tracker = shipments[0].tracker


def add_border_post(database_url: str, name: str, lon: float, lat: float, country: str) -> str:
    """A border post zone at (lon, lat); its office code."""
    code = f"P{unique_prefix(name)[-8:].upper()}"
    geometry = Jsonb({"type": "Polygon", "coordinates": [box(lon, lat, HALF_DEG)]})
    execute(database_url, "INSERT INTO zones (name, kind, office_code, country, geometry)"
                          " VALUES (%s, 'border_post', %s, %s, %s)", (f"border post {code}", code, country, geometry))
    return code


def through(database_url: str, shipment: Shipment, office_code: str) -> None:
    """The shipment's itinerary: departure, ``office_code`` (transit), destination (whether or not
    registration wrote the two-office itinerary)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM shipment_offices WHERE shipment_id = %s", (shipment.id,))
        conn.execute("INSERT INTO shipment_offices (shipment_id, position, role, office_code)"
                     " SELECT id, 0, 'departure', office_of_departure FROM shipments WHERE id = %(id)s"
                     " UNION ALL SELECT %(id)s, 1, 'transit', %(code)s"
                     " UNION ALL SELECT id, 2, 'destination', office_of_destination FROM shipments WHERE id = %(id)s",
                     {"id": shipment.id, "code": office_code})


def add_milestone(database_url: str, shipment: Shipment, kind: str, at: datetime, office_code: str | None = None,
                  country: str | None = None, **detail: Any) -> None:
    """A timeline event as the engine (arrived, departed, border_crossed) or an officer records it."""
    execute(database_url, "INSERT INTO shipment_events (shipment_id, device_id, kind, office_code, country, at, detail)"
                          " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (shipment.id, shipment.tracker, kind, office_code, country, at, Jsonb(detail)))
