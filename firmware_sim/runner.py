"""Run a fleet against the broker on a simulated clock.

Simulated time runs ``speedup`` times faster than wall time and starts in the
past, so that it reaches the present exactly when the run ends: fix times are
never ahead of the real clock, which ingest would refuse.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from firmware_sim.devices import Device
from firmware_sim.link import Link

RETRY_CONNECT_MS = 5_000


@dataclass(frozen=True)
class SimClock:
    start_ms: int
    speedup: float
    wall0: float

    @classmethod
    def ending_now(cls, duration_s: float, speedup: float) -> SimClock:
        """A clock whose simulated ``duration_s`` ends at the real 'now' of the run's end."""
        wall0 = time.time()
        start_ms = int((wall0 - duration_s * (1 - 1 / speedup)) * 1000)
        return cls(start_ms, speedup, wall0)

    def now_ms(self) -> int:
        return self.start_ms + int((time.time() - self.wall0) * self.speedup * 1000)

    def wall_at(self, sim_ms: int) -> float:
        return self.wall0 + (sim_ms - self.start_ms) / 1000 / self.speedup


@dataclass
class SimStats:
    sim_ms: int = 0
    messages: int = 0
    records: int = 0
    connected: int = 0
    buffered: int = 0
    overflowed: int = 0


class Simulation:
    def __init__(self, devices: Sequence[Device], clock: SimClock, end_ms: int,
                 link_for: Callable[[str], Link]) -> None:
        self.devices = list(devices)
        self.links = [link_for(d.device_id) for d in self.devices]
        self.clock = clock
        self.end_ms = end_ms
        self.stats = SimStats(sim_ms=clock.start_ms)

    def run(self, stop: threading.Event | None = None,
            on_progress: Callable[[SimStats], None] | None = None, drain_s: float = 30.0) -> SimStats:
        """Publish until the simulated end, then wait up to ``drain_s`` (wall) for acks."""
        stop = stop or threading.Event()
        heap = [(max(d.next_ms, self.clock.start_ms), i) for i, d in enumerate(self.devices)]
        heapq.heapify(heap)
        last_report = 0.0
        while heap and not stop.is_set():
            t_ms, i = heapq.heappop(heap)
            if t_ms > self.end_ms:
                break
            delay = self.clock.wall_at(t_ms) - time.time()
            if delay > 0 and stop.wait(delay):
                break
            heapq.heappush(heap, (self._step(i, t_ms), i))
            if on_progress and time.monotonic() - last_report > 0.2:
                on_progress(self._snapshot(t_ms))
                last_report = time.monotonic()
        self._drain(stop, drain_s)
        for device, link in zip(self.devices, self.links, strict=True):
            link.close(min(self.clock.now_ms(), self.end_ms))
            self._take_acks(device, link)
        final = self._snapshot(min(self.clock.now_ms(), self.end_ms))
        if on_progress:
            on_progress(final)
        return final

    def _step(self, i: int, t_ms: int) -> int:
        """Advance device ``i`` to ``t_ms``; return when it next needs attention."""
        device, link = self.devices[i], self.links[i]
        self._take_acks(device, link)
        online = device.firmware.online(t_ms)
        if online and not link.active:
            link.connect(t_ms, device.firmware.buffered)
        elif not online and link.active:
            link.drop()
        for out in device.tick(t_ms, link.connected.is_set()):
            link.publish(out.kind, out.payload)
            self.stats.messages += 1
            self.stats.records += out.records
        if online and not link.connected.is_set():
            return min(device.next_ms, t_ms + RETRY_CONNECT_MS)
        return device.next_ms

    def _drain(self, stop: threading.Event, drain_s: float) -> None:
        deadline = time.monotonic() + drain_s
        while not stop.is_set() and time.monotonic() < deadline:
            now_ms = self.clock.now_ms()
            for device, link in zip(self.devices, self.links, strict=True):
                self._take_acks(device, link)
                # Only resend: new records would be timed after the real clock.
                if device.firmware.buffered and link.connected.is_set():
                    for out in device.firmware.flush(now_ms):
                        link.publish(out.kind, out.payload)
            if not any(d.firmware.buffered for d in self.devices):
                return
            stop.wait(0.2)

    @staticmethod
    def _take_acks(device: Device, link: Link) -> None:
        while not link.acks.empty():
            device.firmware.on_ack(link.acks.get())

    def _snapshot(self, t_ms: int) -> SimStats:
        self.stats.sim_ms = t_ms
        self.stats.connected = sum(link.connected.is_set() for link in self.links)
        self.stats.buffered = sum(d.firmware.buffered for d in self.devices)
        self.stats.overflowed = sum(d.firmware.overflowed for d in self.devices)
        return SimStats(**vars(self.stats))
