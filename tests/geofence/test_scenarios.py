"""The engine on the simulator's scenarios, offline: the records the devices
publish (noise, jumps, dropouts, reversed backlog) against the ground truth.
The same scenario runs through broker, ingest and database in
tests/test_end_to_end.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from firmware_sim.scenarios import Scenario, deliveries, ground_truth, quiet_fleet
from geofence.engine import REARM_EVENTS, Binding, Track, evaluate, is_breach
from geofence.geometry import Network, RouteInput, ZoneInput
from geofence.rules import Rules
from geofence.state import DeviceState
from protocol.records import Fix, SealEvent

T0 = 1_790_000_000_000


@dataclass(frozen=True)
class Raised:
    type: str
    device_id: str
    started_ms: int
    crossed_ms: int
    late: bool


def network_of(scenario: Scenario) -> tuple[Network, dict[str, Binding], dict[str, Binding]]:
    """The scenario's geometry, and bindings of trackers and seals by device id."""
    zone_keys = {z.name: i for i, z in enumerate(scenario.zones)}
    zones = [ZoneInput(i, [([p[0] for p in z.ring], [p[1] for p in z.ring])], office=z.kind == "office")
             for i, z in enumerate(scenario.zones)]
    routes = [RouteInput(i, [p[0] for p in r.line], [p[1] for p in r.line], r.corridor_m,
                         tuple(zone_keys[n] for n in r.stop_zones)) for i, r in enumerate(scenario.routes)]
    network = Network.build(routes, zones)
    route_index = {r.name: i for i, r in enumerate(scenario.routes)}
    office = {z.office_code: zone_keys[z.name] for z in scenario.zones if z.office_code}
    trackers: dict[str, Binding] = {}
    seals: dict[str, Binding] = {}
    for i, s in enumerate(scenario.shipments):
        binding = Binding(i, route_index[s.route], office[s.office_of_destination], s.departed_at_ms)
        trackers[s.tracker_id] = binding
        seals.update(dict.fromkeys(s.seal_ids, binding))
    return network, trackers, seals


def raised(scenario: Scenario) -> list[Raised]:
    """Every alert the published records raise, each tracker's whole track in one evaluation."""
    network, trackers, seals = network_of(scenario)
    tracks: dict[str, tuple[list[int], list[float], list[float], list[bool]]] = {}
    seal_events: list[tuple[str, SealEvent, bool]] = []
    for delivery in deliveries(scenario):
        backlog = len(delivery.records) > 1
        for record in delivery.records:
            if isinstance(record, Fix):
                t, lon, lat, flags = tracks.setdefault(delivery.device_id, ([], [], [], []))
                t.append(record.ts)
                lon.append(record.lon)
                lat.append(record.lat)
                flags.append(backlog)
            else:
                seal_events.append((delivery.device_id, record, backlog))
    items = {d: (trackers[d], DeviceState(shipment_id=trackers[d].shipment_id), Track.of(*tracks[d]))
             for d in tracks}
    transitions, _ = evaluate(network, Rules(), items)
    found = [Raised(tr.type, tr.device_id, tr.started_ms, tr.crossed_ms, tr.late)
             for tr in transitions if tr.event == "opened" and tr.started_ms is not None]
    breached: set[str] = set()
    for device_id, event, backlog in sorted(seal_events, key=lambda e: e[1].ts):
        binding = seals[device_id]
        if event.ts < binding.departed_ms:
            continue
        if event.event in REARM_EVENTS:
            continue  # only an officer ends a breach: the seal's own re-arm does not
        if device_id not in breached and is_breach(network, binding, event.event, event.lon, event.lat):
            breached.add(device_id)
            found.append(Raised("seal_breach", device_id, event.ts, event.ts, backlog))
    return found


def test_ground_truth_precision_and_recall_are_one() -> None:
    scenario = ground_truth(T0)
    found = raised(scenario)
    assert sorted((r.type, r.device_id) for r in found) == sorted((e.type, e.device_id) for e in scenario.expected)
    interval_ms = scenario.interval_s * 1000
    thresholds = {"route_deviation": 60_000, "unscheduled_stop": 900_000, "seal_breach": 0}
    for r in found:
        (e,) = [e for e in scenario.expected if (e.type, e.device_id) == (r.type, r.device_id)]
        assert e.start_from_ms <= r.started_ms <= e.start_to_ms, (r, e)
        assert r.late == e.late, r
        # Opened within one reporting interval of the threshold being crossed in fix time.
        assert 0 <= r.crossed_ms - (r.started_ms + thresholds[r.type]) <= interval_ms, r


@pytest.mark.parametrize("seed", [5, 6])
def test_500_trucks_without_incidents_raise_nothing(seed: int) -> None:
    scenario = quiet_fleet(T0, 4 * 3600, trucks=500, seed=seed)
    assert len(scenario.shipments) == 500
    assert raised(scenario) == []
