"""The scale bench's fleet: thousands of trackers, each on its own in-transit shipment,
driving along one 445 km route on the equator (lon 30 -> 34) at 60 km/h, spread along it;
and e-seals on shipments of their own, each opened once mid-route (a seal breach).

A tracker's position is a function of its fix time, so the load generator (another
process) and the bench agree on every fix without sharing state; trackers stay on the
route's centre line and keep moving, so they raise no alert of their own: every alert in
a run is a seal breach the bench timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
import psycopg

from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from protocol.records import Fix, SealEvent

M_PER_DEG = 111_319.49  # at the equator
SPEED_MPS = 16.7  # 60 km/h
FIX_EVERY_MS = 10_000  # a tracker's reporting interval
ROUTE = RouteSpec("bench-scale-route", ((30.0, 0.0), (32.0, 0.0), (34.0, 0.0)), 500.0)
FIRST_LON, LAST_LON = 30.05, 32.5  # where trackers start; they drive at most ~100 km in a run
SEAL_LON = 31.0  # where seals open: mid-route, far from either office
OFFICES = (("Bench departure office", "BSCDEP", 30.0), ("Bench destination office", "BSCDST", 34.0))
DAY_MS = 86_400_000


class FleetSpec(msgspec.Struct, frozen=True):
    """Who is in the fleet and where each tracker was at ``t0_ms`` (epoch ms)."""

    prefix: str
    trackers: int
    seals: int
    t0_ms: int

    def tracker(self, i: int) -> str:
        return f"{self.prefix}-trk-{i:05d}"

    def seal(self, i: int) -> str:
        return f"{self.prefix}-seal-{i:03d}"

    @property
    def tracker_ids(self) -> list[str]:
        return [self.tracker(i) for i in range(self.trackers)]

    @property
    def seal_ids(self) -> list[str]:
        return [self.seal(i) for i in range(self.seals)]

    def fix(self, i: int, seq: int, ts_ms: int) -> Fix:
        """Tracker ``i``'s fix at ``ts_ms``: on the route's centre line, moving east."""
        start = FIRST_LON + (LAST_LON - FIRST_LON) * i / max(self.trackers - 1, 1)
        lon = start + SPEED_MPS * (ts_ms - self.t0_ms) / 1000 / M_PER_DEG
        return Fix(seq=seq, ts=ts_ms, lat=0.0, lon=round(lon, 6), spd=60.0, hdg=90.0, acc=5.0, bat=80.0)

    def breach(self, i: int, seq: int) -> SealEvent:
        """Seal ``i``'s opening, now, mid-route."""
        return SealEvent(seq=seq, ts=int(time.time() * 1000), seal_id=self.seal(i), event="opened", lat=0.0,
                         lon=SEAL_LON)


def _square(lon: float, half_m: float) -> tuple[tuple[float, float], ...]:
    d = half_m / M_PER_DEG
    return ((lon - d, -d), (lon + d, -d), (lon + d, d), (lon - d, d), (lon - d, -d))


# Trackers' shipments in one statement: registering 20,000 through the API's service
# (one audited transaction each) would take minutes. The seals' few shipments go through it.
_TRACKER_SHIPMENTS = """
INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination, deadline,
                       status, departed_at, created_by)
SELECT format('26BS%%s%%s', upper(%(tag)s::text), lpad(g::text, 9, '0')), %(route)s,
       format('%%s-trk-%%s', %(prefix)s::text, lpad(g::text, 5, '0')), 'BSCDEP', 'BSCDST',
       now() + interval '30 days', 'in_transit', now() - interval '6 hours', 'bench'
FROM generate_series(0, %(n)s - 1) g
"""


def register_fleet(database_url: str, spec: FleetSpec) -> None:
    """The route, both offices, a shipment in transit per tracker and per seal."""
    departed = spec.t0_ms - 3_600_000
    zones = [ZoneSpec(name, "office", _square(lon, 1000), code) for name, code, lon in OFFICES]
    seal_shipments = [ShipmentSpec(f"26BS{spec.prefix[-4:].upper()}S{i:09d}", ROUTE.name, f"{spec.prefix}-strk-{i:03d}",
                                   (spec.seal(i),), "BSCDEP", "BSCDST", departed, departed + 30 * DAY_MS)
                      for i in range(spec.seals)]
    with psycopg.connect(database_url) as conn:
        register(conn, Scenario("bench-scale", [], zones, [ROUTE], seal_shipments, [], departed, departed, 10.0))
        route = conn.execute("SELECT id FROM routes WHERE name = %s", (ROUTE.name,)).fetchone()
        assert route is not None
        conn.execute(_TRACKER_SHIPMENTS, {"tag": spec.prefix[-4:], "route": route[0], "prefix": spec.prefix,
                                          "n": spec.trackers})
        conn.commit()


@dataclass(frozen=True)
class Schedule:
    """Which tracker sends the ``m``-th message of a workload and with which seq and fix time."""

    spec: FleetSpec
    array: int  # fixes per message
    seq0: int  # every tracker's first seq in this workload
    clock_ms: int  # fix time of every tracker's first fix in this workload

    def message(self, m: int) -> tuple[str, list[Fix] | Fix]:
        """Message ``m``: trackers take turns, each message ``array`` fixes ``FIX_EVERY_MS`` apart."""
        i, j = m % self.spec.trackers, m // self.spec.trackers
        first = j * self.array
        fixes = [self.spec.fix(i, self.seq0 + first + k, self.clock_ms + (first + k) * FIX_EVERY_MS)
                 for k in range(self.array)]
        return self.spec.tracker(i), fixes if self.array > 1 else fixes[0]

    def fixes_per_tracker(self, messages: int) -> int:
        return -(-messages // self.spec.trackers) * self.array

    def live(self, m: int, now_ms: int) -> tuple[str, Fix]:
        """Message ``m`` of a live fleet: trackers take turns, each fix timed ``now_ms``."""
        i, j = m % self.spec.trackers, m // self.spec.trackers
        return self.spec.tracker(i), self.spec.fix(i, self.seq0 + j, now_ms)
