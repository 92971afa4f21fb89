"""Shipments with declared seal numbers, an itinerary through a border post and
inspections, on the ingest tests' straight route (tests/ingest/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from protocol.records import SealEvent, encode
from tests.ingest.conftest import HOUR_MS, Transit, square
from tests.ingest.test_alerting import acked
from tests.support import Device, execute, query, unique_prefix

POST = "TSTBP"  # a border post on the route, at lon 30.8
POST_LON = 30.8
DEPARTURE = (30.0, 0.0)
DESTINATION = (31.0, 0.0)
MID_ROUTE = (30.3, 0.0)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Sealed:
    """An in-transit shipment with its seal device and a declared seal number."""

    trip: Transit
    number: str

    @property
    def seal(self) -> str:
        return self.trip.seal

    @property
    def id(self) -> int:
        return self.trip.shipment_id


def sealed(database_url: str, transit: Callable[..., Transit], name: str) -> Sealed:
    """A shipment departed 3 h ago declaring one seal number, itinerary TSTDEP -> TSTBP -> TSTDST."""
    trip = transit(name, now_ms() - 3 * HOUR_MS)
    number = unique_prefix("KE").upper()
    ring = [list(p) for p in square(POST_LON, 0.0, 500)]
    execute(database_url, "INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'border_post', %s,"
                          " %s) ON CONFLICT (office_code) DO NOTHING",
            ("Test border post", POST, Jsonb({"type": "Polygon", "coordinates": [ring]})))
    execute(database_url, "DELETE FROM shipment_offices WHERE shipment_id = %s", (trip.shipment_id,))
    execute(database_url, "INSERT INTO shipment_offices (shipment_id, position, role, office_code) VALUES"
                          " (%s, 0, 'departure', 'TSTDEP'), (%s, 1, 'transit', %s), (%s, 2, 'destination', 'TSTDST')",
            (trip.shipment_id, trip.shipment_id, POST, trip.shipment_id))
    execute(database_url, "INSERT INTO shipment_seal_numbers (shipment_id, seal_number, container) VALUES"
                          " (%s, %s, 'MSKU0000001')", (trip.shipment_id, number))
    return Sealed(trip, number)


def send(device_id: str, events: list[SealEvent]) -> None:
    """Publish ``events`` from ``device_id`` and wait until ingest acknowledged the last."""
    with Device(device_id) as dev:
        dev.publish_all([("seal", encode(e)) for e in events])
        acked(dev, max(e.seq for e in events))


def event(seq: int, ts: int, number: str, name: str, at: tuple[float, float] | None) -> SealEvent:
    if at is None:
        return SealEvent(seq=seq, ts=ts, seal_id=number, event=name)  # type: ignore[arg-type]
    return SealEvent(seq=seq, ts=ts, seal_id=number, event=name, lon=at[0], lat=at[1])  # type: ignore[arg-type]


def seal_alerts(database_url: str, shipment_id: int) -> list[tuple[Any, ...]]:
    """(type, started ms, ended ms, detail) of a shipment's seal alerts, oldest first."""
    return query(database_url, "SELECT type, (extract(epoch FROM started_at) * 1000)::int8,"
                               " (extract(epoch FROM ended_at) * 1000)::int8, detail - 'withdrawn' FROM alerts"
                               " WHERE shipment_id = %s AND type IN ('seal_mismatch', 'seal_breach')"
                               " ORDER BY started_at, id", (shipment_id,))


def milestones(database_url: str, shipment_id: int) -> list[tuple[Any, ...]]:
    """(kind, office code, at ms, detail) of a shipment's timeline, in time order."""
    return query(database_url, "SELECT kind, office_code, (extract(epoch FROM at) * 1000)::int8, detail"
                               " FROM shipment_events WHERE shipment_id = %s ORDER BY at, id", (shipment_id,))
