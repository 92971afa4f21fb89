"""The batch's fresh fixes in columns (live.fresh_fixes) and the late ones among
them (suspect.late_fixes) agree with the per-tracker dictionaries they replace,
kept here as the reference."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.engine import Binding, Track
from geofence.state import DeviceState
from ingest.alerting.live import Fresh, fresh_fixes
from ingest.alerting.suspect import Late, late_fixes
from ingest.batch import Batch
from ingest.messages import Parsed
from ingest.registry import Registry, Shipment
from protocol.records import Fix
from tests.geofence.tracks import T0, straight_network

DEVICES = ["a", "b", "c", "d", "e"]  # a-c in transit, d on a route the engine lacks, e not in transit
NETWORK = straight_network()


def registry() -> Registry:
    reg = Registry(NETWORK)
    for k, device_id in enumerate(DEVICES[:4]):
        binding = Binding(k, 0, -1, T0) if device_id != "d" else None
        reg.trackers[device_id] = Shipment(k, f"ref{k}", device_id, binding)
    return reg


def reference(batch: Batch, new_fixes: set[tuple[str, int]], reg: Registry) -> dict[str, tuple[Track, list[int]]]:
    """The per-tracker loop live.fresh_fixes replaced."""
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device_id, first, end in batch.fix_runs:
        shipment = reg.trackers.get(device_id)
        if shipment is not None and shipment.binding is not None:
            runs[device_id].append((first, end))
    every_row_new = len(new_fixes) == len(batch.fixes)
    out = {}
    for device_id, spans in runs.items():
        t, lon, lat, seqs, backlog = [], [], [], [], []
        for first, end in spans:
            for i in range(first, end):
                _device, seq, ts, fix_lat, fix_lon, *_rest = batch.fixes[i]
                if every_row_new or (device_id, seq) in new_fixes:
                    t.append(ts)
                    lon.append(fix_lon)
                    lat.append(fix_lat)
                    seqs.append(seq)
                    backlog.append(batch.fix_backlog[i])
        if t:
            out[device_id] = (Track.of(t, lon, lat, backlog), seqs)
    return out


messages = st.lists(st.tuples(st.sampled_from(DEVICES), st.integers(1, 4)), max_size=25)


def build(msgs: list[tuple[str, int]], seed: int) -> tuple[Batch, list[tuple[str, int]]]:
    rng = np.random.default_rng(seed)
    batch = Batch()
    seq: dict[str, int] = defaultdict(int)
    for device_id, n in msgs:
        fixes = []
        for _ in range(n):
            seq[device_id] += 1
            fixes.append(Fix(seq=seq[device_id], ts=T0 + int(rng.integers(0, 10**6)),
                             lat=float(rng.uniform(-0.01, 0.01)), lon=float(rng.uniform(30, 31))))
        batch.add(Parsed(device_id, fixes=fixes), 0)
    return batch, [(row[0], row[1]) for row in batch.fixes]


@settings(max_examples=200, deadline=None)
@given(messages, st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_fresh_fixes_are_the_per_tracker_fixes_in_columns(msgs: list[tuple[str, int]], seed: int,
                                                           new_share: float) -> None:
    batch, keys = build(msgs, seed)
    rng = np.random.default_rng(seed + 1)
    new = {k for k in keys if rng.random() < new_share} if new_share < 1 else set(keys)
    reg = registry()
    fresh = fresh_fixes(batch, new, reg)
    expected = reference(batch, new, reg)
    assert fresh.ids == sorted(expected)
    for k, device_id in enumerate(fresh.ids):
        track, seqs = expected[device_id]
        got = fresh.tracks.track(k)
        a, b = fresh.tracks.start[k], fresh.tracks.start[k + 1]
        assert got.t.tolist() == track.t.tolist()
        assert got.lon.tolist() == track.lon.tolist() and got.lat.tolist() == track.lat.tolist()
        assert got.backlog.tolist() == track.backlog.tolist()
        assert fresh.seq[a:b].tolist() == seqs
        assert fresh.newest()[k] == track.t.max() and fresh.earliest()[k] == track.t.min()
        one = fresh.one(k)
        assert one.ids == [device_id] and one.seq.tolist() == seqs and one.tracks.t.tolist() == track.t.tolist()


@settings(max_examples=200, deadline=None)
@given(messages, st.integers(0, 2**32 - 1), st.lists(st.integers(-1, 10**6), min_size=3, max_size=3))
def test_late_fixes_are_those_not_newer_than_the_state(msgs: list[tuple[str, int]], seed: int,
                                                       last: list[int]) -> None:
    batch, keys = build(msgs, seed)
    reg = registry()
    fresh = fresh_fixes(batch, set(keys), reg)
    states = {d: DeviceState(shipment_id=0, last_ts=T0 + ms if ms >= 0 else -1)
              for d, ms in zip("abc", last, strict=True)}
    expected = set()
    for device_id, (track, seqs) in reference(batch, set(keys), reg).items():
        state = states.get(device_id)
        if state is None or state.last_ts < 0:
            continue
        expected |= {Late(device_id, s, t) for s, t in zip(seqs, track.t.tolist(), strict=True) if t <= state.last_ts}
    got = late_fixes(fresh, states)
    assert len(got) == len(set(got)) and set(got) == expected


def test_no_fixes_make_an_empty_batch() -> None:
    fresh = fresh_fixes(Batch(), set(), registry())
    assert fresh.ids == [] and len(fresh.tracks.t) == 0 and fresh.newest().tolist() == []
    assert late_fixes(fresh, {}) == [] and Fresh.empty().ids == []
