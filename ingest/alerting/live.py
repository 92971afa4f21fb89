"""Live evaluation: a batch's new fixes, per tracker, after its saved state."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import psycopg

from geofence.engine import Track, Transition
from geofence.state import DeviceState, dumps
from ingest.alerting.apply import INSERT, insert_params
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from ingest.batch import Batch
from ingest.registry import Registry
from protocol.alerts import AlertChange

_END = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {MS.format("%s::int8")}), updated_at = now()
    WHERE shipment_id = %s AND device_id = %s AND type = %s AND ended_at IS NULL
    RETURNING *
) {RETURNING}
"""
_SAVE_STATES = f"""
INSERT INTO geofence_state (device_id, shipment_id, state, chainage_m, distance_m, last_fix_at, updated_at)
SELECT id, sid, st, ch, dist, {MS.format("ts")}, now()
FROM unnest(%s::text[], %s::int8[], %s::bytea[], %s::float8[], %s::float8[], %s::int8[]) AS v(id, sid, st, ch, dist, ts)
ON CONFLICT (device_id) DO UPDATE SET shipment_id = excluded.shipment_id, state = excluded.state,
    chainage_m = excluded.chainage_m, distance_m = excluded.distance_m, last_fix_at = excluded.last_fix_at,
    updated_at = excluded.updated_at
"""


class Fresh(NamedTuple):
    """A tracker's fixes newly stored by this batch, with their seqs (parallel to the track)."""

    track: Track
    seqs: list[int]


def fresh_fixes(batch: Batch, new_fixes: set[tuple[str, int]], registry: Registry) -> dict[str, Fresh]:
    """The newly stored fixes of in-transit trackers, per tracker (whole messages at a time)."""
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device_id, first, end in batch.fix_runs:
        shipment = registry.trackers.get(device_id)
        if shipment is not None and shipment.binding is not None:
            runs[device_id].append((first, end))
    every_row_new = len(new_fixes) == len(batch.fixes)  # the usual case: no duplicate to skip
    out = {}
    for device_id, spans in runs.items():
        t: list[int] = []
        lon: list[float] = []
        lat: list[float] = []
        seqs: list[int] = []
        backlog: list[bool] = []
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
            out[device_id] = Fresh(Track.of(t, lon, lat, backlog), seqs)
    return out


def apply_transitions(cur: psycopg.Cursor[Any], transitions: list[Transition]) -> list[AlertChange]:
    """Open and end alerts as the engine found on live data."""
    out: list[AlertChange] = []
    for tr in transitions:
        if tr.event == "opened":
            assert tr.started_ms is not None
            interval = Interval(tr.type, tr.started_ms, tr.ended_ms, tr.crossed_ms, tr.lon, tr.lat, tr.late)
            out += changed(cur, "opened", INSERT, insert_params(interval, tr.shipment_id, tr.device_id))
        else:
            out += changed(cur, "ended", _END, (tr.ended_ms, tr.shipment_id, tr.device_id, tr.type))
    return out


def save_states(cur: psycopg.Cursor[Any], states: dict[str, DeviceState]) -> None:
    """Each tracker's detector state, with readable progress for the API."""
    if not states:
        return
    ids = sorted(states)
    saved = [states[i] for i in ids]
    cur.execute(_SAVE_STATES, (ids, [s.shipment_id for s in saved], [dumps(s) for s in saved],
                               [s.chainage_m for s in saved], [s.distance_m for s in saved],
                               [s.last_ts for s in saved]))
