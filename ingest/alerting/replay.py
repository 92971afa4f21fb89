"""Evaluate a tracker again from stored fixes: after late data from the nearest
checkpoint before it (then reconcile the alerts of the replayed window), from
departure when there is none, or from its saved state after a failed evaluation."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import numpy as np
import psycopg

from geofence import engine
from geofence import replay as checkpointed
from geofence.engine import Binding, Track, Transition
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import DeviceState, loads
from ingest import checkpoints, metrics
from ingest.alerting import apply
from ingest.alerting.apply import TRUCK
from ingest.alerting.live import apply_transitions, record_milestone
from ingest.alerting.reconcile import Interval, Stored, intervals, reconcile
from protocol.alerts import AlertChange

_TRACK = """
SELECT (extract(epoch FROM ts) * 1000)::int8, lon, lat FROM fixes
WHERE device_id = %s AND ts >= to_timestamp(%s / 1000.0) ORDER BY ts, seq
"""
_AFTER = """
SELECT (extract(epoch FROM ts) * 1000)::int8, lon, lat FROM fixes
WHERE device_id = %s AND ts > to_timestamp(%s / 1000.0) AND ts >= to_timestamp(%s / 1000.0) ORDER BY ts, seq
"""
# The same, read only up to a fix time: most late stretches converge on one of the
# first checkpoints after them, and the rest of the trip need not be read.
_BETWEEN = _AFTER.replace("ORDER BY", "AND ts <= to_timestamp(%s / 1000.0) ORDER BY")
# Checkpoints past the newest late fix a replay first reads up to before it reads the whole rest.
_READ_AHEAD = 3
_SAVED = "SELECT state FROM geofence_state WHERE device_id = %s AND shipment_id = %s"
# The tracker's condition alerts with where their opening was decided (crossed_at).
_WINDOW_ALERTS = """
SELECT id, type, (extract(epoch FROM started_at) * 1000)::int8, (extract(epoch FROM ended_at) * 1000)::int8, status,
       contested_reason IS NOT NULL, (extract(epoch FROM crossed_at) * 1000)::int8, lon, lat, late
FROM alerts
WHERE shipment_id = %s AND device_id = %s AND type = ANY(%s) AND NOT (detail ? 'withdrawn')
ORDER BY crossed_at, id
"""


# The engine's milestones of the tracker on its truck's shipments, from a fix time to another:
# a replay recomputes them.
_DROP_MILESTONES = f"""
DELETE FROM shipment_events
WHERE shipment_id IN {TRUCK.format(sid="%(shipment)s", device="%(device)s")} AND device_id = %(device)s
  AND kind IN ('arrived', 'departed', 'border_crossed')
  AND (detail->>'confirmed_ms')::int8 BETWEEN %(from)s AND %(to)s
"""
_FOREVER_MS = 2**53


def replace_milestones(cur: psycopg.Cursor[Any], binding: Binding, device_id: str, transitions: list[Transition],
                       from_ms: int, to_ms: int) -> None:
    """The tracker's milestones confirmed between two fix times (epoch ms) replaced by those a
    replay found (geofence.replay.splice_milestones, in the database)."""
    cur.execute(_DROP_MILESTONES, {"shipment": binding.shipment_id, "device": device_id, "from": from_ms,
                                   "to": to_ms})
    for tr in transitions:
        if tr.event == "milestone":
            record_milestone(cur, tr)


def from_departure(cur: psycopg.Cursor[Any], network: Network, rules: Rules, device_id: str, binding: Binding,
                   fresh: Track) -> tuple[list[AlertChange], DeviceState | None]:
    """The whole trip again; the stored alerts made to agree (see reconcile.py)."""
    metrics.GEOFENCE_REPLAYS.inc()
    track = _stored_track(cur, _TRACK, (device_id, binding.departed_ms), fresh)
    if track is None:
        return [], None
    transitions, states = engine.evaluate(
        network, rules, {device_id: (binding, DeviceState(shipment_id=binding.shipment_id), track)})
    late = (int(fresh.t.min()), int(fresh.t.max()))
    operations = reconcile(apply.stored(cur, binding.shipment_id, device_id), intervals(transitions), late)
    replace_milestones(cur, binding, device_id, transitions, binding.departed_ms, _FOREVER_MS)
    return apply.apply(cur, binding.shipment_id, device_id, operations), states.get(device_id)


def after_late_fixes(cur: psycopg.Cursor[Any], network: Network, rules: Rules, device_id: str, binding: Binding,
                     fresh: Track) -> tuple[list[AlertChange], DeviceState | None]:
    """Fixes older than what the tracker was evaluated on: evaluate again from the
    nearest checkpoint before them until the state meets a later checkpoint or
    the saved state (geofence/replay.py); reconcile only the alerts that window
    decides and replace its checkpoints. From departure without a saved state."""
    live = _saved(cur, device_id, binding)
    if live is None or len(fresh.t) == 0:
        return from_departure(cur, network, rules, device_id, binding, fresh)
    metrics.GEOFENCE_REPLAYS.inc()
    earliest, newest = int(fresh.t.min()), int(fresh.t.max())
    (around,) = checkpoints.load(cur, [checkpoints.Request(device_id, binding.shipment_id, earliest)])
    later = [c for c in around.later if c.last_ts < live.last_ts] + [checkpointed.Checkpoint(live.last_ts, live)]
    since = around.start.last_ts if around.start is not None else binding.departed_ms - 1
    result = _replay_read_ahead(cur, network, rules, device_id, binding, fresh, around.start, later, since, newest)
    if result is None:
        return [], live
    rows = [_Row(*row) for row in cur.execute(_WINDOW_ALERTS, (binding.shipment_id, device_id,
                                                               list(apply.CONDITION_TYPES))).fetchall()]
    inside, computed = _window(rows, result)
    changes = apply.apply(cur, binding.shipment_id, device_id, reconcile(inside, computed, (earliest, newest)))
    replace_milestones(cur, binding, device_id, result.milestones, result.from_ms, result.to_ms)
    checkpoints.replace(cur, [checkpoints.Window(device_id, binding.shipment_id, result.from_ms, result.to_ms,
                                                 result.checkpoints)])
    return changes, live if result.state is None else result.state


def _replay_read_ahead(cur: psycopg.Cursor[Any], network: Network, rules: Rules, device_id: str,
                       binding: Binding, fresh: Track, start: checkpointed.Checkpoint | None,
                       later: list[checkpointed.Checkpoint], since: int,
                       newest: int) -> checkpointed.ReplayResult | None:
    """Replay reading fixes only up to a few checkpoints past the late ones; read the
    rest of the trip only if the state has not converged by then (rare: a late fix
    inside a long stop). None when there is nothing stored to replay."""
    ahead = [c for c in later if c.last_ts >= newest][:_READ_AHEAD]
    if len(ahead) == _READ_AHEAD and ahead[-1] is not later[-1]:
        bound = ahead[-1].last_ts
        track = _stored_track(cur, _BETWEEN, (device_id, since, binding.departed_ms, bound), fresh)
        if track is not None:
            result = checkpointed.replay(network, rules, binding, start, [c for c in later if c.last_ts <= bound],
                                         track, newest, device_id=device_id)
            if result.converged:
                return result
    track = _stored_track(cur, _AFTER, (device_id, since, binding.departed_ms), fresh)
    if track is None:
        return None
    return checkpointed.replay(network, rules, binding, start, later, track, newest, device_id=device_id)


class _Row(NamedTuple):
    id: int
    type: str
    started_ms: int
    ended_ms: int | None
    status: str
    contested: bool
    crossed_ms: int
    lon: float | None
    lat: float | None
    late: bool

    def stored(self) -> Stored:
        return Stored(self.id, self.type, self.started_ms, self.ended_ms, self.status, self.contested)


def _window(rows: list[_Row], result: checkpointed.ReplayResult) -> tuple[list[Stored], list[Interval]]:
    """The stored alerts a replay window decides and what it computed for them: an
    alert carried into the window keeps its opening, one still open at its end
    keeps the ending decided after it (geofence.replay.splice, on alert rows)."""
    inside = {r.id: r for r in rows if _inside(result.decided(r.type), r.crossed_ms)}
    computed: list[Interval] = []
    for c in result.intervals:
        lo, hi = result.decided(c.type)
        if c.carried_in:
            carried = _opened_last(rows, c.type, lo - 1)
            if carried is None:
                continue  # nothing stored was open there: leave the stored alerts alone
            inside[carried.id] = carried
            ended = carried.ended_ms if c.open_at_end and result.converged else c.ended_ms
            computed.append(Interval(c.type, carried.started_ms, ended, carried.crossed_ms, carried.lon, carried.lat,
                                     carried.late, c.country, c.detail))
            continue
        assert c.started_ms is not None and c.crossed_ms is not None
        ended = c.ended_ms
        if c.open_at_end and result.converged:
            still = _opened_last(rows, c.type, hi)
            ended = still.ended_ms if still is not None else None
        computed.append(Interval(c.type, c.started_ms, ended, c.crossed_ms, c.lon, c.lat, c.late, c.country, c.detail))
    return [r.stored() for r in inside.values()], computed


def _inside(bounds: tuple[int, int], ms: int) -> bool:
    return bounds[0] <= ms <= bounds[1]


def _opened_last(rows: list[_Row], alert_type: str, until_ms: int) -> _Row | None:
    """The alert of this type whose opening was decided last at or before ``until_ms``."""
    found = [r for r in rows if r.type == alert_type and r.crossed_ms <= until_ms]
    return max(found, key=lambda r: (r.crossed_ms, r.id)) if found else None


def _saved(cur: psycopg.Cursor[Any], device_id: str, binding: Binding) -> DeviceState | None:
    """The tracker's saved live state for this shipment, if it decodes."""
    row = cur.execute(_SAVED, (device_id, binding.shipment_id)).fetchone()
    try:
        return loads(bytes(row[0])) if row else None
    except msgspec.DecodeError:
        return None


def from_saved(cur: psycopg.Cursor[Any], network: Network, rules: Rules, device_id: str, binding: Binding,
               fresh: Track | None) -> tuple[list[AlertChange], DeviceState | None]:
    """Every stored fix after the saved state (those of a failed evaluation, and the
    batch's), evaluated live; from departure if there is no usable saved state."""
    state = _saved(cur, device_id, binding)
    empty = Track.of([], [], [])
    if state is None:
        return from_departure(cur, network, rules, device_id, binding, fresh if fresh is not None else empty)
    track = _stored_track(cur, _AFTER, (device_id, state.last_ts, binding.departed_ms), fresh or empty)
    if track is None:
        return [], state
    transitions, states = engine.evaluate(network, rules, {device_id: (binding, state, track)})
    return apply_transitions(cur, transitions), states.get(device_id, state)


def _stored_track(cur: psycopg.Cursor[Any], sql: str, params: tuple[Any, ...], fresh: Track) -> Track | None:
    """Stored fixes as a track; those not in this batch count as backlog (they were
    stored before the records that made this evaluation necessary)."""
    rows = cur.execute(sql, params).fetchall()
    if not rows:
        return None
    t = np.array([ts for ts, _lon, _lat in rows], dtype=np.int64)
    in_batch = dict(zip(fresh.t.tolist(), fresh.backlog.tolist(), strict=True))
    backlog = [in_batch.get(ts, True) for ts in t.tolist()]
    return Track.of(t.tolist(), [lon for _ts, lon, _lat in rows], [lat for _ts, _lon, lat in rows], backlog)
