"""Fixtures of the ingest tests: shipments in transit on a small test route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.geofence.tracks import M_PER_DEG
from tests.support import provision, unique_prefix

HOUR_MS = 3_600_000


def square(lon: float, lat: float, half_m: float) -> tuple[tuple[float, float], ...]:
    d = half_m / M_PER_DEG
    return ((lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d), (lon - d, lat - d))


@dataclass
class Transit:
    tracker: str
    seal: str
    shipment_id: int
    start_ms: int  # first fix time of the trip


@pytest.fixture
def transit(database_url: str) -> Callable[..., Transit]:
    """A shipment on a straight 111 km route along the equator (lon 30 -> 31), in
    transit since ``departed_ms``; a stop zone at lon 30.2, offices at both ends."""

    def make(name: str, departed_ms: int, deadline_ms: int | None = None) -> Transit:
        prefix = unique_prefix(name)
        zones = [ZoneSpec(f"{prefix}-rest", "stop", square(30.2, 0.0, 400)),
                 ZoneSpec("Test departure office", "office", square(30.0, 0.0, 1000), "TSTDEP"),
                 ZoneSpec("Test destination office", "office", square(31.0, 0.0, 1000), "TSTDST")]
        route = RouteSpec(f"{prefix}-route", ((30.0, 0.0), (30.5, 0.0), (31.0, 0.0)), 500.0, (f"{prefix}-rest",))
        tracker, seal = f"{prefix}-trk", f"{prefix}-seal"
        reference = f"26TS{prefix[-6:].upper()}0000000"  # the API's form: registration validates it
        shipment = ShipmentSpec(reference, route.name, tracker, (seal,), "TSTDEP", "TSTDST", departed_ms,
                                deadline_ms or departed_ms + 48 * HOUR_MS)
        scenario = Scenario(name, [], zones, [route], [shipment], [], departed_ms, departed_ms, 15.0)
        with psycopg.connect(database_url) as conn:
            ids = register(conn, scenario)
        provision([tracker, seal])
        return Transit(tracker, seal, ids[shipment.reference], departed_ms)

    return make
