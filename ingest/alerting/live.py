"""Live evaluation: a batch's new fixes, per tracker, after its saved state."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from geofence.engine import Tracks, Transition
from geofence.state import DeviceState, dumps
from geofence.types import IntArray
from ingest.alerting.apply import INSERT, TRUCK, insert_params
from ingest.alerting.changes import MS, RETURNING, changed
from ingest.alerting.reconcile import Interval
from ingest.batch import Batch
from ingest.registry import Registry
from ingest.staged import Staging
from protocol.alerts import AlertChange

_END = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {MS.format("%(ended)s::int8")}), updated_at = now()
    WHERE shipment_id IN {TRUCK.format(sid="%(shipment)s", device="%(device)s")} AND device_id = %(device)s
      AND type = %(type)s AND ended_at IS NULL
    RETURNING *
) {RETURNING}
"""
# A milestone of the timeline, for every shipment on the truck; the office by its itinerary position.
_MILESTONE = f"""
INSERT INTO shipment_events (shipment_id, device_id, kind, office_code, country, at, lon, lat, late, detail)
SELECT t.id, %(device)s, %(kind)s,
       (SELECT o.office_code FROM shipment_offices o WHERE o.shipment_id = t.id AND o.position = %(position)s),
       %(country)s, {MS.format("%(at)s::int8")}, %(lon)s, %(lat)s, %(late)s, %(detail)s
FROM shipments t WHERE t.id IN {TRUCK.format(sid="%(shipment)s", device="%(device)s")}
ON CONFLICT DO NOTHING
"""
_STAGED_STATES = Staging("stage_geofence_state", (
    ("device_id", "text"), ("shipment_id", "int8"), ("state", "bytea"), ("chainage_m", "float8"),
    ("distance_m", "float8"), ("last_ts", "int8")))
_SAVE_STATES = f"""
INSERT INTO geofence_state (device_id, shipment_id, state, chainage_m, distance_m, last_fix_at, updated_at)
SELECT device_id, shipment_id, state, chainage_m, distance_m, {MS.format("last_ts")}, now() FROM {_STAGED_STATES.table}
ON CONFLICT (device_id) DO UPDATE SET shipment_id = excluded.shipment_id, state = excluded.state,
    chainage_m = excluded.chainage_m, distance_m = excluded.distance_m, last_fix_at = excluded.last_fix_at,
    updated_at = excluded.updated_at, behind = false
"""


class Fresh(NamedTuple):
    """A batch's newly stored fixes of in-transit trackers, tracker by tracker
    (ids sorted; each tracker's fixes in batch order), with their seqs (parallel
    to the rows)."""

    tracks: Tracks
    seq: IntArray

    @property
    def ids(self) -> list[str]:
        return self.tracks.ids

    def newest(self) -> IntArray:
        """Each tracker's newest fix time (epoch ms)."""
        return _per_tracker(np.maximum, self.tracks)

    def earliest(self) -> IntArray:
        """Each tracker's oldest fix time (epoch ms)."""
        return _per_tracker(np.minimum, self.tracks)

    @classmethod
    def empty(cls) -> Fresh:
        return cls(Tracks.of([], []), np.empty(0, dtype=np.int64))

    def one(self, k: int) -> Fresh:
        """Tracker ``k`` alone."""
        a, b = int(self.tracks.start[k]), int(self.tracks.start[k + 1])
        return Fresh(self.tracks.take([k]), self.seq[a:b])


def _per_tracker(reduce: np.ufunc, tracks: Tracks) -> IntArray:
    if not tracks.ids:
        return np.empty(0, dtype=np.int64)
    return reduce.reduceat(tracks.t, tracks.start[:-1])


def fresh_fixes(batch: Batch, new_fixes: set[tuple[str, int]], registry: Registry) -> Fresh:
    """The newly stored fixes of in-transit trackers (whole messages at a time), in columns."""
    live = registry.live_trackers
    every_row_new = len(new_fixes) == len(batch.fixes)  # the usual case: no duplicate to skip
    if every_row_new:
        rows = [i for i, row in enumerate(batch.fixes) if row[0] in live]
    else:
        rows = [i for i, row in enumerate(batch.fixes) if row[0] in live and (row[0], row[1]) in new_fixes]
    if not rows:
        return Fresh.empty()
    picked = batch.fixes if len(rows) == len(batch.fixes) else [batch.fixes[i] for i in rows]
    device, seq, ts, lat, lon, *_rest = zip(*picked, strict=True)
    index: dict[str, int] = {}
    code = np.array([index.setdefault(d, len(index)) for d in device], dtype=np.int64)
    ids = sorted(index)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[[index[d] for d in ids]] = np.arange(len(ids))
    order = np.argsort(rank[code], kind="stable")  # tracker by tracker, batch order within each
    counts = np.bincount(rank[code], minlength=len(ids))
    backlog = np.array([batch.fix_backlog[i] for i in rows], dtype=np.bool_)
    tracks = Tracks(ids, np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                    np.array(ts, dtype=np.int64)[order], np.array(lon, dtype=np.float64)[order],
                    np.array(lat, dtype=np.float64)[order], backlog[order])
    return Fresh(tracks, np.array(seq, dtype=np.int64)[order])


def apply_transitions(cur: psycopg.Cursor[Any], transitions: list[Transition]) -> list[AlertChange]:
    """Open and end alerts, and record milestones, as the engine found on live data."""
    out: list[AlertChange] = []
    for tr in transitions:
        if tr.event == "milestone":
            record_milestone(cur, tr)
        elif tr.event == "opened":
            assert tr.started_ms is not None
            interval = Interval(tr.type, tr.started_ms, tr.ended_ms, tr.crossed_ms, tr.lon, tr.lat, tr.late,
                                tr.country, dict(tr.detail) | _position(tr))
            out += changed(cur, "opened", INSERT, insert_params(interval, tr.shipment_id, tr.device_id))
        else:
            out += changed(cur, "ended", _END, {"ended": tr.ended_ms, "shipment": tr.shipment_id,
                                                "device": tr.device_id, "type": tr.type})
    return out


def record_milestone(cur: psycopg.Cursor[Any], tr: Transition) -> None:
    """A timeline event (arrived, departed, border crossed) for every shipment on the truck."""
    at = tr.started_ms if tr.started_ms is not None else tr.crossed_ms
    # confirmed_ms: the fix that confirmed it (hysteresis): a replay replaces what its window confirmed.
    detail = dict(tr.detail) | _position(tr) | {"confirmed_ms": tr.crossed_ms}
    cur.execute(_MILESTONE, {"device": tr.device_id, "kind": tr.type, "position": tr.office, "country": tr.country,
                             "at": at, "lon": tr.lon, "lat": tr.lat, "late": tr.late,
                             "shipment": tr.shipment_id, "detail": Jsonb(detail)})


def _position(tr: Transition) -> dict[str, Any]:
    return {"position": tr.office} if tr.office >= 0 else {}


def save_states(cur: psycopg.Cursor[Any], states: dict[str, DeviceState]) -> None:
    """Each tracker's detector state, with readable progress for the API, in one upsert."""
    if not states:
        return
    _STAGED_STATES.run(cur, ((d, s.shipment_id, dumps(s), s.chainage_m, s.distance_m, s.last_ts)
                             for d, s in sorted(states.items())), _SAVE_STATES)
