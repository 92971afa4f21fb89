"""Device acks: per device, the highest seq such that every seq from 0 up to it
is durably stored (as a record or a dead letter).

Backlog arrives out of order, so seqs above a gap wait in ``pending`` until the
gap fills. Plans are computed before a commit and applied only after it, so a
failed commit never acknowledges anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class DeviceAckState:
    watermark: int = -1  # -1: nothing stored yet (seq counters start at 0)
    pending: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class AckPlan:
    """New state for devices touched by a batch, and the watermarks that moved."""

    states: dict[str, DeviceAckState]
    advanced: dict[str, int]


class AckTracker:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceAckState] = {}

    def unknown(self, device_ids: Iterable[str]) -> list[str]:
        """Devices whose stored state must be loaded before planning."""
        return sorted({d for d in device_ids if d not in self._devices})

    def load(self, device_id: str, watermark: int, stored_above: Iterable[int]) -> None:
        """Restore a device from the database: its acked seq and stored seqs above it."""
        state = DeviceAckState(watermark, {s for s in stored_above if s > watermark})
        self._devices[device_id] = _advance(state)

    def forget(self, device_ids: Iterable[str]) -> None:
        """Drop devices whose stored state another worker changed: they are loaded again."""
        for device_id in device_ids:
            self._devices.pop(device_id, None)

    def watermark(self, device_id: str) -> int:
        return self._devices[device_id].watermark

    def seen(self, device_id: str, seq: int) -> bool:
        """Whether ``seq`` of a loaded device is already stored or dead-lettered (acked or pending)."""
        state = self._devices.get(device_id)
        return state is not None and (seq <= state.watermark or seq in state.pending)

    def plan(self, seqs: Mapping[str, Iterable[int]]) -> AckPlan:
        """What committing ``seqs`` (device -> stored seqs) would acknowledge."""
        states: dict[str, DeviceAckState] = {}
        advanced: dict[str, int] = {}
        for device_id, device_seqs in seqs.items():
            old = self._devices[device_id]
            pending = old.pending | {s for s in device_seqs if s > old.watermark}
            new = _advance(DeviceAckState(old.watermark, pending))
            states[device_id] = new
            if new.watermark > old.watermark:
                advanced[device_id] = new.watermark
        return AckPlan(states, advanced)

    def apply(self, plan: AckPlan) -> None:
        self._devices.update(plan.states)


def _advance(state: DeviceAckState) -> DeviceAckState:
    watermark, pending = state.watermark, state.pending
    while watermark + 1 in pending:
        watermark += 1
        pending.discard(watermark)
    return DeviceAckState(watermark, pending)
