"""Make a tracker's stored alerts agree with the ones its whole track gives: pure.

``reconcile(stored, computed, late)`` returns the operations that make them
agree; ``ingest.alerting.apply`` carries them out in the database. An alert
that overlaps a computed interval of its type is the same alert (its id and
the officers' workflow stay) and takes the computed times; a computed interval
nothing overlaps is a new alert; a stored alert the track no longer supports is
withdrawn, unless an officer has acknowledged or resolved it: that one is kept
and contested, with the reason, so that late data never silently undoes an
officer's work. Times are epoch milliseconds (fix time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from geofence.engine import Transition

# Stands for "still open" when comparing intervals.
_OPEN = 2**62
ACTED = frozenset({"acknowledged", "resolved"})


class Stored(NamedTuple):
    """A stored, not withdrawn alert of the tracker (a condition type of the engine)."""

    id: int
    type: str
    started_ms: int
    ended_ms: int | None
    status: str
    contested: bool


class Interval(NamedTuple):
    """A condition the whole track shows: from its first record to its last (None: it lasts)."""

    type: str
    started_ms: int
    ended_ms: int | None
    crossed_ms: int
    lon: float | None  # degrees; None for a seal event with no position near it
    lat: float | None
    late: bool
    country: str | None = None  # ISO 3166-1 alpha-3 where it was decided
    detail: Mapping[str, Any] | None = None  # per type (docs/alerts.md)


class Insert(NamedTuple):
    interval: Interval


class Update(NamedTuple):
    """New times for the same alert (``updated``)."""

    alert_id: int
    interval: Interval


class End(NamedTuple):
    """An open alert the track shows ended (``ended``), with the computed times."""

    alert_id: int
    interval: Interval


class Withdraw(NamedTuple):
    """The track no longer shows it and nobody acted on it: ``ended_at = started_at``, marked withdrawn."""

    alert_id: int


class Contest(NamedTuple):
    """The track no longer shows it but an officer acted on it: kept (ended if open), reason recorded."""

    alert_id: int
    reason: str


Operation = Insert | Update | End | Withdraw | Contest


def intervals(transitions: Sequence[Transition]) -> list[Interval]:
    """Pair each opening with the ending that follows it (transitions in fix-time order)."""
    found: list[Interval] = []
    open_: dict[str, int] = {}  # type -> index in found
    for tr in transitions:
        if tr.event == "milestone":
            continue
        if tr.event == "opened":
            assert tr.started_ms is not None
            if tr.ended_ms is not None:  # instantaneous: opened already ended
                found.append(Interval(tr.type, tr.started_ms, tr.ended_ms, tr.crossed_ms, tr.lon, tr.lat, tr.late,
                                      tr.country, tr.detail))
                continue
            open_[tr.type] = len(found)
            found.append(Interval(tr.type, tr.started_ms, None, tr.crossed_ms, tr.lon, tr.lat, tr.late, tr.country,
                                  tr.detail))
        elif tr.type in open_:
            i = open_.pop(tr.type)
            found[i] = found[i]._replace(ended_ms=tr.ended_ms)
    return found


def reconcile(stored: Sequence[Stored], computed: Sequence[Interval], late: tuple[int, int]) -> list[Operation]:
    """The operations that make ``stored`` agree with ``computed``.

    ``late`` is the fix-time range (ms) of the late data that made the
    recomputation necessary, named in a contested alert's reason. Operations are
    ordered so that at most one alert of a type is open after each of them:
    withdrawals and contests first, then changes of matched alerts, then inserts.
    """
    candidates = sorted((s for s in stored if not s.contested), key=lambda s: (s.started_ms, s.id))
    matched: set[int] = set()
    changes: list[Operation] = []
    inserts: list[Operation] = []
    for c in sorted(computed, key=lambda i: (i.started_ms, i.type)):
        match = next((s for s in candidates if s.id not in matched and _overlaps(s, c)), None)
        if match is None:
            inserts.append(Insert(c))
            continue
        matched.add(match.id)
        if (match.started_ms, match.ended_ms) == (c.started_ms, c.ended_ms):
            continue
        changes.append(End(match.id, c) if match.ended_ms is None and c.ended_ms is not None else Update(match.id, c))
    dropped: list[Operation] = [
        Contest(s.id, contest_reason(s.type, late)) if s.status in ACTED else Withdraw(s.id)
        for s in candidates if s.id not in matched
    ]
    return dropped + changes + inserts


def contest_reason(alert_type: str, late: tuple[int, int]) -> str:
    first, last = (_iso(ms) for ms in late)
    return f"late data from {first} to {last} no longer shows this {alert_type}"


def _overlaps(s: Stored, c: Interval) -> bool:
    s_end = _OPEN if s.ended_ms is None else s.ended_ms
    c_end = _OPEN if c.ended_ms is None else c.ended_ms
    return s.type == c.type and s.started_ms <= c_end and s_end >= c.started_ms


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
