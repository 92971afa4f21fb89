"""Scenarios with ground truth: devices plus the routes, zones and shipments a
geofence engine checks them against, and the alerts it must raise.

``ground_truth`` stages one truck per alert case on a short corridor;
``quiet_fleet`` is a busy corridor on which nothing may raise an alert.
``deliveries`` and ``records`` play a scenario offline (no broker), the way
the runner would publish it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from firmware_sim.corridors import MOMBASA_VOI, NORTHERN_CORRIDOR, Place
from firmware_sim.devices import Attacker, Device, ESeal, Forge, GpsNoise, PlannedSealEvent, Replay, Tracker, Truck
from firmware_sim.firmware import Firmware, Gap, Record
from firmware_sim.fleet import FleetSpec, build_fleet
from firmware_sim.motion import BRAKE_MS2, Detour, Motion, Stop
from firmware_sim.route import RouteLine, moved
from protocol.records import Fix, SealEvent, Status

# Receivers of every scenario truck: 95 % of fixes within 15-30 m (drawn per
# truck), a 300 m multipath jump in 1 % of fixes, no fix at all in 2 %.
TWO_DRMS_M = (15.0, 30.0)
JUMP_PROBABILITY = 0.01
JUMP_M = 300.0
DROPOUT_PROBABILITY = 0.02

OFFICE_HALF_SIDE_M = 1000.0
STOP_ZONE_HALF_SIDE_M = 400.0
SEAL_ARMED_BEFORE_MS = 600_000  # before departure (as in build_fleet)
SEAL_OPENED_AFTER_MS = 900_000  # after arrival, at the destination office (as in build_fleet)
STOP_DIAMETER_M = 150.0  # the engine's unscheduled-stop diameter
DEADLINE_AFTER_ARRIVAL_MS = 24 * 3_600_000  # no trip here is ever overdue

# One truck each, in this order of departure.
CASES = ("on-route", "detour", "authorised-stop", "unauthorised-stop", "seal-breach", "seal-at-destination",
         "gap-stop")
# Where the cases happen on Mombasa-Voi (metres along the route, ~143 km long;
# Mariakani is at ~29.5 km): all at least 25 km from every zone.
DETOUR_AT_M = 55_000.0
DETOUR_RAMP_S, DETOUR_HOLD_S, DETOUR_OFFSET_M = 120.0, 600.0, 2000.0
BREACH_AT_M = 85_000.0
UNAUTHORISED_STOP_AT_M = 100_000.0
GAP_STOP_AT_M = 70_000.0
STOP_S = 1800.0
GAP_S = 7200.0
FIRST_DEPARTURE_MS = 15 * 60_000  # after the start, so that the seals are armed within the run
DEPARTURE_STAGGER_MS = 5 * 60_000
CRUISE_KMH = (70.0, 80.0)


@dataclass(frozen=True)
class ZoneSpec:
    name: str
    kind: Literal["stop", "office", "border_post", "weighbridge", "inspection"]
    ring: tuple[tuple[float, float], ...]  # closed polygon ring, (lon, lat) GeoJSON order, first == last
    office_code: str | None = None  # set for kind == "office" or "border_post"
    country: str | None = None  # ISO 3166-1 alpha-3
    dwell_limit_s: float | None = None  # a border post's border_dwell threshold (medium risk), seconds


@dataclass(frozen=True)
class RouteSpec:
    name: str
    line: tuple[tuple[float, float], ...]  # (lon, lat) vertices the trucks follow
    corridor_m: float = 500.0  # half-width, metres
    stop_zones: tuple[str, ...] = ()  # ZoneSpec names authorised for stops on this route


@dataclass(frozen=True)
class ShipmentSpec:
    reference: str  # MRN-like, e.g. "26KE0000000000001"
    route: str  # RouteSpec name
    tracker_id: str
    seal_ids: tuple[str, ...]  # e-seal device ids (device id == seal_id in the simulator)
    office_of_departure: str  # ZoneSpec.office_code
    office_of_destination: str
    departed_at_ms: int
    deadline_ms: int
    offices_of_transit: tuple[str, ...] = ()  # office codes, in the order the truck passes them
    seal_numbers: tuple[str, ...] = ()  # declared seal numbers (what the e-seals report as seal_id)
    vehicle: str | None = None  # plate; shipments consolidated on one truck share it (and the tracker)
    released_at_ms: int | None = None  # when an officer releases the goods at destination (epoch ms)
    operator: str | None = None  # declarant or carrier (the risk scoring reads its record)
    goods: tuple[tuple[str, str], ...] = ()  # (HS code, description) per goods item
    risk_override: tuple[str, str] | None = None  # (level, reason) imposed after registration


@dataclass(frozen=True)
class ExpectedAlert:
    type: str
    device_id: str
    start_from_ms: int  # the alert's started_at must fall in [start_from_ms, start_to_ms]
    start_to_ms: int
    late: bool
    # True: still open (ended_at null) when the run is over, whatever the device sent after it.
    open_at_end: bool = False
    # The shipment (reference) it is raised on; None: the one the device belongs to (a consolidated
    # truck's tracker belongs to several: one alert each).
    reference: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # what its detail must contain


@dataclass(frozen=True)
class ExpectedMilestone:
    """A timeline event (shipment_events) the engine must record for shipment ``reference``."""

    reference: str
    kind: Literal["arrived", "departed", "border_crossed", "inspection_opening"]
    office_code: str | None  # None for border_crossed
    from_ms: int  # its time (fix time) must fall in [from_ms, to_ms]
    to_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)  # what its detail must contain


@dataclass(frozen=True)
class PlannedInspection:
    """An officer authorises an inspection of shipment ``reference`` at ``office_code`` at ``at_ms``."""

    reference: str
    office_code: str
    at_ms: int


@dataclass(frozen=True)
class ExpectedDeadLetter:
    """A record ingest must refuse: kept in dead letters with a reason containing ``reason``."""

    device_id: str
    seq: int
    reason: str


@dataclass
class Scenario:
    name: str
    devices: list[Device]  # Tracker | ESeal objects, as build_fleet returns
    zones: list[ZoneSpec]
    routes: list[RouteSpec]
    shipments: list[ShipmentSpec]
    expected: list[ExpectedAlert]
    start_ms: int
    end_ms: int
    interval_s: float
    dead_letters: list[ExpectedDeadLetter] = field(default_factory=list)
    milestones: list[ExpectedMilestone] = field(default_factory=list)
    inspections: list[PlannedInspection] = field(default_factory=list)


def ground_truth(start_ms: int, prefix: str = "gt", interval_s: float = 15.0, seed: int = 11) -> Scenario:
    """One truck per case of ``CASES`` from Mombasa to Voi, departing 5 min apart
    from ``start_ms`` + 15 min; about 3.5 hours in all.

    Device ids are ``{prefix}-{case}-trk`` and ``{prefix}-{case}-seal``. Only the
    gap-stop truck has a coverage gap (2 h, its backlog sent newest first), with
    its unauthorised stop in the middle of it.

    The windows assume the fix that starts an alert is recorded as it should
    be. About one seed in ten breaks that: a dropout of the first fix outside
    the corridor, or two jumps in a row splitting a stop. The default seed is
    checked on the published records by tests/firmware_sim/test_scenarios.py.
    """
    rng = random.Random(seed)
    route = RouteLine.from_corridor(MOMBASA_VOI)
    mombasa, mariakani, voi = MOMBASA_VOI.waypoints
    rest_zone = _zone(prefix, mariakani)
    zones = [_office(prefix, mombasa, "KEMBA"), _office(prefix, voi, "KEVOI"), rest_zone]
    route_spec = RouteSpec(f"{prefix}-mombasa-voi", line_of(route), stop_zones=(rest_zone.name,))
    interval_ms = round(interval_s * 1000)
    scenario = Scenario("ground-truth", [], zones, [route_spec], [], [], start_ms, start_ms, interval_s)
    stop_at = {"authorised-stop": route.stops[mariakani.name], "unauthorised-stop": UNAUTHORISED_STOP_AT_M,
               "gap-stop": GAP_STOP_AT_M}
    for i, case in enumerate(CASES):
        departure_ms = start_ms + FIRST_DEPARTURE_MS + i * DEPARTURE_STAGGER_MS
        stops = [Stop(stop_at[case], STOP_S)] if case in stop_at else []
        motion = Motion(route.length_m, [rng.uniform(*CRUISE_KMH) / 3.6 for _ in range(len(stops) + 1)], stops)
        detours = ((Detour(motion.time_at(DETOUR_AT_M), DETOUR_RAMP_S, DETOUR_HOLD_S, DETOUR_OFFSET_M),)
                   if case == "detour" else ())
        truck = Truck(route, motion, departure_ms, detours)
        tracker_id, seal_id = f"{prefix}-{case}-trk", f"{prefix}-{case}-seal"
        events = [PlannedSealEvent(departure_ms - SEAL_ARMED_BEFORE_MS, "armed"),
                  PlannedSealEvent(truck.arrival_ms + SEAL_OPENED_AFTER_MS, "opened")]
        gaps: tuple[Gap, ...] = ()
        if case == "detour":
            crossed = truck.beyond_ms(truck.detours[0], route_spec.corridor_m)
            scenario.expected.append(ExpectedAlert("route_deviation", tracker_id, math.floor(crossed - interval_ms),
                                                   math.ceil(crossed + interval_ms), late=False))
        elif case in ("unauthorised-stop", "gap-stop"):
            halted = truck.halt_ms(stops[0])
            if case == "gap-stop":
                gap_start = math.floor(halted - (GAP_S - STOP_S) / 2 * 1000)
                gaps = (Gap(gap_start, gap_start + round(GAP_S * 1000)),)
            scenario.expected.append(ExpectedAlert("unscheduled_stop", tracker_id, *_stop_window(halted, interval_ms),
                                                   late=bool(gaps)))
        elif case == "seal-breach":
            # The seal reports "opened" again at the destination: harmless, and every seal does.
            opened_ms = departure_ms + round(motion.time_at(BREACH_AT_M) * 1000)
            events.append(PlannedSealEvent(opened_ms, "opened"))
            # Still open after the seal opens again at the destination: only an officer ends a breach.
            scenario.expected.append(ExpectedAlert("seal_breach", seal_id, opened_ms, opened_ms, late=False,
                                                   open_at_end=True))
        noise = GpsNoise.from_2drms(rng.uniform(*TWO_DRMS_M), JUMP_PROBABILITY, JUMP_M, DROPOUT_PROBABILITY)
        firmware = Firmware(tracker_id, "pos", gaps, backlog_newest_first=True)
        scenario.devices.append(Tracker(firmware, truck, interval_s, noise, random.Random(rng.random())))
        scenario.devices.append(ESeal(Firmware(seal_id, "seal", gaps, backlog_newest_first=True), seal_id, truck,
                                      events))
        # Released on arrival: the opening at the destination comes after it (normal, docs/alerts.md).
        scenario.shipments.append(ShipmentSpec(mrn(prefix, i), route_spec.name, tracker_id, (seal_id,),
                                               "KEMBA", "KEVOI", departure_ms - 60_000,
                                               truck.arrival_ms + DEADLINE_AFTER_ARRIVAL_MS,
                                               released_at_ms=truck.arrival_ms))
        scenario.end_ms = max(scenario.end_ms, truck.arrival_ms + SEAL_OPENED_AFTER_MS + 300_000)
    return scenario


def _stop_window(halted_ms: float, interval_ms: int) -> tuple[int, int]:
    """Where the first fix of a stop that begins at ``halted_ms`` can be (epoch ms)."""
    # The first fix at rest comes less than an interval after the halt. One taken
    # while braking already counts when the truck was within the stop diameter of
    # where it halts: up to sqrt(2 d / a) = 22 s before the halt, more than a
    # 15 s interval, so the window opens that much earlier.
    braking_ms = math.sqrt(2 * STOP_DIAMETER_M / BRAKE_MS2) * 1000
    return math.floor(halted_ms - max(interval_ms, braking_ms)), math.ceil(halted_ms + interval_ms)


FORGED_SEQ = 1_000_000  # the forger does not know the seal's counter: it picks one far ahead
FORGE_AFTER_MS = 10 * 60_000
REPLAY_AFTER_MS = 20 * 60_000
REPLAYED_FIXES = 5
TAMPER_RUN_AFTER_BREACH_MS = 40 * 60_000


def tamper(start_ms: int, prefix: str = "tamper", interval_s: float = 15.0, seed: int = 17) -> Scenario:
    """One truck from Mombasa whose seal is opened mid-route (a breach), and an intruder
    holding both devices' broker credentials: 10 min after the breach it forges an
    ``armed`` event (signed with a key that is not the seal's), 20 min after it replays
    the seal's first event (its captured ``armed``, same seq, new ts) and the tracker's
    first fixes (same seqs, new ts). The devices sign (their keys come from provisioning:
    the seal must sign, the tracker may).

    What must happen: the breach stays open (an ``armed`` event ends none, let alone a
    forged one); ``device_tamper`` opens on the seal and on the tracker; the forged and
    replayed records are in dead letters with the reason."""
    rng = random.Random(seed)
    route = RouteLine.from_corridor(MOMBASA_VOI)
    mombasa, _mariakani, voi = MOMBASA_VOI.waypoints
    zones = [_office(prefix, mombasa, "KEMBA"), _office(prefix, voi, "KEVOI")]
    route_spec = RouteSpec(f"{prefix}-mombasa-voi", line_of(route))
    departure_ms = start_ms + FIRST_DEPARTURE_MS
    motion = Motion(route.length_m, [rng.uniform(*CRUISE_KMH) / 3.6], [])
    truck = Truck(route, motion, departure_ms)
    tracker_id, seal_id = f"{prefix}-trk", f"{prefix}-seal"
    opened_ms = departure_ms + round(motion.time_at(BREACH_AT_M) * 1000)
    forged_ms, replay_ms = opened_ms + FORGE_AFTER_MS, opened_ms + REPLAY_AFTER_MS
    lat, lon, _, _ = truck.at(forged_ms)
    forged = SealEvent(seq=FORGED_SEQ, ts=forged_ms, seal_id=seal_id, event="armed", lat=round(lat, 7),
                       lon=round(lon, 7), v=1, sig=_forged_signature(rng))
    seal = ESeal(Firmware(seal_id, "seal"), seal_id, truck, [
        PlannedSealEvent(departure_ms - SEAL_ARMED_BEFORE_MS, "armed"), PlannedSealEvent(opened_ms, "opened")])
    shift_ms = replay_ms - (departure_ms - SEAL_ARMED_BEFORE_MS)
    noise = GpsNoise.from_2drms(20.0)
    tracker = Tracker(Firmware(tracker_id, "pos"), truck, interval_s, noise, random.Random(rng.random()))
    tracker_shift_ms = replay_ms - departure_ms
    devices: list[Device] = [
        Attacker(tracker, [Replay(replay_ms, REPLAYED_FIXES, tracker_shift_ms)]),
        Attacker(seal, [Forge(forged_ms, forged), Replay(replay_ms, 1, shift_ms, keep_sig=True)]),
    ]
    shipment = ShipmentSpec(mrn(prefix, 0), route_spec.name, tracker_id, (seal_id,), "KEMBA", "KEVOI",
                            departure_ms - 60_000, truck.arrival_ms + DEADLINE_AFTER_ARRIVAL_MS)
    expected = [
        ExpectedAlert("seal_breach", seal_id, opened_ms, opened_ms, late=False, open_at_end=True),
        ExpectedAlert("device_tamper", seal_id, forged_ms, forged_ms, late=False, open_at_end=True),
        ExpectedAlert("device_tamper", tracker_id, replay_ms, replay_ms, late=False, open_at_end=True),
    ]
    dead_letters = [
        ExpectedDeadLetter(seal_id, FORGED_SEQ, "signature does not verify"),
        ExpectedDeadLetter(seal_id, 0, "signature does not verify"),  # new ts under the old signature
        *(ExpectedDeadLetter(tracker_id, seq, "replayed record") for seq in range(REPLAYED_FIXES)),
    ]
    return Scenario("tamper", devices, zones, [route_spec], [shipment], expected, start_ms,
                    opened_ms + TAMPER_RUN_AFTER_BREACH_MS, interval_s, dead_letters)


def _forged_signature(rng: random.Random) -> str:
    """A well-formed signature under a key the intruder made up."""
    key = bytes(rng.getrandbits(8) for _ in range(32))
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest()).rstrip(b"=").decode()


OFFICE_CODES = {"Mombasa": "KEMBA", "Kigali": "RWKGL"}


def quiet_fleet(start_ms: int, duration_s: float, trucks: int = 500, prefix: str = "quiet",
                interval_s: float = 30.0, seed: int = 5) -> Scenario:
    """The Northern Corridor both ways, busy as ``build_fleet`` makes it, where every
    stop is in a stop zone and every seal opens at its destination: no alert is due.

    Every rest area and border post has a stop zone; Mombasa and Kigali have office zones.
    """
    corridor = NORTHERN_CORRIDOR
    forward, reverse = RouteLine.from_corridor(corridor), RouteLine.from_corridor(corridor, reverse=True)
    spec = FleetSpec(trucks=trucks, interval_s=interval_s, seals_per_truck=1,
                     noise=GpsNoise(jump_probability=JUMP_PROBABILITY, jump_m=JUMP_M,
                                    dropout_probability=DROPOUT_PROBABILITY),
                     noise_2drms_m=TWO_DRMS_M, gaps_per_truck=0, prefix=prefix, seed=seed)
    devices = build_fleet(corridor, spec, start_ms, duration_s, (forward, reverse))
    places = {p.name: p for p in corridor.waypoints}
    first, last = corridor.waypoints[0], corridor.waypoints[-1]
    stop_zones = [_zone(prefix, places[name]) for name in (*corridor.rest_areas, *corridor.borders)]
    zones = [_office(prefix, first, OFFICE_CODES[first.name]), _office(prefix, last, OFFICE_CODES[last.name]),
             *stop_zones]
    allowed = tuple(z.name for z in stop_zones)
    routes = {id(forward): RouteSpec(f"{prefix}-{_slug(first.name)}-{_slug(last.name)}", line_of(forward),
                                     stop_zones=allowed),
              id(reverse): RouteSpec(f"{prefix}-{_slug(last.name)}-{_slug(first.name)}", line_of(reverse),
                                     stop_zones=allowed)}
    offices = {id(forward): (OFFICE_CODES[first.name], OFFICE_CODES[last.name]),
               id(reverse): (OFFICE_CODES[last.name], OFFICE_CODES[first.name])}
    seals: dict[int, list[str]] = {}
    for device in devices:
        if isinstance(device, ESeal):
            seals.setdefault(id(device.truck), []).append(device.seal_id)
    end_ms = start_ms + round(duration_s * 1000)
    shipments = [
        ShipmentSpec(mrn(prefix, i), routes[id(d.truck.route)].name, d.device_id, tuple(seals[id(d.truck)]),
                     *offices[id(d.truck.route)], d.truck.departure_ms - 60_000,
                     d.truck.arrival_ms + DEADLINE_AFTER_ARRIVAL_MS, released_at_ms=_release_ms(d.truck, end_ms))
        for i, d in enumerate(d for d in devices if isinstance(d, Tracker))
    ]
    return Scenario("quiet-fleet", list(devices), zones, list(routes.values()), shipments, [], start_ms, end_ms,
                    interval_s)


def _release_ms(truck: Truck, end_ms: int) -> int | None:
    """Released on arrival when its seal opens within the run (normal, docs/alerts.md), else not yet:
    the registration cannot release at a time still to come."""
    return truck.arrival_ms if truck.arrival_ms + SEAL_OPENED_AFTER_MS <= end_ms else None


@dataclass(frozen=True)
class Delivery:
    """One message a device publishes: when (simulated epoch ms), and its records in payload order."""

    at_ms: int
    device_id: str
    records: tuple[Record, ...]
    statuses: tuple[Status, ...] = ()  # a status message instead (not stored, never acknowledged)


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "pos": msgspec.json.Decoder(Fix | list[Fix]),
    "seal": msgspec.json.Decoder(SealEvent | list[SealEvent]),
    "status": msgspec.json.Decoder(Status),
}


def deliveries(scenario: Scenario) -> list[Delivery]:
    """Every message the devices publish from ``start_ms`` to ``end_ms``, in time order,
    with coverage outside their gaps and each record acknowledged as soon as it
    is out (so none is resent).

    Plays copies of the devices: the scenario's own stay unplayed, ready for a run.
    """
    devices = copy.deepcopy(scenario.devices)
    heap = [(max(d.next_ms, scenario.start_ms), i) for i, d in enumerate(devices)]
    heapq.heapify(heap)
    out: list[Delivery] = []
    while heap:
        t_ms, i = heapq.heappop(heap)
        if t_ms > scenario.end_ms:
            continue
        device = devices[i]
        for message in device.tick(t_ms, can_send=True):
            decoded = _DECODERS[message.kind].decode(message.payload)
            if isinstance(decoded, Status):
                out.append(Delivery(t_ms, device.device_id, (), (decoded,)))
                continue
            records = tuple(decoded if isinstance(decoded, list) else [decoded])
            out.append(Delivery(t_ms, device.device_id, records))
            # A flush sends every unsent record at once: all below the newest are out too.
            device.firmware.on_ack(max(r.seq for r in records))
        heapq.heappush(heap, (device.next_ms, i))
    return out


def records(scenario: Scenario) -> dict[str, list[Fix | SealEvent]]:
    """Per device id, the records its device publishes in the run, in publishing order (statuses aside)."""
    out: dict[str, list[Fix | SealEvent]] = {d.device_id: [] for d in scenario.devices}
    for delivery in deliveries(scenario):
        out[delivery.device_id].extend(delivery.records)
    return out


def statuses(scenario: Scenario) -> dict[str, list[Status]]:
    """Per device id, the statuses its device publishes in the run besides its connection's own."""
    out: dict[str, list[Status]] = {d.device_id: [] for d in scenario.devices}
    for delivery in deliveries(scenario):
        out[delivery.device_id].extend(delivery.statuses)
    return out


def line_of(route: RouteLine) -> tuple[tuple[float, float], ...]:
    return tuple((float(lon), float(lat)) for lat, lon in zip(route.lat, route.lon, strict=True))


def square_around(place: Place, half_side_m: float) -> tuple[tuple[float, float], ...]:
    """Counter-clockwise closed ring (lon, lat) of a square around ``place``."""
    dlat = moved(place.lat, place.lon, half_side_m, 0.0)[0] - place.lat
    dlon = moved(place.lat, place.lon, 0.0, half_side_m)[1] - place.lon
    w, e, s, n = place.lon - dlon, place.lon + dlon, place.lat - dlat, place.lat + dlat
    return (w, s), (e, s), (e, n), (w, n), (w, s)


def _office(prefix: str, place: Place, code: str) -> ZoneSpec:
    return ZoneSpec(f"{prefix}-office-{code}", "office", square_around(place, OFFICE_HALF_SIDE_M), code)


def _zone(prefix: str, place: Place) -> ZoneSpec:
    return ZoneSpec(f"{prefix}-stop-{_slug(place.name)}", "stop", square_around(place, STOP_ZONE_HALF_SIDE_M))


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def mrn(prefix: str, i: int) -> str:
    """MRN-like (year, country, 13 digits), distinct per prefix so that runs do not collide."""
    return f"26KE{zlib.crc32(prefix.encode()) % 10**7:07d}{i:06d}"
