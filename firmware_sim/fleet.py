"""Build a fleet of trucks with trackers and e-seals on a corridor."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from firmware_sim.corridors import Corridor
from firmware_sim.devices import ESeal, GpsNoise, PlannedSealEvent, Tracker, Truck
from firmware_sim.firmware import Firmware, Gap
from firmware_sim.motion import Motion, Stop
from firmware_sim.route import RouteLine


@dataclass(frozen=True)
class FleetSpec:
    trucks: int = 20
    interval_s: float = 15.0
    seals_per_truck: int = 1
    noise: GpsNoise = field(default_factory=GpsNoise)
    # Per-truck receivers: 2DRMS (metres) drawn from this range; None: noise.sigma_m for all.
    noise_2drms_m: tuple[float, float] | None = None
    # Coverage gaps per truck and their length range (minutes).
    gaps_per_truck: int = 1
    gap_minutes: tuple[float, float] = (5.0, 45.0)
    backlog_newest_first: bool = False
    prefix: str = "sim"
    seed: int = 7


def build_fleet(corridor: Corridor, spec: FleetSpec, start_ms: int, duration_s: float,
                routes: tuple[RouteLine, RouteLine] | None = None) -> list[Tracker | ESeal]:
    """Trucks spread over the corridor at ``start_ms``: some mid-trip, some departing later.

    Even-numbered trucks drive ``routes[0]`` (the corridor's direction), odd ones
    ``routes[1]`` (reverse); both are made from ``corridor`` unless given.
    """
    rng = random.Random(spec.seed)
    if routes is None:
        routes = (RouteLine.from_corridor(corridor), RouteLine.from_corridor(corridor, reverse=True))
    devices: list[Tracker | ESeal] = []
    for i in range(spec.trucks):
        route = routes[i % 2]
        motion = _motion(route, corridor, rng)
        # Departures from one trip-length before the start to the end of the run,
        # so the road is full from the first minute.
        departure_ms = start_ms + int(rng.uniform(-motion.duration_s, duration_s * 0.8) * 1000)
        truck = Truck(route, motion, departure_ms)
        tracker_id = f"{spec.prefix}-trk-{i:05d}"
        gaps = _gaps(rng, spec, max(start_ms, departure_ms), truck.arrival_ms)
        firmware = Firmware(tracker_id, "pos", gaps, backlog_newest_first=spec.backlog_newest_first)
        noise = spec.noise
        if spec.noise_2drms_m is not None:
            noise = replace(noise, sigma_m=GpsNoise.from_2drms(rng.uniform(*spec.noise_2drms_m)).sigma_m)
        devices.append(Tracker(firmware, truck, spec.interval_s, noise, random.Random(rng.random()),
                               power_on_ms=start_ms))
        for k in range(spec.seals_per_truck):
            seal_id = f"{spec.prefix}-seal-{i:05d}-{k}"
            planned = [PlannedSealEvent(departure_ms - 600_000, "armed"),
                       PlannedSealEvent(truck.arrival_ms + 900_000, "opened")]
            events = [e for e in planned if e.at_ms >= start_ms]  # before the run: already sent
            devices.append(ESeal(Firmware(seal_id, "seal", gaps), seal_id, truck, events))
    return devices


def _motion(route: RouteLine, corridor: Corridor, rng: random.Random) -> Motion:
    stops = []
    for name in (*corridor.rest_areas, *corridor.borders):
        if name in corridor.borders:
            duration = rng.uniform(45, 150) * 60  # customs clearance at the border post
        elif rng.random() < 0.6:
            duration = rng.uniform(20, 45) * 60
        else:
            continue
        stops.append(Stop(route.stops[name], duration))
    stops.sort(key=lambda st: st.at_m)
    cruise = [rng.uniform(60, 85) / 3.6 for _ in range(len(stops) + 1)]
    return Motion(route.length_m, cruise, stops)


def _gaps(rng: random.Random, spec: FleetSpec, from_ms: int, to_ms: int) -> tuple[Gap, ...]:
    gaps = []
    for _ in range(spec.gaps_per_truck):
        if to_ms - from_ms < 3_600_000:
            break
        start = rng.randint(from_ms, to_ms - 3_600_000)
        length = int(rng.uniform(*spec.gap_minutes) * 60_000)
        gaps.append(Gap(start, start + length))
    return tuple(sorted(gaps, key=lambda g: g.start_ms))
