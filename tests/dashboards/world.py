"""Tiny transit worlds for the page tests: a straight route along a parallel, offices at both
ends, shipments in transit on it; optionally a region around it (officers' visibility)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import provision, unique_prefix

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
