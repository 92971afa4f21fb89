"""The transit ground truth (firmware_sim/transit_scenarios.py) checked offline, on
the country outlines the backend loads and hand-built geometry: each case's truck
really does what its expected alerts say, and the compliant ones nothing else."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import shapely
from shapely import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from firmware_sim.devices import ESeal, Tracker
from firmware_sim.paths import Path
from firmware_sim.scenarios import Scenario, ShipmentSpec, records, statuses
from firmware_sim.transit_scenarios import (
    CASES,
    LANES,
    NORTHERN_POSTS,
    SKIPPED_OFFICE,
    border_corridor,
    lane_of,
    transit_ground_truth,
)
from protocol.records import Fix
from tests.firmware_sim.outlines import metric

T0 = 1_790_000_000_000
NEW_TYPES = {"border_bypass", "office_skipped", "border_dwell", "seal_mismatch", "low_battery", "suspicious_gap",
             "gps_jamming", "route_reversal"}
COMPLIANT = ("compliant-malaba", "compliant-busia", "compliant-katuna")
# docs/alerts.md's suspicious_gap rule: unexplained = gap - d / 60 km/h; suspicious from 600 s + 2 * 2 km / 100 km/h.
NORMAL_MS, MAX_MS = 60 / 3.6, 100 / 3.6
SUSPICIOUS_S = 600 + 2 * 2000 / MAX_MS
BORDER_CONFIRM_MS = 60_000


@pytest.fixture(scope="module")
def tt() -> Scenario:
    return transit_ground_truth(T0)


def _tracker(s: Scenario, case: str) -> Tracker:
    (found,) = [d for d in s.devices if isinstance(d, Tracker) and d.device_id == f"tt-{case}-trk"]
    return found


def _seals(s: Scenario, case: str) -> list[ESeal]:
    return [d for d in s.devices if isinstance(d, ESeal) and d.device_id.startswith(f"tt-{case}-seal")]


def _shipments(s: Scenario, case: str) -> list[ShipmentSpec]:
    return [sh for sh in s.shipments if sh.tracker_id == f"tt-{case}-trk"]


def _zone(s: Scenario, code: str) -> Polygon:
    (zone,) = [z for z in s.zones if z.office_code == code]
    return Polygon(zone.ring)


def _country_changes(path: Path, outlines: dict[str, BaseGeometry], a: str, b: str) -> list[int]:
    """Times (epoch ms) the true path enters country ``b`` from ``a`` and stays a confirmation's time."""
    in_b = shapely.contains_xy(outlines[b], path.lon, path.lat)
    in_a = shapely.contains_xy(outlines[a], path.lon, path.lat)
    out, current = [], a
    for i in range(len(path.t)):
        if current == a and in_b[i]:
            later = (path.t >= path.t[i]) & (path.t < path.t[i] + BORDER_CONFIRM_MS)
            if in_b[later].all():
                out.append(int(path.t[i]))
                current = b
        elif current == b and in_a[i]:
            current = a
    return out


def test_one_truck_per_case_and_every_new_alert_type_expected(tt: Scenario) -> None:
    assert [d.device_id for d in tt.devices if isinstance(d, Tracker)] == [f"tt-{c}-trk" for c in CASES]
    counts = Counter(e.type for e in tt.expected)
    assert counts == {"border_bypass": 1, "route_deviation": 4, "office_skipped": 3, "border_dwell": 1,
                      "seal_mismatch": 1, "seal_breach": 1, "suspicious_gap": 1, "gps_jamming": 1,
                      "route_reversal": 1, "low_battery": 1}
    assert set(counts) >= NEW_TYPES
    quiet = {f"tt-{c}-{k}" for c in (*COMPLIANT, "gap-explained", "inspection") for k in ("trk", "seal")}
    assert not [e for e in tt.expected if e.device_id in quiet]
    for e in tt.expected:
        assert e.start_from_ms <= e.start_to_ms and tt.start_ms < e.start_from_ms < tt.end_ms, e
    # Every shipment of every truck passing a post has its milestones.
    for sh in tt.shipments:
        kinds = Counter(m.kind for m in tt.milestones if m.reference == sh.reference)
        assert kinds["border_crossed"] == 1, sh.reference
        assert kinds["arrived"] == (1 if sh.tracker_id == "tt-bypass-trk" else 3), sh.reference


@pytest.mark.parametrize("case", [c for c in CASES if c != "bypass"])
def test_trucks_cross_the_boundary_inside_their_post_zones_when_the_milestone_says(
        tt: Scenario, outlines: dict[str, BaseGeometry], case: str) -> None:
    truck = _tracker(tt, case).truck
    path = Path.of(truck)
    lane = lane_of(case)
    a, b = (side.country for side in lane.post.sides)
    (crossed,) = _country_changes(path, outlines, a, b)
    posts = shapely.union_all([_zone(tt, side.office_code) for side in lane.post.sides])
    i = int(np.flatnonzero(path.t == crossed)[0])
    assert posts.contains(Point(path.lon[i], path.lat[i]))
    for sh in _shipments(tt, case):
        (m,) = [m for m in tt.milestones if m.reference == sh.reference and m.kind == "border_crossed"]
        assert m.from_ms <= crossed <= m.to_ms and dict(m.detail) == {"from": a, "to": b}


def test_the_bypass_crosses_the_boundary_km_away_from_every_post_zone(
        tt: Scenario, outlines: dict[str, BaseGeometry]) -> None:
    truck = _tracker(tt, "bypass").truck
    path = Path.of(truck)
    lane = LANES["malaba"]
    m = metric(lane.post.crossing.lon, lane.post.crossing.lat)
    (crossed,) = _country_changes(path, outlines, "KEN", "UGA")
    i = int(np.flatnonzero(path.t == crossed)[0])
    posts = shapely.union_all([Polygon(z.ring) for z in tt.zones if z.kind == "border_post"])
    assert m(Point(path.lon[i], path.lat[i])).distance(m(posts)) > 2000.0
    # Never inside a post zone of its itinerary at all (no grace period to cover it).
    track = LineString(list(zip(path.lon, path.lat, strict=True)))
    assert not track.intersects(posts)
    (bypass,) = [e for e in tt.expected if e.type == "border_bypass"]
    assert bypass.start_from_ms <= crossed <= bypass.start_to_ms
    # It leaves the corridor: the route deviation, and reaches the destination past both posts.
    (deviation,) = [e for e in tt.expected if e.type == "route_deviation" and e.device_id == "tt-bypass-trk"]
    route = LineString(next(r.line for r in tt.routes if r.name.endswith("malaba-tororo")))
    off = [int(t) for t, lon, lat in zip(path.t, path.lon, path.lat, strict=True)
           if m(Point(lon, lat)).distance(m(route)) > 500.0]
    assert deviation.start_from_ms <= off[0] <= deviation.start_to_ms
    skipped = sorted(e.detail["office"] for e in tt.expected if e.type == "office_skipped"
                     and e.device_id == "tt-bypass-trk")
    assert skipped == ["KEMAL", "UGMAL"]


def test_the_skipped_office_is_on_no_road_and_the_truck_stops_at_the_posts(tt: Scenario) -> None:
    (sh,) = _shipments(tt, "skipped-office")
    assert sh.offices_of_transit == (SKIPPED_OFFICE, "KEMAL", "UGMAL")
    skipped = _zone(tt, SKIPPED_OFFICE)
    for tracker in (d for d in tt.devices if isinstance(d, Tracker)):
        path = Path.of(tracker.truck)
        assert not shapely.contains_xy(skipped, path.lon, path.lat).any()
    (e,) = [e for e in tt.expected if e.device_id == "tt-skipped-office-trk"]
    (arrived,) = [m for m in tt.milestones if m.reference == sh.reference and m.kind == "arrived"
                  and m.office_code == "KEMAL"]
    assert e.type == "office_skipped" and e.start_from_ms <= arrived.from_ms + 1000 <= e.start_to_ms


def test_only_the_long_dwell_truck_stays_at_a_post_past_its_limit(tt: Scenario) -> None:
    limits = {z.office_code: z.dwell_limit_s for z in tt.zones if z.kind == "border_post" and z.office_code}
    for tracker in (d for d in tt.devices if isinstance(d, Tracker)):
        path = Path.of(tracker.truck)
        for code, limit in limits.items():
            assert limit is not None
            for first, last in path.spans_inside(_zone(tt, code).exterior.coords):
                over = (last - first) / 1000 > limit
                assert over == (tracker.device_id == "tt-long-dwell-trk" and code == "KEMAL"), (tracker, code)


def _fixes(tt: Scenario, case: str) -> list[Fix]:
    return sorted((r for r in records(tt)[f"tt-{case}-trk"] if isinstance(r, Fix)), key=lambda r: r.ts)


def _chainage(tt: Scenario, case: str, fix: Fix) -> float:
    return _tracker(tt, case).truck.route.chainage_of(fix.lat, fix.lon)


def _gap(tt: Scenario, case: str) -> tuple[Fix, Fix]:
    fixes = _fixes(tt, case)
    gaps = [(b.ts - a.ts, a, b) for a, b in itertools.pairwise(fixes)]
    _, before, after = max(gaps, key=lambda g: g[0])
    return before, after


def test_the_gap_hides_a_detour_the_distance_cannot_explain(tt: Scenario) -> None:
    tracker = _tracker(tt, "gap-detour")
    (off,) = tracker.off
    before, after = _gap(tt, "gap-detour")
    assert before.ts < off.start_ms and after.ts >= off.end_ms  # nothing recorded while off: no backlog
    gap_s = (after.ts - before.ts) / 1000
    d = abs(_chainage(tt, "gap-detour", after) - _chainage(tt, "gap-detour", before))
    assert gap_s >= 600 and gap_s - d / NORMAL_MS >= SUSPICIOUS_S + 600, (gap_s, d)
    # Meanwhile the truck was more than 2 km outside the corridor for at least 10 minutes.
    path = Path.of(tracker.truck)
    lane = LANES["busia"]
    m = metric(lane.post.crossing.lon, lane.post.crossing.lat)
    route = m(LineString(next(r.line for r in tt.routes if r.name.endswith("busia-tororo"))))
    away = np.array([m(Point(lon, lat)).distance(route) for lon, lat in zip(path.lon, path.lat, strict=True)])
    far = path.t[away > 2000.0]
    assert len(far) >= 600 and off.start_ms <= far[0] and far[-1] < off.end_ms
    assert away[(path.t < off.start_ms) | (path.t >= off.end_ms)].max() < 50.0
    (e,) = [e for e in tt.expected if e.type == "suspicious_gap"]
    assert e.device_id == tracker.device_id and e.start_from_ms <= before.ts <= e.start_to_ms


def test_a_gap_the_distance_explains_and_jamming_s_gap_are_no_suspicious_gap(tt: Scenario) -> None:
    for case in ("gap-explained", "jamming"):
        before, after = _gap(tt, case)
        gap_s = (after.ts - before.ts) / 1000
        d = abs(_chainage(tt, case, after) - _chainage(tt, case, before))
        assert gap_s >= 600 and gap_s - d / NORMAL_MS < 0, (case, gap_s, d)


def test_jamming_sends_statuses_and_no_fix_for_longer_than_the_reporting_interval(tt: Scenario) -> None:
    tracker = _tracker(tt, "jamming")
    (outage,) = tracker.outages
    sent = statuses(tt)[tracker.device_id]
    assert sent and all(outage.start_ms <= st.ts < outage.end_ms and st.state == "online" for st in sent)
    assert len(sent) >= (outage.end_ms - outage.start_ms) // tracker.interval_ms - 1
    before, after = _gap(tt, "jamming")
    assert (after.ts - before.ts) / 1000 > 900  # the medium risk profile's reporting interval
    (e,) = [e for e in tt.expected if e.type == "gps_jamming"]
    assert e.start_from_ms <= before.ts <= e.start_to_ms


def test_the_u_turn_drives_back_2_km_inside_the_corridor(tt: Scenario) -> None:
    truck = _tracker(tt, "u-turn").truck
    (turn,) = truck.reversals
    chainage = np.array([truck.chainage_at((t - truck.departure_ms) / 1000)[0] for t in Path.of(truck).t])
    furthest = np.maximum.accumulate(chainage)
    assert (furthest - chainage).max() == pytest.approx(turn.back_m, abs=20.0)  # sampled every second
    t = Path.of(truck).t
    turned = int(t[int(np.argmax(chainage[: np.flatnonzero(furthest - chainage >= 2000.0)[0]]))])
    (e,) = [e for e in tt.expected if e.type == "route_reversal"]
    assert e.start_from_ms <= turned <= e.start_to_ms


def test_seals_report_declared_numbers_but_the_undeclared_one(tt: Scenario) -> None:
    for case in CASES:
        declared = {n for sh in _shipments(tt, case) for n in sh.seal_numbers}
        for seal in _seals(tt, case):
            assert (seal.seal_id in declared) == (case != "undeclared-seal"), (case, seal.seal_id)
    (e,) = [e for e in tt.expected if e.type == "seal_mismatch"]
    (seal,) = _seals(tt, "undeclared-seal")
    assert e.detail == {"seal_number": seal.seal_id}


def _events(tt: Scenario, seal: ESeal) -> list[tuple[int, str, float | None, Point]]:
    from protocol.records import SealEvent

    return [(r.ts, r.event, r.bat, Point(r.lon, r.lat)) for r in records(tt)[seal.device_id]
            if isinstance(r, SealEvent) and r.lon is not None and r.lat is not None]


def test_seal_events_where_and_when_the_cases_say(tt: Scenario) -> None:
    for case in CASES:
        shipments = _shipments(tt, case)
        departure = _zone(tt, shipments[0].office_of_departure)
        destination = _zone(tt, shipments[0].office_of_destination)
        released = shipments[0].released_at_ms
        assert released is not None
        for seal in _seals(tt, case):
            events = _events(tt, seal)
            assert events[0][1] == "armed" and departure.contains(events[0][3])
            *_, (opened_ms, last, _, where) = events
            assert last == "opened" and destination.contains(where)
            assert (opened_ms < released) == (case == "breach-before-release"), case
    # The inspection: opened and re-armed inside Malaba's Ugandan zone, after it was authorised.
    (inspection,) = tt.inspections
    (seal,) = _seals(tt, "inspection")
    mid = [(ts, ev) for ts, ev, _, where in _events(tt, seal)[1:-1] if _zone(tt, "UGMAL").contains(where)]
    assert [ev for _, ev in mid] == ["opened", "armed"] and inspection.at_ms <= mid[0][0]
    assert inspection.office_code == "UGMAL" and inspection.reference == _shipments(tt, "inspection")[0].reference


def test_the_low_battery_seal_reports_15_percent_in_transit_and_never_recovers(tt: Scenario) -> None:
    (seal,) = _seals(tt, "seal-low-battery")
    events = _events(tt, seal)
    low = [(ts, bat) for ts, ev, bat, _ in events if ev == "low_battery"]
    assert len(low) == 1 and low[0][1] is not None and low[0][1] <= 15.0
    assert seal.truck.departure_ms < low[0][0] < seal.truck.arrival_ms
    assert all(bat is not None and bat < 25.0 for ts, _, bat, _ in events if ts > low[0][0])
    (e,) = [e for e in tt.expected if e.type == "low_battery"]
    assert e.device_id == seal.device_id and e.start_from_ms == low[0][0] and e.open_at_end


def test_the_consolidated_truck_carries_three_shipments_and_deviates_once(tt: Scenario) -> None:
    shipments = _shipments(tt, "consolidated")
    assert len(shipments) == 3 and len({s.reference for s in shipments}) == 3
    assert len({(s.vehicle, s.route, s.offices_of_transit, s.tracker_id) for s in shipments}) == 1
    assert sorted(x for s in shipments for x in s.seal_ids) == sorted(d.device_id for d in _seals(tt, "consolidated"))
    alerts = [e for e in tt.expected if e.device_id == "tt-consolidated-trk"]
    assert sorted(e.reference or "" for e in alerts) == sorted(s.reference for s in shipments)
    assert len({(e.type, e.start_from_ms, e.start_to_ms) for e in alerts}) == 1


@pytest.mark.parametrize("case", COMPLIANT)
def test_compliant_trucks_keep_to_the_corridor_and_stop_only_in_zones(tt: Scenario, case: str) -> None:
    truck = _tracker(tt, case).truck
    path = Path.of(truck)
    lane = lane_of(case)
    m = metric(lane.post.crossing.lon, lane.post.crossing.lat)
    route = m(LineString(list(zip(truck.route.lon, truck.route.lat, strict=True))))
    step = max(1, len(path.t) // 2000)
    assert max(m(Point(lon, lat)).distance(route) for lon, lat in zip(path.lon[::step], path.lat[::step],
                                                                           strict=True)) < 1.0
    zones = shapely.union_all([Polygon(z.ring) for z in tt.zones])
    for stop in truck.motion.stops:
        lat, lon, _ = truck.route.position_at(stop.at_m)
        assert zones.contains(Point(lon, lat)), (case, stop)


def test_the_demo_corridor_lists_exactly_the_posts_each_truck_will_cross() -> None:
    corridor = border_corridor(T0, 6 * 3600, trucks=40, prefix="bc")
    zones = {z.office_code: Polygon(z.ring) for z in corridor.zones if z.kind == "border_post" and z.office_code}
    assert sorted(zones) == ["KEMAL", "RWGAT", "UGKAT", "UGMAL"]
    assert not [z for z in corridor.zones if z.name.endswith(("-stop-malaba", "-stop-katuna"))]
    trucks = {d.device_id: d.truck for d in corridor.devices if isinstance(d, Tracker)}
    for sh in corridor.shipments:
        truck = trucks[sh.tracker_id]
        path = Path.of(truck, from_ms=max(T0, truck.departure_ms))
        # The posts whose boundary it crosses after the run starts, each side in the order it is in them.
        crossed = sorted((path.crossings(post.boundary)[0], post) for post in NORTHERN_POSTS
                         if path.crossings(post.boundary))
        expected = [code for _, post in crossed for _, code in sorted(
            (path.spans_inside(list(zones[side.office_code].exterior.coords))[0][0], side.office_code)
            for side in post.sides)]
        assert tuple(expected) == sh.offices_of_transit, sh.reference
    for d in corridor.devices:
        if isinstance(d, Tracker):
            for stop in d.truck.motion.stops:
                lat, lon, _ = d.truck.route.position_at(stop.at_m)
                assert any(Polygon(z.ring).contains(Point(lon, lat)) for z in corridor.zones), stop


def _recorded(tt: Scenario, tracker_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fixes = sorted((r for r in records(tt)[tracker_id] if isinstance(r, Fix)), key=lambda r: r.ts)
    return (np.array([f.ts for f in fixes]), np.array([f.lon for f in fixes]), np.array([f.lat for f in fixes]))


def _held(flags: np.ndarray, ts: np.ndarray, i: int, for_ms: float) -> bool:
    """``flags`` stays true from fix ``i`` until ``for_ms`` later (hysteresis, on fix time)."""
    later = np.flatnonzero(ts >= ts[i] + for_ms)
    return bool(later.size) and bool(flags[i:later[0] + 1].all())


def test_the_published_fixes_of_the_default_seed_fall_in_every_milestone_window(
        tt: Scenario, outlines: dict[str, BaseGeometry]) -> None:
    """The windows come from true paths; the fixes carry noise, jumps and dropouts. With the
    engine's hysteresis (arrival held 30 s inside, departure 60 s outside, a crossing 60 s in the
    new country), each milestone decided on the published fixes lands in its window."""
    for sh in tt.shipments:
        ts, lon, lat = _recorded(tt, sh.tracker_id)
        for m in (m for m in tt.milestones if m.reference == sh.reference):
            if m.kind == "arrived":
                assert m.office_code is not None
                inside = shapely.contains_xy(_zone(tt, m.office_code), lon, lat)
                at = next(int(ts[i]) for i in range(len(ts)) if inside[i] and _held(inside, ts, i, 30_000))
            elif m.kind == "departed":
                assert m.office_code is not None
                outside = ~shapely.contains_xy(_zone(tt, m.office_code), lon, lat)
                first_out = next(i for i in range(1, len(ts)) if outside[i] and not outside[i - 1]
                                 and _held(outside, ts, i, 60_000) and ts[i] > m.from_ms - 600_000)
                at = int(ts[first_out - 1])
            elif m.kind == "border_crossed":
                there = shapely.contains_xy(outlines[m.detail["to"]], lon, lat)
                at = next(int(ts[i]) for i in range(len(ts)) if there[i] and _held(there, ts, i, BORDER_CONFIRM_MS))
            else:
                continue
            assert m.from_ms <= at <= m.to_ms, (m, at)


def test_the_published_fixes_of_the_default_seed_start_every_tracker_alert_in_its_window(tt: Scenario) -> None:
    for e in tt.expected:
        if e.type not in ("route_deviation", "route_reversal"):
            continue
        ts, lon, lat = _recorded(tt, e.device_id)
        tracker = next(d for d in tt.devices if isinstance(d, Tracker) and d.device_id == e.device_id)
        route = tracker.truck.route
        if e.type == "route_deviation":
            lane = lane_of(e.device_id.removeprefix("tt-").removesuffix("-trk"))
            m = metric(lane.post.crossing.lon, lane.post.crossing.lat)
            line = m(LineString(list(zip(route.lon, route.lat, strict=True))))
            off = [int(t) for t, x, y in zip(ts, lon, lat, strict=True) if m(Point(x, y)).distance(line) > 500.0]
            at = off[0]
        else:  # started at the furthest fix (in the corridor) before the truck is 2 km behind it
            chainage = np.array([route.chainage_of(y, x) for x, y in zip(lon, lat, strict=True)])
            back = np.maximum.accumulate(chainage) - chainage
            behind = int(np.flatnonzero(back >= 2000.0)[0])
            at = int(ts[int(np.argmax(chainage[:behind]))])
        assert e.start_from_ms <= at <= e.start_to_ms, (e, at)
