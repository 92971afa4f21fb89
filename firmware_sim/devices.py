"""Tracker and e-seal: what they record and when."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from firmware_sim.firmware import Firmware, Gap, Outgoing
from firmware_sim.motion import Detour, Motion, Reversal, Stop
from firmware_sim.route import RouteLine, moved
from protocol.records import Fix, SealEvent, SealEventName, Status, encode

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class GpsNoise:
    """Gaussian horizontal error (sigma per axis, metres), rare multipath jumps
    (``jump_m`` metres in a random direction), and fixes never recorded at all
    (no satellite lock), each with its probability per fix."""

    sigma_m: float = 8.0
    jump_probability: float = 0.0
    jump_m: float = 300.0
    dropout_probability: float = 0.0

    @classmethod
    def from_2drms(cls, two_drms_m: float, jump_probability: float = 0.0, jump_m: float = 300.0,
                   dropout_probability: float = 0.0) -> GpsNoise:
        """Noise whose 2DRMS (metres; about 95 % of fixes fall within it) is ``two_drms_m``."""
        return cls(two_drms_m / (2 * math.sqrt(2)), jump_probability, jump_m, dropout_probability)

    @property
    def two_drms_m(self) -> float:
        return 2 * math.sqrt(2) * self.sigma_m


@dataclass
class Truck:
    """A trip along ``route``: where the truck is at any time (epoch ms)."""

    route: RouteLine
    motion: Motion
    departure_ms: int
    detours: tuple[Detour, ...] = ()
    reversals: tuple[Reversal, ...] = ()  # in time order, none overlapping

    def at(self, t_ms: int) -> tuple[float, float, float, float]:
        """(lat, lon, speed km/h, heading degrees) without GPS error.

        Speed and heading stay those along the route during a detour: a
        parallel track runs the same way, and a tracker's course is noisy anyway.
        """
        t = (t_ms - self.departure_ms) / 1000
        s, v, back = self.chainage_at(t)
        lat, lon, hdg = self.route.position_at(s)
        hdg = (hdg + 180.0) % 360.0 if back else hdg
        offset = sum(d.offset_at(t) for d in self.detours)
        if offset:
            h = math.radians(hdg)
            lat, lon = moved(lat, lon, -offset * math.sin(h), offset * math.cos(h))
        return lat, lon, v * 3.6, hdg

    def chainage_at(self, t: float) -> tuple[float, float, bool]:
        """(metres along the route, speed m/s, driving back towards the origin) at ``t`` seconds
        after departure: the motion, paused while a reversal plays."""
        paused = 0.0
        for r in self.reversals:
            if t < r.start_s:
                break
            if t < r.end_s:
                s0, _ = self.motion.at(r.start_s - paused)
                s, back = r.at(t, s0)
                return s, r.speed_ms, back
            paused += r.end_s - r.start_s
        s, v = self.motion.at(t - paused)
        return s, v, False

    @property
    def arrival_ms(self) -> int:
        paused_s = sum(r.end_s - r.start_s for r in self.reversals)
        return self.departure_ms + int((self.motion.duration_s + paused_s) * 1000)

    def halt_ms(self, stop: Stop) -> float:
        """Epoch ms (fractional) when the truck comes to rest at ``stop``, one of its motion's stops."""
        return self.departure_ms + self.motion.halt_s(stop) * 1000

    def beyond_ms(self, detour: Detour, distance_m: float) -> float:
        """Epoch ms (fractional) after which ``detour`` first takes the truck more than
        ``distance_m`` metres off the route (exact on a straight stretch of route)."""
        return self.departure_ms + detour.first_beyond_s(distance_m) * 1000


class Tracker:
    """Container tracker: a fix every ``interval_s`` while the trip lasts.

    While switched ``off`` it records and sends nothing (no backlog afterwards); during a GNSS
    ``outage`` (jamming) it stays connected and sends a status instead of each fix.
    """

    def __init__(self, firmware: Firmware, truck: Truck, interval_s: float, noise: GpsNoise,
                 rng: random.Random, battery: float = 100.0, power_on_ms: int | None = None,
                 off: tuple[Gap, ...] = (), outages: tuple[Gap, ...] = ()) -> None:
        self.firmware = firmware
        # Switched off, the device has no connection either: the runner reads coverage from the firmware.
        firmware.gaps = tuple(sorted((*firmware.gaps, *off), key=lambda g: g.start_ms))
        self.truck = truck
        self.interval_ms = int(interval_s * 1000)
        self.noise = noise
        self.rng = rng
        self.battery = battery
        self.off = off
        self.outages = outages
        # A tracker switched on mid-trip reports from then on, on its own cadence.
        self.next_ms = max(truck.departure_ms, power_on_ms or truck.departure_ms)

    @property
    def device_id(self) -> str:
        return self.firmware.device_id

    @property
    def end_ms(self) -> int:
        return self.truck.arrival_ms

    def tick(self, t_ms: int, can_send: bool) -> list[Outgoing]:
        """Record the fixes due by ``t_ms``; return what to publish now (if ``can_send``)."""
        statuses: list[Outgoing] = []
        while self.next_ms <= min(t_ms, self.end_ms):
            if _within(self.outages, self.next_ms):
                # Not stored: a status is the device's state now, worth nothing once stale.
                status = Status(ts=self.next_ms, state="online", bat=round(self.battery, 1),
                                buffered=self.firmware.buffered)
                statuses.append(Outgoing("status", encode(status), 0))
            elif not _within(self.off, self.next_ms) and not self._dropped():
                self.firmware.store(self._fix(self.next_ms))
            self.next_ms += self.interval_ms
        if self.next_ms > self.end_ms:
            self.next_ms = t_ms + self.firmware.resend_after_ms  # keep flushing until acked
        return [*statuses, *self.firmware.flush(t_ms)] if can_send else []

    def _dropped(self) -> bool:
        # No draw without dropouts, so such fleets replay exactly as before they existed.
        p = self.noise.dropout_probability
        return p > 0 and self.rng.random() < p

    def _fix(self, t_ms: int) -> Fix:
        lat, lon, kmh, hdg = self.truck.at(t_ms)
        err = self.noise.sigma_m
        dn, de = self.rng.gauss(0, err), self.rng.gauss(0, err)
        if self.rng.random() < self.noise.jump_probability:
            angle = self.rng.uniform(0, 2 * math.pi)
            dn += self.noise.jump_m * math.cos(angle)
            de += self.noise.jump_m * math.sin(angle)
        lat += dn / M_PER_DEG_LAT
        lon += de / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        self.battery = max(0.0, self.battery - 0.0005)
        return Fix(
            seq=self.firmware.take_seq(), ts=t_ms, lat=round(lat, 7), lon=round(lon, 7),
            spd=round(kmh, 1), hdg=round(hdg, 1), acc=round(err * 1.5, 1), bat=round(self.battery, 1), v=1,
        )


def _within(windows: tuple[Gap, ...], t_ms: int) -> bool:
    return any(w.start_ms <= t_ms < w.end_ms for w in windows)


@dataclass(order=True)
class PlannedSealEvent:
    at_ms: int
    event: SealEventName = field(compare=False)


@dataclass(frozen=True)
class Drain:
    """A battery draining steadily: ``start_pct`` percent at ``start_ms`` (epoch ms),
    ``pct_per_h`` percentage points less every hour, never below 0."""

    start_ms: int
    start_pct: float
    pct_per_h: float

    def at(self, t_ms: int) -> float:
        return max(0.0, self.start_pct - self.pct_per_h * (t_ms - self.start_ms) / 3_600_000)

    def reaches_ms(self, pct: float) -> int:
        """Epoch ms when the charge is down to ``pct`` percent."""
        return self.start_ms + math.ceil((self.start_pct - pct) / self.pct_per_h * 3_600_000)


class ESeal:
    """Electronic seal on a container: events at planned times, positioned by the truck.

    ``seal_id`` is the seal number it reports in every event (the one on the declaration, or
    not); with a ``battery`` each event carries its charge.
    """

    def __init__(self, firmware: Firmware, seal_id: str, truck: Truck,
                 events: list[PlannedSealEvent], battery: Drain | None = None) -> None:
        self.firmware = firmware
        self.seal_id = seal_id
        self.truck = truck
        self.events = sorted(events)
        self.battery = battery
        self.next_ms = self.events[0].at_ms if self.events else truck.arrival_ms

    @property
    def device_id(self) -> str:
        return self.firmware.device_id

    def tick(self, t_ms: int, can_send: bool) -> list[Outgoing]:
        """Record the events due by ``t_ms``; return what to publish now (if ``can_send``)."""
        while self.events and self.events[0].at_ms <= t_ms:
            planned = self.events.pop(0)
            lat, lon, _, _ = self.truck.at(planned.at_ms)
            bat = None if self.battery is None else round(self.battery.at(planned.at_ms), 1)
            self.firmware.store(SealEvent(
                seq=self.firmware.take_seq(), ts=planned.at_ms, seal_id=self.seal_id,
                event=planned.event, lat=round(lat, 7), lon=round(lon, 7), bat=bat, v=1,
            ))
        self.next_ms = self.events[0].at_ms if self.events else t_ms + self.firmware.resend_after_ms
        return self.firmware.flush(t_ms) if can_send else []


@dataclass(frozen=True)
class Forge:
    """At ``at_ms``, publish ``record`` as it is (unsigned, or signed with a key that is not the device's)."""

    at_ms: int
    record: Fix | SealEvent


@dataclass(frozen=True)
class Replay:
    """At ``at_ms``, publish again the first ``count`` records the device sent, each ``shift_ms``
    later than the original and without its signature unless ``keep_sig`` (same seq, new ts)."""

    at_ms: int
    count: int
    shift_ms: int
    keep_sig: bool = False


Attack = Forge | Replay
_RECORDS: dict[str, msgspec.json.Decoder[Any]] = {
    "pos": msgspec.json.Decoder(Fix | list[Fix]),
    "seal": msgspec.json.Decoder(SealEvent | list[SealEvent]),
}


class Attacker:
    """A device whose broker credential someone else also holds (a cloned SIM, a stolen
    password): the genuine device runs as ever, and the intruder captures what it sends
    and publishes replays and forged records on its topics."""

    def __init__(self, device: Tracker | ESeal, attacks: list[Attack]) -> None:
        self.device = device
        self.attacks = sorted(attacks, key=lambda a: a.at_ms)
        self.captured: list[Fix | SealEvent] = []
        self._held_until = 0  # an attack that found no connection waits a simulated second

    @property
    def device_id(self) -> str:
        return self.device.device_id

    @property
    def firmware(self) -> Firmware:
        return self.device.firmware

    @property
    def truck(self) -> Truck:
        return self.device.truck

    @property
    def next_ms(self) -> int:
        return min([self.device.next_ms, *(max(a.at_ms, self._held_until) for a in self.attacks[:1])])

    def tick(self, t_ms: int, can_send: bool) -> list[Outgoing]:
        out = self.device.tick(t_ms, can_send) if self.device.next_ms <= t_ms else []
        for message in out:
            decoded = _RECORDS[message.kind].decode(message.payload)
            self.captured.extend(decoded if isinstance(decoded, list) else [decoded])
        while can_send and self.attacks and self.attacks[0].at_ms <= t_ms:
            out.append(self._play(self.attacks.pop(0)))
        if self.attacks and self.attacks[0].at_ms <= t_ms:
            self._held_until = t_ms + 1000
        return out

    def _play(self, attack: Attack) -> Outgoing:
        kind = self.firmware.kind
        if isinstance(attack, Forge):
            return Outgoing(kind, encode(attack.record), 1)
        first_copies = {r.seq: r for r in reversed(self.captured)}  # resends captured too
        originals = sorted(first_copies.values(), key=lambda r: r.seq)[: attack.count]
        replayed = [msgspec.structs.replace(r, ts=r.ts + attack.shift_ms, sig=r.sig if attack.keep_sig else None)
                    for r in originals]
        return Outgoing(kind, encode(replayed), len(replayed))


Device = Tracker | ESeal | Attacker
