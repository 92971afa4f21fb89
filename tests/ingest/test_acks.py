"""Device ack watermarks: highest contiguous stored seq, whatever the arrival order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.acks import AckTracker


def _contiguous_max(seqs: set[int], start: int = -1) -> int:
    w = start
    while w + 1 in seqs:
        w += 1
    return w


def test_gap_holds_the_watermark_until_filled() -> None:
    acks = AckTracker()
    acks.load("d", -1, [])
    plan = acks.plan({"d": [0, 1, 2, 5, 6]})
    assert plan.advanced == {"d": 2}
    acks.apply(plan)
    plan = acks.plan({"d": [4]})
    assert plan.advanced == {}
    acks.apply(plan)
    plan = acks.plan({"d": [3]})
    assert plan.advanced == {"d": 6}


def test_plan_without_apply_changes_nothing() -> None:
    acks = AckTracker()
    acks.load("d", 10, [])
    acks.plan({"d": [11, 12]})
    assert acks.watermark("d") == 10
    assert acks.plan({"d": [11]}).advanced == {"d": 11}


def test_load_restores_seqs_stored_above_the_saved_watermark() -> None:
    acks = AckTracker()
    acks.load("d", 4, [3, 6, 7, 9])
    assert acks.watermark("d") == 4
    assert acks.plan({"d": [5]}).advanced == {"d": 7}


@given(st.lists(st.lists(st.integers(0, 60), max_size=20), max_size=10))
def test_any_delivery_order_gives_the_contiguous_maximum(batches: list[list[int]]) -> None:
    acks = AckTracker()
    acks.load("d", -1, [])
    seen: set[int] = set()
    for batch in batches:
        acks.apply(acks.plan({"d": batch}))
        seen.update(batch)
        assert acks.watermark("d") == _contiguous_max(seen)
