"""The pure reconciliation of stored alerts with recomputed intervals, without a
database: the operations are applied to an in-memory model of the alerts table
that enforces what the database does (one open alert per type)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from ingest.alerting.reconcile import (
    ACTED,
    Contest,
    End,
    Insert,
    Interval,
    Operation,
    Stored,
    Update,
    Withdraw,
    reconcile,
)

TYPES = ("route_deviation", "unscheduled_stop")
LATE = (1_000, 9_000)


@dataclass
class Row:
    """An alert row of the model: what reconcile sees plus what it must keep."""

    id: int
    type: str
    started_ms: int
    ended_ms: int | None
    status: str
    contested: bool = False
    withdrawn: bool = False

    def stored(self) -> Stored:
        return Stored(self.id, self.type, self.started_ms, self.ended_ms, self.status, self.contested)


def apply(rows: list[Row], operations: list[Operation]) -> list[Row]:
    """What the database does with ``operations`` (ingest/alerting/apply.py)."""
    out = [Row(**vars(r)) for r in rows]
    by_id = {r.id: r for r in out}
    next_id = max((r.id for r in out), default=0) + 1
    for op in operations:
        match op:
            case Insert(c):
                out.append(Row(next_id, c.type, c.started_ms, c.ended_ms, "open"))
                next_id += 1
            case Update(alert_id, c) | End(alert_id, c):
                by_id[alert_id].started_ms, by_id[alert_id].ended_ms = c.started_ms, c.ended_ms
            case Withdraw(alert_id):
                row = by_id[alert_id]
                row.ended_ms, row.withdrawn = row.started_ms, True
            case Contest(alert_id, _reason):
                row = by_id[alert_id]
                row.contested = True
                row.ended_ms = row.started_ms if row.ended_ms is None else row.ended_ms
        open_types = Counter(r.type for r in out if r.ended_ms is None)
        assert all(n <= 1 for n in open_types.values()), f"two open alerts of a type after {op}"
    return out


def visible(rows: list[Row]) -> list[Row]:
    return [r for r in rows if not r.withdrawn]


def shown(rows: list[Row]) -> Counter[tuple[str, int, int | None]]:
    """What the alerts say happened: neither withdrawn nor contested."""
    return Counter((r.type, r.started_ms, r.ended_ms) for r in rows if not r.withdrawn and not r.contested)


@st.composite
def sequences(draw: st.DrawFn, kind: str) -> list[tuple[int, int | None]]:
    """Non-overlapping intervals of one type, in time order; only the last may be open."""
    n = draw(st.integers(0, 4))
    t = draw(st.integers(0, 50))
    out: list[tuple[int, int | None]] = []
    for i in range(n):
        start = t + draw(st.integers(1, 40))
        end = start + draw(st.integers(0, 40))
        if i == n - 1 and draw(st.booleans()):
            out.append((start, None))
        else:
            out.append((start, end))
        t = end
    return out


@st.composite
def computed(draw: st.DrawFn) -> list[Interval]:
    return [Interval(kind, start, end, start, 30.0, 0.0, False)
            for kind in TYPES for start, end in draw(sequences(kind))]


@st.composite
def stored(draw: st.DrawFn) -> list[Row]:
    """Stored alerts: at most one open per type; contested ones are ended (contesting ends them)."""
    rows: list[Row] = []
    for kind in TYPES:
        for start, end in draw(sequences(kind)):
            status = draw(st.sampled_from(["open", "acknowledged", "resolved"]))
            contested = end is not None and status in ACTED and draw(st.booleans())
            rows.append(Row(len(rows) + 1, kind, start, end, status, contested))
    return rows


@given(stored(), computed())
def test_applying_the_operations_makes_the_alerts_say_what_the_track_shows(rows: list[Row],
                                                                            intervals: list[Interval]) -> None:
    after = apply(rows, reconcile([r.stored() for r in rows], intervals, LATE))
    assert shown(after) == Counter((c.type, c.started_ms, c.ended_ms) for c in intervals)


@given(stored(), computed())
def test_an_alert_an_officer_acted_on_is_never_withdrawn_and_its_status_stays(rows: list[Row],
                                                                                intervals: list[Interval]) -> None:
    operations = reconcile([r.stored() for r in rows], intervals, LATE)
    acted = {r.id for r in rows if r.status in ACTED}
    assert not [op for op in operations if isinstance(op, Withdraw) and op.alert_id in acted]
    after = {r.id: r for r in apply(rows, operations)}
    assert all(after[r.id].status == r.status and not after[r.id].withdrawn for r in rows if r.id in acted)


@given(stored(), computed())
def test_reconciling_twice_changes_nothing_the_second_time(rows: list[Row], intervals: list[Interval]) -> None:
    after = apply(rows, reconcile([r.stored() for r in rows], intervals, LATE))
    assert reconcile([r.stored() for r in visible(after)], intervals, LATE) == []


@given(stored(), computed())
def test_an_alert_overlapping_one_recomputed_interval_keeps_its_id(rows: list[Row], intervals: list[Interval]) -> None:
    after = {r.id: r for r in apply(rows, reconcile([r.stored() for r in rows], intervals, LATE))}
    live = [r for r in rows if not r.contested]
    for c in intervals:
        over = [r for r in live if r.type == c.type and _overlap(r.started_ms, r.ended_ms, c.started_ms, c.ended_ms)]
        if len(over) != 1:
            continue
        (r,) = over
        others = [d for d in intervals if d.type == r.type and _overlap(r.started_ms, r.ended_ms, d.started_ms,
                                                                         d.ended_ms)]
        if len(others) == 1:
            assert (after[r.id].started_ms, after[r.id].ended_ms) == (c.started_ms, c.ended_ms)
            assert after[r.id].status == r.status and not after[r.id].withdrawn and not after[r.id].contested


def test_a_dropped_acknowledged_alert_is_contested_with_the_late_range() -> None:
    ops = reconcile([Stored(7, "route_deviation", 100, 200, "acknowledged", False)], [], (1_700_000_000_000,
                                                                                           1_700_000_060_000))
    assert ops == [Contest(7, "late data from 2023-11-14T22:13:20.000Z to 2023-11-14T22:14:20.000Z"
                              " no longer shows this route_deviation")]


def _overlap(a0: int, a1: int | None, b0: int, b1: int | None) -> bool:
    big = 2**62
    return a0 <= (big if b1 is None else b1) and (big if a1 is None else a1) >= b0
