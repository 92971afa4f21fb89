"""Turn parsed MQTT messages into table rows for one database transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ingest.messages import Fix, Parsed, Reject, SealEvent, Status

# Column order of the staging tables in store.py.
FixRow = tuple[str, int, int, float, float, float | None, float | None, float | None, float | None, int]
SealRow = tuple[str, int, int, str, str, float | None, float | None, float | None, int]
StatusRow = tuple[str, int, str, str | None, float | None, int | None, int]


@dataclass
class Batch:
    """Rows of one transaction. Times are epoch milliseconds."""

    fixes: list[FixRow] = field(default_factory=list)
    # Parallel to fixes/seals: the record came in a store-and-forward array.
    fix_backlog: list[bool] = field(default_factory=list)
    # Each message's fixes are a run of rows: (device, first row, end row).
    fix_runs: list[tuple[str, int, int]] = field(default_factory=list)
    seals: list[SealRow] = field(default_factory=list)
    seal_backlog: list[bool] = field(default_factory=list)
    statuses: list[StatusRow] = field(default_factory=list)
    rejects: list[tuple[Reject, int]] = field(default_factory=list)
    seqs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    last_seen: dict[str, int] = field(default_factory=dict)
    # Newest fix per device by (ts, seq): the latest-position upsert needs no sort in SQL.
    latest: dict[str, FixRow] = field(default_factory=dict)
    # Parallel to fixes/seals/statuses: the records as decoded (signatures are checked on them).
    fix_records: list[Fix] = field(default_factory=list)
    seal_records: list[SealEvent] = field(default_factory=list)
    status_records: list[Status] = field(default_factory=list)
    # Records refused as unsigned, wrongly signed or replayed: (device, record ts, reason), for device_tamper.
    tampered: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, parsed: Parsed, received_ms: int) -> None:
        self.rejects.extend((r, received_ms) for r in parsed.rejects)
        device = parsed.device_id
        if device is None:
            return
        newest = self.latest.get(device)
        self.fix_backlog.extend([len(parsed.fixes) > 1] * len(parsed.fixes))
        if parsed.fixes:
            self.fix_runs.append((device, len(self.fixes), len(self.fixes) + len(parsed.fixes)))
        for f in parsed.fixes:
            row = (device, f.seq, f.ts, f.lat, f.lon, f.spd, f.hdg, f.acc, f.bat, received_ms)
            self.fixes.append(row)
            if newest is None or (f.ts, f.seq) > (newest[2], newest[1]):
                newest = row
        if newest is not None:
            self.latest[device] = newest
        self.seal_backlog.extend([len(parsed.seals) > 1] * len(parsed.seals))
        for s in parsed.seals:
            self.seals.append((device, s.seq, s.ts, s.seal_id, s.event, s.lat, s.lon, s.bat, received_ms))
        for st in parsed.statuses:
            self.statuses.append((device, st.ts, st.state, st.fw, st.bat, st.buffered, received_ms))
        self.seqs[device].extend(parsed.seqs())
        self.last_seen[device] = received_ms
        self.fix_records.extend(parsed.fixes)
        self.seal_records.extend(parsed.seals)
        self.status_records.extend(parsed.statuses)

    def drop(self, fixes: set[int], seals: set[int], statuses: set[int]) -> None:
        """Take rows out (by index) that ingest refuses after parsing; their seqs still count for acks."""
        if fixes:
            keep = [i for i in range(len(self.fixes)) if i not in fixes]
            moved = {old: new for new, old in enumerate(keep)}
            runs = [(d, [moved[i] for i in range(a, b) if i in moved]) for d, a, b in self.fix_runs]
            self.fix_runs = [(d, kept[0], kept[-1] + 1) for d, kept in runs if kept]
            self.fixes, self.fix_backlog, self.fix_records = _kept(keep, self.fixes, self.fix_backlog,
                                                                   self.fix_records)
            self.latest = {}
            for row in self.fixes:
                newest = self.latest.get(row[0])
                if newest is None or (row[2], row[1]) > (newest[2], newest[1]):
                    self.latest[row[0]] = row
        if seals:
            keep = [i for i in range(len(self.seals)) if i not in seals]
            self.seals, self.seal_backlog, self.seal_records = _kept(keep, self.seals, self.seal_backlog,
                                                                     self.seal_records)
        if statuses:
            keep = [i for i in range(len(self.statuses)) if i not in statuses]
            self.statuses, self.status_records = _kept(keep, self.statuses, self.status_records)


def _kept(keep: list[int], *columns: list[Any]) -> tuple[list[Any], ...]:
    return tuple([column[i] for i in keep] for column in columns)
