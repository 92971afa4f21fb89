"""Evaluate a tracker again from stored fixes: from departure after late data
(then reconcile its alerts), or from its saved state after a failed evaluation."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import psycopg

from geofence import engine
from geofence.engine import Binding, Track
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import DeviceState, loads
from ingest import metrics
from ingest.alerting import apply
from ingest.alerting.live import apply_transitions
from ingest.alerting.reconcile import intervals, reconcile
from protocol.alerts import AlertChange

_TRACK = """
SELECT (extract(epoch FROM ts) * 1000)::int8, lon, lat FROM fixes
WHERE device_id = %s AND ts >= to_timestamp(%s / 1000.0) ORDER BY ts, seq
"""
_AFTER = """
SELECT (extract(epoch FROM ts) * 1000)::int8, lon, lat FROM fixes
WHERE device_id = %s AND ts > to_timestamp(%s / 1000.0) AND ts >= to_timestamp(%s / 1000.0) ORDER BY ts, seq
"""
_SAVED = "SELECT state FROM geofence_state WHERE device_id = %s AND shipment_id = %s"


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
    return apply.apply(cur, binding.shipment_id, device_id, operations), states.get(device_id)


def from_saved(cur: psycopg.Cursor[Any], network: Network, rules: Rules, device_id: str, binding: Binding,
               fresh: Track | None) -> tuple[list[AlertChange], DeviceState | None]:
    """Every stored fix after the saved state (those of a failed evaluation, and the
    batch's), evaluated live; from departure if there is no usable saved state."""
    row = cur.execute(_SAVED, (device_id, binding.shipment_id)).fetchone()
    try:
        state = loads(bytes(row[0])) if row else None
    except msgspec.DecodeError:
        state = None
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
