"""Store-and-forward behaviour of the simulated firmware (no network)."""

from __future__ import annotations

import msgspec

from firmware_sim.firmware import Firmware, Gap
from protocol.records import Fix

T0 = 1_790_000_000_000


def _fix(seq: int) -> Fix:
    return Fix(seq=seq, ts=T0 + seq * 15_000, lat=0.0, lon=0.0)


def _decode(payload: bytes) -> list[int]:
    value = msgspec.json.decode(payload)
    items = value if isinstance(value, list) else [value]
    return [item["seq"] for item in items]


def test_live_records_go_out_singly_and_stay_until_acked() -> None:
    fw = Firmware("T1", "pos")
    fw.store(_fix(fw.take_seq()))
    out = fw.flush(T0)
    assert [(o.kind, _decode(o.payload)) for o in out] == [("pos", [0])]
    assert fw.buffered == 1
    fw.on_ack(0)
    assert fw.buffered == 0


def test_records_of_a_gap_go_out_as_arrays_after_it() -> None:
    fw = Firmware("T1", "pos", gaps=(Gap(T0, T0 + 3_600_000),), batch_size=50)
    for _ in range(120):
        fw.store(_fix(fw.take_seq()))
        assert fw.flush(T0 + 1000) == []  # no coverage
    out = fw.flush(T0 + 3_600_000)
    assert [o.records for o in out] == [50, 50, 20]
    assert [s for o in out for s in _decode(o.payload)] == list(range(120))


def test_backlog_can_be_sent_newest_first() -> None:
    fw = Firmware("T1", "pos", gaps=(Gap(T0, T0 + 10),), batch_size=3, backlog_newest_first=True)
    for _ in range(5):
        fw.store(_fix(fw.take_seq()))
    out = fw.flush(T0 + 10)
    assert [_decode(o.payload) for o in out] == [[4, 3, 2], [1, 0]]


def test_unacked_records_are_resent_after_the_timeout() -> None:
    fw = Firmware("T1", "pos", resend_after_ms=60_000)
    for _ in range(3):
        fw.store(_fix(fw.take_seq()))
    fw.flush(T0)
    fw.on_ack(0)
    assert fw.flush(T0 + 59_999) == []
    again = fw.flush(T0 + 60_000)
    assert [_decode(o.payload) for o in again] == [[1, 2]]


def test_full_flash_drops_the_oldest_and_counts_it() -> None:
    fw = Firmware("T1", "pos", capacity=10)
    for _ in range(15):
        fw.store(_fix(fw.take_seq()))
    assert fw.buffered == 10 and fw.overflowed == 5
    assert _decode(fw.flush(T0)[0].payload)[0] == 5
