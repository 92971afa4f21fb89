"""The warm-up world goes through the engine's rules, so that a service's start compiles them
all (numba compiles a kernel whole, but only when it is first called)."""

from __future__ import annotations

from geofence.engine import evaluate
from geofence.rules import Rules
from geofence.state import DeviceState
from geofence.warmup import tiny_world


def test_the_warm_up_world_raises_every_kind_of_transition() -> None:
    network, binding, track = tiny_world()
    transitions, _ = evaluate(network, Rules(), {"w": (binding, DeviceState(shipment_id=1), track)})
    kinds = {(t.event, t.type) for t in transitions}
    assert {("milestone", "arrived"), ("milestone", "departed"), ("milestone", "border_crossed"),
            ("opened", "border_dwell"), ("opened", "route_deviation"), ("opened", "unscheduled_stop"),
            ("opened", "route_reversal"), ("opened", "suspicious_gap")} <= kinds
    assert {t.country for t in transitions} == {"AAA", "BBB"}

