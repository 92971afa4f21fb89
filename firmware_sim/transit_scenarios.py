"""Ground truth for transit across borders (issue 13): one truck per case on the
border corridors of firmware_sim/corridors.py (Malaba and Busia, Kenya -> Uganda;
Katuna/Gatuna, Uganda -> Rwanda), with every alert it must raise and every
milestone its shipments' timelines must show.

Expected times come from each truck's true path (firmware_sim/paths.py): a zone's
arrival is the first fix inside it, its departure the last; a border crossing is
timed against the boundary kept in corridors.py (the data set's, to ~110 m).
What the windows assume of the engine is said where they are made.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim.corridors import (
    BUNGOMA_BUSIA_TORORO,
    BUNGOMA_MALABA_TORORO,
    BUSIA,
    KABALE_KATUNA_KIGALI,
    KATUNA,
    MALABA,
    NORTHERN_CORRIDOR,
    OFFICES,
    POST_HALF_WIDTH_M,
    BorderPost,
    Corridor,
    Office,
)
from firmware_sim.devices import Drain, ESeal, GpsNoise, PlannedSealEvent, Tracker, Truck
from firmware_sim.firmware import Firmware, Gap
from firmware_sim.motion import Detour, Motion, Reversal, Stop
from firmware_sim.paths import Path
from firmware_sim.route import RouteLine
from firmware_sim.scenarios import (
    CRUISE_KMH,
    DEADLINE_AFTER_ARRIVAL_MS,
    DEPARTURE_STAGGER_MS,
    DROPOUT_PROBABILITY,
    FIRST_DEPARTURE_MS,
    JUMP_M,
    JUMP_PROBABILITY,
    OFFICE_HALF_SIDE_M,
    SEAL_ARMED_BEFORE_MS,
    SEAL_OPENED_AFTER_MS,
    TWO_DRMS_M,
    ExpectedAlert,
    ExpectedMilestone,
    PlannedInspection,
    RouteSpec,
    Scenario,
    ShipmentSpec,
    ZoneSpec,
    line_of,
    mrn,
    quiet_fleet,
    square_around,
)

# One truck each, departing in this order. Compliant trucks raise nothing but milestones.
CASES = ("compliant-malaba", "compliant-busia", "compliant-katuna", "bypass", "skipped-office", "long-dwell",
         "undeclared-seal", "breach-before-release", "inspection", "consolidated", "gap-detour", "gap-explained",
         "jamming", "u-turn", "seal-low-battery")

# Customs clearance, at a stop 750 m from the boundary on each side (inside each post's zone).
CLEARANCE_STOP_M = 750.0
CLEARANCE_EXIT_S = 40 * 60.0
CLEARANCE_ENTRY_S = 20 * 60.0
LONG_DWELL_OVER_S = 40 * 60.0  # past the exit post's dwell limit
# The bypass leaves the road 4.5 km before the boundary, runs 3 km to the side of it
# (north of Malaba) across the boundary, and rejoins 4.5 km after it.
BYPASS_BEFORE_M, BYPASS_RAMP_S, BYPASS_HOLD_S, BYPASS_OFFSET_M = 4500.0, 150.0, 150.0, 3000.0
# A deviation of the consolidated truck, well before the border.
DEVIATION_AT_M, DEVIATION_RAMP_S, DEVIATION_HOLD_S, DEVIATION_OFFSET_M = 15_000.0, 120.0, 600.0, 2000.0
TRUCK_SHIPMENTS = 3
# The hidden detour: the tracker goes off 8 min before the truck stops at HIDDEN_AT_M, is off
# while it drives 5 km off the road and back (40 min), and comes on 12 min after it drives on.
HIDDEN_AT_M, HIDDEN_STOP_S, HIDDEN_OFFSET_M, HIDDEN_RAMP_S = 25_000.0, 40 * 60.0, 5000.0, 8 * 60.0
OFF_BEFORE_S, OFF_AFTER_S = 8 * 60.0, 12 * 60.0
# A gap the distance explains: 20 min off while driving on.
EXPLAINED_AT_M, EXPLAINED_S = 15_000.0, 20 * 60.0
# GNSS jammed for 30 min while driving on: statuses, no fixes.
JAMMED_AT_M, JAMMED_S = 5000.0, 30 * 60.0  # over by 45 km: 6 km before the post
# The U-turn: 20 km past the boundary, 5 km back at 50 km/h, then on again.
UTURN_AFTER_M, UTURN_BACK_M, UTURN_KMH = 20_000.0, 5000.0, 50.0
RELEASE_AFTER_ARRIVAL_MS = 60 * 60_000  # the breach case: opened (15 min after arrival) before release
INSPECTION_OPENED_AFTER_MS, INSPECTION_REARMED_AFTER_MS = 5 * 60_000, 12 * 60_000
LOW_BATTERY_PCT, SEAL_BATTERY_PCT = 15.0, 30.0

# What the windows assume of the engine (docs/alerts.md): the rules' thresholds, and that a
# condition alert starts at the first fix where its condition holds.
OFFICE_ENTER_S = 30.0
CORRIDOR_M = 500.0
CROSSING_SLACK_MS = 20_000  # the boundary kept in corridors.py is within ~110 m of the data's


@dataclass(frozen=True)
class Lane:
    """A border corridor and its offices: departure, the post's two sides, destination."""

    name: str
    corridor: Corridor
    post: BorderPost
    departure: str
    destination: str

    @property
    def offices(self) -> tuple[str, ...]:
        return (self.departure, self.post.sides[0].office_code, self.post.sides[1].office_code, self.destination)


LANES = {lane.name: lane for lane in (
    Lane("malaba", BUNGOMA_MALABA_TORORO, MALABA, "KEBGM", "UGTOR"),
    Lane("busia", BUNGOMA_BUSIA_TORORO, BUSIA, "KEBGM", "UGTOR"),
    Lane("katuna", KABALE_KATUNA_KIGALI, KATUNA, "UGKBL", "RWKGL"),
)}
_OFF_MALABA = {"compliant-busia": "busia", "gap-detour": "busia", "gap-explained": "busia", "jamming": "busia",
               "compliant-katuna": "katuna", "u-turn": "katuna", "seal-low-battery": "katuna"}


def lane_of(case: str) -> Lane:
    """The lane a case's truck drives: Malaba unless said otherwise."""
    return LANES[_OFF_MALABA.get(case, "malaba")]
SKIPPED_OFFICE = "KEKSM"  # declared as the first office of transit, on none of these roads


def office_zone(prefix: str, office: Office) -> ZoneSpec:
    return ZoneSpec(f"{prefix}-office-{office.code}", "office", square_around(office.place, OFFICE_HALF_SIDE_M),
                    office.code, office.country)


def post_zones(prefix: str, route: RouteLine, post: BorderPost) -> tuple[ZoneSpec, ZoneSpec]:
    """The post's two ``border_post`` zones along ``route`` (which runs from ``post.sides[0]``'s
    country to the other's): each from the boundary crossing ``reach_m`` into its own country."""
    c = route.chainage_of(post.crossing.lat, post.crossing.lon)
    exit_side, entry_side = post.sides
    return (ZoneSpec(f"{prefix}-post-{exit_side.office_code}", "border_post",
                     route.band(c - exit_side.reach_m, c, POST_HALF_WIDTH_M), exit_side.office_code,
                     exit_side.country, exit_side.dwell_limit_s),
            ZoneSpec(f"{prefix}-post-{entry_side.office_code}", "border_post",
                     route.band(c, c + entry_side.reach_m, POST_HALF_WIDTH_M), entry_side.office_code,
                     entry_side.country, entry_side.dwell_limit_s))


@dataclass
class _Plan:
    """One case's truck as planned: what the builder turns into devices and a shipment."""

    truck: Truck
    offices: tuple[str, ...]  # itinerary
    seals: int = 1
    shipments: int = 1
    off: tuple[Gap, ...] = ()
    outages: tuple[Gap, ...] = ()
    battery: Drain | None = None
    undeclared: bool = False  # the seal reports a number the declaration does not list
    extra_events: list[PlannedSealEvent] = field(default_factory=list)
    released_at_ms: int | None = None
    inspection: tuple[str, int] | None = None  # (office code, authorised at)


class _Builder:
    def __init__(self, start_ms: int, prefix: str, interval_s: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.interval_ms = round(interval_s * 1000)
        self.routes = {name: RouteLine.from_corridor(lane.corridor) for name, lane in LANES.items()}
        self.crossing_m = {name: self.routes[name].chainage_of(lane.post.crossing.lat, lane.post.crossing.lon)
                           for name, lane in LANES.items()}
        zones = [office_zone(prefix, o) for o in OFFICES.values() if o.code != "KEMBA"]
        for name, lane in LANES.items():
            zones.extend(post_zones(prefix, self.routes[name], lane.post))
        self.zones = {z.office_code or z.name: z for z in zones}
        specs = [RouteSpec(f"{prefix}-{_slug(lane.corridor.name)}", line_of(self.routes[name]), CORRIDOR_M)
                 for name, lane in LANES.items()]
        self.route_specs = dict(zip(LANES, specs, strict=True))
        self.scenario = Scenario("transit-ground-truth", [], list(self.zones.values()), specs, [], [], start_ms,
                                 start_ms, interval_s)

    # --- trucks ---------------------------------------------------------------------------

    def motion(self, lane: str, stops: list[Stop]) -> Motion:
        route = self.routes[lane]
        return Motion(route.length_m, [self.rng.uniform(*CRUISE_KMH) / 3.6 for _ in range(len(stops) + 1)],
                      sorted(stops, key=lambda st: st.at_m))

    def clearance(self, lane: str, exit_s: float = CLEARANCE_EXIT_S) -> list[Stop]:
        c = self.crossing_m[lane]
        return [Stop(c - CLEARANCE_STOP_M, exit_s), Stop(c + CLEARANCE_STOP_M, CLEARANCE_ENTRY_S)]

    def through_post(self, lane: str, departure_ms: int, exit_s: float = CLEARANCE_EXIT_S) -> Truck:
        return Truck(self.routes[lane], self.motion(lane, self.clearance(lane, exit_s)), departure_ms)

    # --- the cases --------------------------------------------------------------------------

    def plan(self, case: str, departure_ms: int) -> _Plan:
        lane = lane_of(case).name
        offices = LANES[lane].offices
        builders: dict[str, Callable[[str, int, tuple[str, ...]], _Plan]] = {
            "bypass": self._bypass, "long-dwell": self._long_dwell, "consolidated": self._consolidated,
            "gap-detour": self._gap_detour, "gap-explained": self._gap_explained, "jamming": self._jamming,
            "u-turn": self._u_turn, "seal-low-battery": self._low_battery, "inspection": self._inspection,
            "breach-before-release": self._breach}
        if case in builders:
            return builders[case](lane, departure_ms, offices)
        plan = _Plan(self.through_post(lane, departure_ms), offices)
        if case == "skipped-office":
            plan.offices = (offices[0], SKIPPED_OFFICE, *offices[1:])
        plan.undeclared = case == "undeclared-seal"
        return plan

    def _bypass(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        motion = self.motion(lane, [])
        start = motion.time_at(self.crossing_m[lane] - BYPASS_BEFORE_M)
        # Positive offset: to the right of travel, north of the road at Malaba (corridors.py).
        detour = Detour(start, BYPASS_RAMP_S, BYPASS_HOLD_S, BYPASS_OFFSET_M)
        return _Plan(Truck(self.routes[lane], motion, departure_ms, (detour,)), offices)

    def _long_dwell(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        limit_s = LANES[lane].post.sides[0].dwell_limit_s
        return _Plan(self.through_post(lane, departure_ms, limit_s + LONG_DWELL_OVER_S), offices)

    def _consolidated(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        motion = self.motion(lane, self.clearance(lane))
        detour = Detour(motion.time_at(DEVIATION_AT_M), DEVIATION_RAMP_S, DEVIATION_HOLD_S, DEVIATION_OFFSET_M)
        truck = Truck(self.routes[lane], motion, departure_ms, (detour,))
        return _Plan(truck, offices, seals=TRUCK_SHIPMENTS, shipments=TRUCK_SHIPMENTS)

    def _gap_detour(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        stop = Stop(HIDDEN_AT_M, HIDDEN_STOP_S)
        stops = [stop, *self.clearance(lane)]
        motion = self.motion(lane, stops)
        halt = motion.halt_s(stop)
        hold = HIDDEN_STOP_S - 2 * HIDDEN_RAMP_S - 2 * 60.0  # a minute still at each end
        detour = Detour(halt + 60.0, HIDDEN_RAMP_S, hold, HIDDEN_OFFSET_M)
        truck = Truck(self.routes[lane], motion, departure_ms, (detour,))
        off = Gap(departure_ms + round((halt - OFF_BEFORE_S) * 1000),
                  departure_ms + round((halt + HIDDEN_STOP_S + OFF_AFTER_S) * 1000))
        return _Plan(truck, offices, off=(off,))

    def _gap_explained(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        truck = self.through_post(lane, departure_ms)
        at = departure_ms + round(truck.motion.time_at(EXPLAINED_AT_M) * 1000)
        return _Plan(truck, offices, off=(Gap(at, at + round(EXPLAINED_S * 1000)),))

    def _jamming(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        truck = self.through_post(lane, departure_ms)
        at = departure_ms + round(truck.motion.time_at(JAMMED_AT_M) * 1000)
        return _Plan(truck, offices, outages=(Gap(at, at + round(JAMMED_S * 1000)),))

    def _u_turn(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        motion = self.motion(lane, self.clearance(lane))
        turn = Reversal(motion.time_at(self.crossing_m[lane] + UTURN_AFTER_M), UTURN_BACK_M, UTURN_KMH / 3.6)
        return _Plan(Truck(self.routes[lane], motion, departure_ms, reversals=(turn,)), offices)

    def _low_battery(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        truck = self.through_post(lane, departure_ms)
        armed_ms = departure_ms - SEAL_ARMED_BEFORE_MS
        low_ms = departure_ms + (truck.arrival_ms - departure_ms) * 2 // 3  # some charge left at the destination
        rate = (SEAL_BATTERY_PCT - LOW_BATTERY_PCT) / ((low_ms - armed_ms) / 3_600_000)
        return _Plan(truck, offices, battery=Drain(armed_ms, SEAL_BATTERY_PCT, rate),
                     extra_events=[PlannedSealEvent(low_ms, "low_battery")])

    def _inspection(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        truck = self.through_post(lane, departure_ms)
        entry_stop = truck.motion.stops[1]
        halted = round(truck.halt_ms(entry_stop))
        events = [PlannedSealEvent(halted + INSPECTION_OPENED_AFTER_MS, "opened"),
                  PlannedSealEvent(halted + INSPECTION_REARMED_AFTER_MS, "armed")]
        return _Plan(truck, offices, extra_events=events, inspection=(offices[2], halted))

    def _breach(self, lane: str, departure_ms: int, offices: tuple[str, ...]) -> _Plan:
        truck = self.through_post(lane, departure_ms)
        return _Plan(truck, offices, released_at_ms=truck.arrival_ms + RELEASE_AFTER_ARRIVAL_MS)

    # --- devices, shipments and what is expected ------------------------------------------------

    def add(self, i: int, case: str, plan: _Plan) -> None:
        lane = lane_of(case).name
        truck, prefix = plan.truck, self.prefix
        departure_ms = truck.departure_ms
        tracker_id = f"{prefix}-{case}-trk"
        noise = GpsNoise.from_2drms(self.rng.uniform(*TWO_DRMS_M), JUMP_PROBABILITY, JUMP_M, DROPOUT_PROBABILITY)
        self.scenario.devices.append(Tracker(Firmware(tracker_id, "pos"), truck, self.scenario.interval_s, noise,
                                             random.Random(self.rng.random()), off=plan.off,
                                             outages=plan.outages))
        opened_ms = truck.arrival_ms + SEAL_OPENED_AFTER_MS
        seal_ids = [f"{prefix}-{case}-seal{'' if plan.seals == 1 else k}" for k in range(plan.seals)]
        numbers = [f"{prefix}-{i:02d}-{k}".upper() for k in range(plan.seals)]
        for seal_id, number in zip(seal_ids, numbers, strict=True):
            events = [PlannedSealEvent(departure_ms - SEAL_ARMED_BEFORE_MS, "armed"),
                      PlannedSealEvent(opened_ms, "opened"), *plan.extra_events]
            reported = f"{number}X" if plan.undeclared else number
            self.scenario.devices.append(ESeal(Firmware(seal_id, "seal"), reported, truck, events, plan.battery))
        references = [mrn(prefix, i * 10 + k) for k in range(plan.shipments)]
        vehicle = f"UAX {i:03d}{'C' if plan.shipments > 1 else 'A'}"
        for k, reference in enumerate(references):
            mine = seal_ids if plan.shipments == 1 else [seal_ids[k]]
            declared = numbers if plan.shipments == 1 else [numbers[k]]
            self.scenario.shipments.append(ShipmentSpec(
                reference, self.route_specs[lane].name, tracker_id, tuple(mine), plan.offices[0],
                plan.offices[-1], departure_ms - 60_000, truck.arrival_ms + DEADLINE_AFTER_ARRIVAL_MS,
                offices_of_transit=plan.offices[1:-1], seal_numbers=tuple(declared), vehicle=vehicle,
                released_at_ms=plan.released_at_ms or truck.arrival_ms))
        if plan.inspection is not None:
            self.scenario.inspections.append(PlannedInspection(references[0], *plan.inspection))
        self.expect(case, lane, plan, tracker_id, seal_ids, references)
        self.scenario.end_ms = max(self.scenario.end_ms, opened_ms + 300_000)

    def expect(self, case: str, lane: str, plan: _Plan, tracker_id: str, seal_ids: list[str],
               references: list[str]) -> None:
        truck, interval = plan.truck, self.interval_ms
        path = Path.of(truck)
        post = LANES[lane].post
        arrivals: dict[str, int] = {}
        for reference in references:
            arrivals = self.milestones(reference, plan.offices, path, post)
        alerts = self.scenario.expected
        if case == "bypass":
            crossed = path.crossings(post.boundary)
            alerts.append(ExpectedAlert("border_bypass", tracker_id, min(crossed) - CROSSING_SLACK_MS,
                                        max(crossed) + interval + CROSSING_SLACK_MS, late=False,
                                        detail={"from": post.sides[0].country, "to": post.sides[1].country}))
            alerts.append(self.deviation(truck, tracker_id, None))
            reached = plan.offices[-1]
            for position in (1, 2):
                office = plan.offices[position]
                alerts.append(ExpectedAlert("office_skipped", tracker_id, *self.arrival_window(arrivals[reached]),
                                            late=False, detail={"office": office, "position": position,
                                                                "reached": reached}))
        elif case == "skipped-office":
            reached = plan.offices[2]
            alerts.append(ExpectedAlert("office_skipped", tracker_id, *self.arrival_window(arrivals[reached]),
                                        late=False, detail={"office": SKIPPED_OFFICE, "position": 1,
                                                            "reached": reached}))
        elif case == "long-dwell":
            # Started when the truck arrived at the post (docs/alerts.md).
            side = post.sides[0]
            alerts.append(ExpectedAlert("border_dwell", tracker_id, *self.arrival_window(arrivals[plan.offices[1]]),
                                        late=False, detail={"office": side.office_code, "position": 1,
                                                            "limit_s": side.dwell_limit_s}))
        elif case == "undeclared-seal":
            armed_ms = truck.departure_ms - SEAL_ARMED_BEFORE_MS
            alerts.append(ExpectedAlert("seal_mismatch", seal_ids[0], armed_ms, armed_ms, late=False,
                                        detail={"seal_number": f"{self.number(references[0])}X"}))
        elif case == "breach-before-release":
            opened_ms = truck.arrival_ms + SEAL_OPENED_AFTER_MS
            alerts.append(ExpectedAlert("seal_breach", seal_ids[0], opened_ms, opened_ms, late=False,
                                        open_at_end=True))
        elif case == "consolidated":
            alerts.extend(self.deviation(truck, tracker_id, r) for r in references)
        elif case == "gap-detour":
            off = plan.off[0]
            # From the last fix before the tracker went off (a dropout may have lost one or two).
            alerts.append(ExpectedAlert("suspicious_gap", tracker_id, off.start_ms - 3 * interval, off.start_ms,
                                        late=False))
        elif case == "jamming":
            jammed = plan.outages[0]
            alerts.append(ExpectedAlert("gps_jamming", tracker_id, jammed.start_ms - 3 * interval, jammed.start_ms,
                                        late=False))
        elif case == "u-turn":
            # Started at the furthest point reached (docs/alerts.md): the fix nearest the turn.
            turned_ms = truck.departure_ms + round(truck.reversals[0].start_s * 1000)
            alerts.append(ExpectedAlert("route_reversal", tracker_id, turned_ms - interval - 1000,
                                        turned_ms + interval + 1000, late=False))
        elif case == "seal-low-battery":
            (low,) = [e for e in plan.extra_events if e.event == "low_battery"]
            alerts.append(ExpectedAlert("low_battery", seal_ids[0], low.at_ms, low.at_ms, late=False,
                                        open_at_end=True))
        elif case == "inspection":
            opened = plan.extra_events[0].at_ms
            self.scenario.milestones.append(ExpectedMilestone(references[0], "inspection_opening", plan.offices[2],
                                                              opened, opened))

    def number(self, reference: str) -> str:
        (spec,) = [s for s in self.scenario.shipments if s.reference == reference]
        return spec.seal_numbers[0]

    def deviation(self, truck: Truck, tracker_id: str, reference: str | None) -> ExpectedAlert:
        crossed = truck.beyond_ms(truck.detours[0], CORRIDOR_M)
        return ExpectedAlert("route_deviation", tracker_id, math.floor(crossed - self.interval_ms),
                             math.ceil(crossed + self.interval_ms), late=False, reference=reference)

    def arrival_window(self, first_inside_ms: int) -> tuple[int, int]:
        """Where an alert raised on arrival starts: the first fix inside, or its confirmation."""
        return first_inside_ms - 1000, first_inside_ms + round(OFFICE_ENTER_S * 1000) + 2 * self.interval_ms

    def milestones(self, reference: str, offices: tuple[str, ...], path: Path, post: BorderPost) -> dict[str, int]:
        """Expect the shipment's arrivals and departures at every office of its itinerary the
        truck enters (but arrival at the office it starts in) and its border crossing; return
        the arrival times (first sample inside) by office code."""
        interval, out = self.interval_ms, self.scenario.milestones
        arrivals: dict[str, int] = {}
        for position, code in enumerate(offices):
            zone = self.zones.get(code)
            spans = path.spans_inside(zone.ring) if zone is not None else []
            for first, last in spans:
                arrivals.setdefault(code, first)
                if first > path.t[0]:
                    out.append(ExpectedMilestone(reference, "arrived", code, first - 1000, first + 2 * interval,
                                                 {"position": position}))
                if last < path.t[-1]:
                    out.append(ExpectedMilestone(reference, "departed", code, last - 2 * interval, last + 1000,
                                                 {"position": position}))
        crossed = path.crossings(post.boundary)
        if crossed:
            out.append(ExpectedMilestone(reference, "border_crossed", None, min(crossed) - CROSSING_SLACK_MS,
                                         max(crossed) + interval + CROSSING_SLACK_MS,
                                         {"from": post.sides[0].country, "to": post.sides[1].country}))
        return arrivals


def transit_ground_truth(start_ms: int, prefix: str = "tt", interval_s: float = 15.0, seed: int = 13) -> Scenario:
    """One truck per case of ``CASES``, departing 5 min apart from ``start_ms`` + 15 min;
    about 5 hours in all (the long dwell is the longest).

    Device ids are ``{prefix}-{case}-trk`` and ``{prefix}-{case}-seal`` (the consolidated
    truck's seals ``-seal0`` .. ``-seal2``, one per shipment). Seals report declared numbers
    ``{PREFIX}-{i}-{k}`` (the undeclared-seal case: with an ``X`` appended). Every shipment is
    released on arrival but the breach case's, an hour after its seal opened.
    """
    builder = _Builder(start_ms, prefix, interval_s, seed)
    for i, case in enumerate(CASES):
        departure_ms = start_ms + FIRST_DEPARTURE_MS + i * DEPARTURE_STAGGER_MS
        builder.add(i, case, builder.plan(case, departure_ms))
    return builder.scenario


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")



# The Northern Corridor's posts, in its direction (Mombasa -> Kigali).
NORTHERN_POSTS = (MALABA, KATUNA)


def border_corridor(start_ms: int, duration_s: float, trucks: int = 40, prefix: str = "corridor",
                    interval_s: float = 30.0, seed: int = 5) -> Scenario:
    """``quiet_fleet`` on the Northern Corridor with its border posts: Malaba and Katuna/Gatuna
    as ``border_post`` zones (which authorise the trucks' customs stops there) and every
    shipment's offices of transit the posts whose boundary its truck has yet to cross at
    ``start_ms`` (a truck already past a post when the run starts is not expected there).

    No alert is due but ``border_dwell`` where a truck's customs stop (45 to 150 min, as
    ``build_fleet`` draws it) outlasts the post's limit: the demo's Time Release figures come
    from these trucks' milestones.
    """
    scenario = quiet_fleet(start_ms, duration_s, trucks, prefix=prefix, interval_s=interval_s, seed=seed)
    forward = RouteLine.from_corridor(NORTHERN_CORRIDOR)
    posts = [z for post in NORTHERN_POSTS for z in post_zones(prefix, forward, post)]
    border_stops = {f"{prefix}-stop-{_slug(name)}" for name in NORTHERN_CORRIDOR.borders}
    scenario.zones = [z for z in scenario.zones if z.name not in border_stops] + posts
    scenario.routes = [dataclasses.replace(r, stop_zones=tuple(z for z in r.stop_zones if z not in border_stops))
                       for r in scenario.routes]
    ahead = {sh.tracker_id: sh for sh in scenario.shipments}
    trucks_by_tracker = {d.device_id: d.truck for d in scenario.devices if isinstance(d, Tracker)}
    scenario.shipments = [dataclasses.replace(sh, offices_of_transit=_posts_ahead(trucks_by_tracker[t], start_ms))
                          for t, sh in ahead.items()]
    scenario.name = "border-corridor"
    return scenario


def _posts_ahead(truck: Truck, start_ms: int) -> tuple[str, ...]:
    """Office codes of the Northern Corridor's posts the truck has yet to reach at ``start_ms``,
    in its order of travel."""
    here, _, _ = truck.chainage_at((start_ms - truck.departure_ms) / 1000)
    at = {post.name: truck.route.chainage_of(post.crossing.lat, post.crossing.lon) for post in NORTHERN_POSTS}
    codes: list[str] = []
    for post in sorted(NORTHERN_POSTS, key=lambda p: at[p.name]):
        reverse = at[NORTHERN_POSTS[-1].name] < at[NORTHERN_POSTS[0].name]  # driving Kigali -> Mombasa
        if at[post.name] > here:  # not across yet (a truck inside the post's zone then still crosses there)
            codes.extend(side.office_code for side in (post.sides[::-1] if reverse else post.sides))
    return tuple(codes)
