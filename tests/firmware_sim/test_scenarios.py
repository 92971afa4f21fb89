"""Scenarios and their ground truth, checked by hand-built geometry (no broker,
no database). tests/geofence/test_scenarios.py runs the engine on them."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable

import msgspec
import pytest
from pyproj import Transformer
from shapely import LineString, Point, Polygon

from firmware_sim.corridors import MOMBASA_VOI
from firmware_sim.devices import ESeal, GpsNoise, Tracker, Truck
from firmware_sim.firmware import Firmware
from firmware_sim.motion import Motion
from firmware_sim.route import RouteLine
from firmware_sim.scenarios import (
    CASES,
    Scenario,
    deliveries,
    ground_truth,
    quiet_fleet,
    records,
)
from protocol.records import Fix, SealEvent

T0 = 1_790_000_000_000
BREACH_EVENTS = ("opened", "tampered", "cut")


class Local:
    """The scenario's geometry in metres: azimuthal equidistant around its first route's middle."""

    def __init__(self, scenario: Scenario) -> None:
        line = scenario.routes[0].line
        lon0, lat0 = line[len(line) // 2]
        self._to_m = Transformer.from_crs(
            "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m", always_xy=True
        )
        self.routes = {r.name: LineString(self.xy(r.line)) for r in scenario.routes}
        self.zones = {z.name: Polygon(self.xy(z.ring)) for z in scenario.zones}

    def xy(self, lonlat: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        return [self._to_m.transform(lon, lat) for lon, lat in lonlat]

    def point(self, lat: float, lon: float) -> Point:
        return Point(self._to_m.transform(lon, lat))


def _tracker(scenario: Scenario, case: str) -> Tracker:
    found = [d for d in scenario.devices if isinstance(d, Tracker) and d.device_id.endswith(f"-{case}-trk")]
    assert len(found) == 1
    return found[0]


def _seal(scenario: Scenario, case: str) -> ESeal:
    found = [d for d in scenario.devices if isinstance(d, ESeal) and d.device_id.endswith(f"-{case}-seal")]
    assert len(found) == 1
    return found[0]


# ------------------------------------------------------------------------ ground truth


@pytest.fixture(scope="module")
def gt() -> Scenario:
    return ground_truth(T0)


def test_ground_truth_has_one_truck_per_case_and_four_expected_alerts(gt: Scenario) -> None:
    trackers = [d for d in gt.devices if isinstance(d, Tracker)]
    seals = [d for d in gt.devices if isinstance(d, ESeal)]
    assert [t.device_id for t in trackers] == [f"gt-{c}-trk" for c in CASES] and len(CASES) == 7
    assert [s.seal_id for s in seals] == [s.device_id for s in seals] == [f"gt-{c}-seal" for c in CASES]
    assert {(s.tracker_id, s.seal_ids) for s in gt.shipments} == {(f"gt-{c}-trk", (f"gt-{c}-seal",)) for c in CASES}
    assert len({s.reference for s in gt.shipments}) == 7
    got = sorted((e.type, e.device_id, e.late) for e in gt.expected)
    assert got == [("route_deviation", "gt-detour-trk", False),
                   ("seal_breach", "gt-seal-breach-seal", False),
                   ("unscheduled_stop", "gt-gap-stop-trk", True),
                   ("unscheduled_stop", "gt-unauthorised-stop-trk", False)]
    for e in gt.expected:
        assert gt.start_ms <= e.start_from_ms <= e.start_to_ms <= gt.end_ms
    assert 3 * 3600_000 <= gt.end_ms - gt.start_ms <= 4 * 3600_000
    departures = [t.truck.departure_ms for t in trackers]
    assert all(0 < b - a <= 10 * 60_000 for a, b in itertools.pairwise(departures))
    for ship, tracker in zip(gt.shipments, trackers, strict=True):
        assert ship.departed_at_ms == tracker.truck.departure_ms - 60_000
        assert ship.deadline_ms > gt.end_ms  # nothing is overdue
        assert (ship.office_of_departure, ship.office_of_destination) == ("KEMBA", "KEVOI")
    two_drms = [t.noise.two_drms_m for t in trackers]
    assert all(15 <= m <= 30 for m in two_drms) and len(set(two_drms)) == 7
    assert all(t.noise.jump_probability > 0 and t.noise.dropout_probability > 0 for t in trackers)


def test_detour_leaves_the_corridor_only_while_it_holds(gt: Scenario) -> None:
    local, route = Local(gt), gt.routes[0]
    line = local.routes[route.name]
    truck = _tracker(gt, "detour").truck
    (detour,) = truck.detours

    def off_route_m(t_ms: float) -> float:
        lat, lon, _, _ = truck.at(round(t_ms))
        return float(line.distance(local.point(lat, lon)))

    at = truck.departure_ms + detour.start_s * 1000
    ramp, hold = detour.ramp_s * 1000, detour.hold_s * 1000
    for t in range(truck.departure_ms, truck.arrival_ms, 20_000):
        if not at <= t <= at + 2 * ramp + hold:
            assert off_route_m(t) < 1.0
    # The simulator's metres are the haversine sphere's; on the WGS84 ellipsoid a
    # north-south offset near the equator measures about 0.5 % shorter.
    for k in range(11):
        assert off_route_m(at + ramp + k * hold / 10) == pytest.approx(detour.offset_m, rel=0.01)
    # Offsets are to the right of travel: north of this west-north-westward road.
    middle_ms = (detour.start_s + detour.ramp_s + detour.hold_s / 2) * 1000
    assert truck.at(truck.departure_ms + round(middle_ms))[0] > truck.route.position_at(
        truck.motion.at(middle_ms / 1000)[0])[0] + 0.01
    crossed = truck.beyond_ms(detour, route.corridor_m)
    assert off_route_m(crossed - 1000) < route.corridor_m < off_route_m(crossed + 1000)
    (expected,) = [e for e in gt.expected if e.type == "route_deviation"]
    assert expected.start_from_ms < crossed < expected.start_to_ms
    assert expected.start_to_ms - expected.start_from_ms == pytest.approx(2 * gt.interval_s * 1000, abs=2)


def test_stops_are_where_the_cases_put_them(gt: Scenario) -> None:
    local, route = Local(gt), gt.routes[0]
    windows = {e.device_id: e for e in gt.expected if e.type == "unscheduled_stop"}
    for case in ("authorised-stop", "unauthorised-stop", "gap-stop"):
        tracker = _tracker(gt, case)
        truck = tracker.truck
        (stop,) = truck.motion.stops
        halted = truck.halt_ms(stop)
        at_rest = {truck.at(math.ceil(halted) + k * 60_000)[:3] for k in range(30)}
        assert len(at_rest) == 1 and next(iter(at_rest))[2] == 0.0  # one place, speed 0
        assert truck.at(math.floor(halted) - 5000)[2] > 0  # still braking just before
        lat, lon, _ = next(iter(at_rest))
        where = local.point(lat, lon)
        inside = [name for name, zone in local.zones.items() if zone.contains(where)]
        if case == "authorised-stop":
            assert inside == list(route.stop_zones) == ["gt-stop-mariakani"]
            assert tracker.device_id not in windows
        else:
            assert min(zone.distance(where) for zone in local.zones.values()) >= 5000
            window = windows[tracker.device_id]
            assert window.start_from_ms < halted < window.start_to_ms
            assert window.late == (case == "gap-stop")
    (gap,) = _tracker(gt, "gap-stop").firmware.gaps
    truck = _tracker(gt, "gap-stop").truck
    halted = truck.halt_ms(truck.motion.stops[0])
    assert gap.end_ms - gap.start_ms == 2 * 3600_000
    assert gap.start_ms < halted - 60_000 and halted + 1800_000 < gap.end_ms < truck.arrival_ms
    assert _tracker(gt, "gap-stop").firmware.backlog_newest_first


def test_seals_open_at_the_destination_and_one_mid_route(gt: Scenario) -> None:
    local = Local(gt)
    destination = local.zones["gt-office-KEVOI"]
    (breach,) = [e for e in gt.expected if e.type == "seal_breach"]
    for case in CASES:
        seal = _seal(gt, case)
        truck = seal.truck
        events = [(e.at_ms, e.event) for e in seal.events]
        assert events[0] == (truck.departure_ms - 600_000, "armed")
        assert events[-1] == (truck.arrival_ms + 900_000, "opened")
        lat, lon, _, _ = truck.at(truck.arrival_ms + 900_000)
        assert destination.contains(local.point(lat, lon))
        if case == "seal-breach":
            assert events[1:-1] == [(breach.start_from_ms, "opened")] and breach.start_to_ms == breach.start_from_ms
            lat, lon, kmh, _ = truck.at(breach.start_from_ms)
            assert kmh > 30 and min(z.distance(local.point(lat, lon)) for z in local.zones.values()) >= 5000
        else:
            assert len(events) == 2


def test_records_come_in_publishing_order_with_the_gap_backlog_newest_first(gt: Scenario) -> None:
    tracker = _tracker(gt, "gap-stop")
    (gap,) = tracker.firmware.gaps
    sent = [d for d in deliveries(gt) if d.device_id == tracker.device_id]
    assert all(d.at_ms < gap.start_ms or d.at_ms >= gap.end_ms for d in sent)
    in_gap = [r for d in sent for r in d.records if gap.start_ms <= r.ts < gap.end_ms]
    assert len(in_gap) > 0.9 * (gap.end_ms - gap.start_ms) / (gt.interval_s * 1000)
    assert [r.ts for r in in_gap] == sorted((r.ts for r in in_gap), reverse=True)
    first_after = next(d for d in sent if d.at_ms >= gap.end_ms)
    assert len(first_after.records) == 50 and first_after.records[0].ts >= gap.end_ms  # newest first
    # No record is published twice, and records() gives the same order as the messages.
    mine = records(gt)[tracker.device_id]
    assert mine == [r for d in sent for r in d.records]
    assert sorted(r.seq for r in mine) == list(range(len(mine)))
    # Live records go out when taken; the device's flash is empty at the end.
    assert all(d.at_ms == d.records[0].ts for d in sent if len(d.records) == 1)
    assert tracker.firmware.next_seq == 0  # the scenario's own devices were not played


def test_dropouts_lose_fixes_but_never_a_seq(gt: Scenario) -> None:
    route = RouteLine.from_corridor(MOMBASA_VOI)
    truck = Truck(route, Motion(route.length_m, [20.0], []), T0)

    def fixes(dropout: float) -> list[Fix]:
        tracker = Tracker(Firmware("T", "pos"), truck, 15.0, GpsNoise(dropout_probability=dropout), random.Random(3))
        tracker.tick(truck.arrival_ms - 1, can_send=False)
        return [f for out in tracker.tick(truck.arrival_ms, can_send=True)
                for f in msgspec.json.decode(out.payload, type=list[Fix])]

    full, thinned = fixes(0.0), fixes(0.2)
    assert len(full) == (truck.arrival_ms - T0) // 15_000 + 1
    assert 0.7 * len(full) < len(thinned) < 0.9 * len(full)
    assert [f.seq for f in thinned] == list(range(len(thinned)))
    assert {f.ts for f in thinned} < {f.ts for f in full}
    published = records(gt)
    for case in CASES:
        tracker = _tracker(gt, case)
        mine = published[tracker.device_id]
        slots = (tracker.truck.arrival_ms - tracker.truck.departure_ms) // 15_000 + 1
        assert 0.9 * slots < len(mine) < slots
        assert sorted(r.seq for r in mine) == list(range(len(mine)))


# ------------------------------------------------------------------------- quiet fleet


@pytest.fixture(scope="module")
def quiet() -> Scenario:
    return quiet_fleet(T0, 4 * 3600, trucks=16)


def test_quiet_fleet_has_a_shipment_per_truck_and_expects_nothing(quiet: Scenario) -> None:
    trackers = [d for d in quiet.devices if isinstance(d, Tracker)]
    seals = [d for d in quiet.devices if isinstance(d, ESeal)]
    assert len(quiet.devices) == 32 and len(trackers) == len(seals) == 16
    assert quiet.expected == []
    assert sorted(s.tracker_id for s in quiet.shipments) == sorted(t.device_id for t in trackers)
    assert len({s.reference for s in quiet.shipments}) == 16
    offices = {z.office_code or "": z for z in quiet.zones if z.kind == "office"}
    assert sorted(offices) == ["KEMBA", "RWKGL"]
    stop_zones = sorted(z.name for z in quiet.zones if z.kind == "stop")
    assert len(stop_zones) == 6  # four rest areas, two border posts
    routes = {r.name: r for r in quiet.routes}
    assert len(routes) == 2 and all(sorted(r.stop_zones) == stop_zones for r in routes.values())
    by_id = {t.device_id: t for t in trackers}
    for ship in quiet.shipments:
        truck = by_id[ship.tracker_id].truck
        assert ship.seal_ids == tuple(s.seal_id for s in seals if s.truck is truck)
        assert ship.departed_at_ms < truck.departure_ms and ship.deadline_ms > max(quiet.end_ms, truck.arrival_ms)
        start = routes[ship.route].line[0]
        origin = offices[ship.office_of_departure]
        assert Polygon(origin.ring).contains(Point(start))
        assert start == (truck.route.lon[0], truck.route.lat[0])
    assert all(15 <= t.noise.two_drms_m <= 30 for t in trackers)
    assert len({t.truck.route.lat[0] for t in trackers}) == 2  # both directions


def test_default_quiet_fleet_is_500_trucks() -> None:
    fleet = quiet_fleet(T0, 6 * 3600)
    assert len(fleet.devices) == 1000 and len(fleet.shipments) == 500 and fleet.expected == []
    assert fleet.interval_s == 30.0 and fleet.end_ms == T0 + 6 * 3600_000


def test_every_planned_stop_of_the_quiet_fleet_is_in_a_stop_zone_of_its_route(quiet: Scenario) -> None:
    zones = {z.name: Polygon(z.ring) for z in quiet.zones}
    routes = {s.tracker_id: next(r for r in quiet.routes if r.name == s.route) for s in quiet.shipments}
    stopping_in_run = 0
    for tracker in (d for d in quiet.devices if isinstance(d, Tracker)):
        truck = tracker.truck
        assert truck.motion.stops  # every trip clears customs twice
        for stop in truck.motion.stops:
            lat, lon, _ = truck.route.position_at(stop.at_m)
            assert any(zones[name].contains(Point(lon, lat)) for name in routes[tracker.device_id].stop_zones)
            halted = truck.halt_ms(stop)
            stopping_in_run += quiet.start_ms <= halted and halted + stop.duration_s * 1000 <= quiet.end_ms
    assert stopping_in_run > 0  # so that test_quiet_fleet_raises_nothing sees whole stops


def test_quiet_fleet_seals_open_inside_the_destination_office(quiet: Scenario) -> None:
    offices = {z.office_code: Polygon(z.ring) for z in quiet.zones if z.kind == "office"}
    destination = {seal: s.office_of_destination for s in quiet.shipments for seal in s.seal_ids}
    opened = 0
    for seal in (d for d in quiet.devices if isinstance(d, ESeal)):
        truck = seal.truck
        planned = {e.event: e.at_ms for e in seal.events}
        assert set(planned) <= {"armed", "opened"}
        assert planned.get("armed", truck.departure_ms - 600_000) == truck.departure_ms - 600_000
        assert planned["opened"] == truck.arrival_ms + 900_000
        lat, lon, _, _ = truck.at(planned["opened"])
        assert offices[destination[seal.seal_id]].contains(Point(lon, lat))
        opened += planned["opened"] <= quiet.end_ms
    assert opened > 0


@pytest.mark.parametrize("name", ["gt", "quiet"])
def test_every_opening_at_a_destination_comes_after_its_release(name: str, request: pytest.FixtureRequest) -> None:
    """docs/alerts.md: an opening inside the destination is normal only once the goods are released; the
    shipments are released on arrival, never later than the run (a registration cannot)."""
    scenario: Scenario = request.getfixturevalue(name)
    played = records(scenario)
    breaches = {(e.device_id, e.start_from_ms) for e in scenario.expected if e.type == "seal_breach"}
    for sh in scenario.shipments:
        assert sh.released_at_ms is None or sh.released_at_ms <= scenario.end_ms
        for seal_id in sh.seal_ids:
            for r in played[seal_id]:
                if isinstance(r, SealEvent) and r.event == "opened" and (seal_id, r.ts) not in breaches:
                    assert sh.released_at_ms is not None and r.ts >= sh.released_at_ms, (sh, r)
