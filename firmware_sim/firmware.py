"""Device firmware logic, without any network: records get a seq, wait in a
buffer until the backend's ack covers them, and go out live or, after a
coverage gap, as backlog arrays. The MQTT side is in ``link.py``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from protocol.records import Fix, SealEvent, encode
from protocol.signing import sign

Kind = Literal["pos", "seal", "status"]
Record = Fix | SealEvent


@dataclass(frozen=True)
class Outgoing:
    kind: Kind
    payload: bytes
    records: int


@dataclass(frozen=True)
class Gap:
    """No coverage from ``start_ms`` to ``end_ms`` (epoch ms)."""

    start_ms: int
    end_ms: int


class Firmware:
    """Store-and-forward buffer of one device.

    ``capacity`` is the device's flash: past it the oldest records are lost
    (and counted), as on real hardware.
    """

    def __init__(
        self,
        device_id: str,
        kind: Kind,
        gaps: tuple[Gap, ...] = (),
        batch_size: int = 50,
        resend_after_ms: int = 120_000,
        backlog_newest_first: bool = False,
        capacity: int = 50_000,
    ) -> None:
        self.device_id = device_id
        self.kind = kind
        self.gaps = gaps
        self.batch_size = batch_size
        self.resend_after_ms = resend_after_ms
        self.backlog_newest_first = backlog_newest_first
        self.capacity = capacity
        self.next_seq = 0
        self.overflowed = 0
        # The signing key provisioning gave the device (docs/protocol.md, "Signed records"); None: v1, unsigned.
        self.key: bytes | None = None
        self._unsent: OrderedDict[int, Record] = OrderedDict()
        self._sent: OrderedDict[int, tuple[Record, int]] = OrderedDict()

    @property
    def buffered(self) -> int:
        return len(self._unsent) + len(self._sent)

    def online(self, t_ms: int) -> bool:
        return not any(g.start_ms <= t_ms < g.end_ms for g in self.gaps)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def store(self, record: Record) -> None:
        """Keep a new record until acknowledged; signed as it is made, as real firmware does,
        so a resend is the very same record."""
        if self.key is not None:
            record = sign(self.key, self.device_id, self.kind, record)
        self._unsent[record.seq] = record
        while self.buffered > self.capacity:
            self.overflowed += 1
            (self._sent if self._sent else self._unsent).popitem(last=False)

    def on_ack(self, seq: int) -> None:
        """The backend stored every record up to ``seq``: forget them."""
        for book in (self._sent, self._unsent):
            for s in [s for s in book if s <= seq]:
                del book[s]

    def flush(self, t_ms: int) -> list[Outgoing]:
        """What to publish now: unsent records, then overdue unacked ones again."""
        if not self.online(t_ms):
            return []
        out: list[Outgoing] = []
        unsent = list(self._unsent.values())
        self._unsent.clear()
        if len(unsent) == 1:
            out.append(Outgoing(self.kind, encode(unsent[0]), 1))
        elif unsent:
            out.extend(self._arrays(unsent))
        for record in unsent:
            self._sent[record.seq] = (record, t_ms)
        overdue = [r for r, sent in self._sent.values() if t_ms - sent >= self.resend_after_ms]
        if overdue:
            out.extend(self._arrays(overdue))
            for record in overdue:
                self._sent[record.seq] = (record, t_ms)
        return out

    def _arrays(self, records: list[Record]) -> list[Outgoing]:
        ordered = sorted(records, key=lambda r: r.seq, reverse=self.backlog_newest_first)
        return [
            Outgoing(self.kind, encode(ordered[i : i + self.batch_size]), len(ordered[i : i + self.batch_size]))
            for i in range(0, len(ordered), self.batch_size)
        ]
