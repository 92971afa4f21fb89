"""A batch's trackers, each contained: one tracker whose evaluation fails (any
exception: a corrupt saved state, a route the engine cannot take, a bug) is
retried next batch from its saved state and counted; the other trackers of the
batch keep their alerts.

The usual batch takes one kernel call for all its live trackers, in one
savepoint. Only if that fails are the trackers evaluated again one by one, each
in its own savepoint, to find the one that fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import structlog

from geofence import engine
from geofence.rules import Rules
from geofence.state import DeviceState
from ingest import checkpoints, metrics
from ingest.alerting import replay
from ingest.alerting.changes import Outcome
from ingest.alerting.live import Fresh, apply_transitions
from ingest.registry import Registry
from ingest.store import TRANSIENT_ERRORS

log = structlog.get_logger("ingest.alerting")


def evaluate(cur: psycopg.Cursor[Any], registry: Registry, rules: Rules, states: Mapping[str, DeviceState],
             fresh: Fresh, retry: set[str]) -> Outcome:
    """Alerts and new states of the trackers with new fixes, and of those to retry."""
    try:
        with cur.connection.transaction():
            return _evaluate(cur, registry, rules, states, fresh, retry)
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        log.warning("geofence evaluation of a batch failed; evaluating its trackers one by one", exc_info=True)
    out = Outcome()
    where = {d: k for k, d in enumerate(fresh.ids)}
    for device_id in sorted(where.keys() | retry):
        k = where.get(device_id)
        one = fresh.one(k) if k is not None else Fresh.empty()
        try:
            with cur.connection.transaction():
                part = _evaluate(cur, registry, rules, states, one, retry & {device_id})
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            metrics.GEOFENCE_TRACKER_ERRORS.inc()
            log.exception("geofence evaluation of a tracker failed; retried next batch from its saved state",
                          device_id=device_id)
            out.failed.add(device_id)
            continue
        out.changes += part.changes
        out.states.update(part.states)
    return out


def _evaluate(cur: psycopg.Cursor[Any], registry: Registry, rules: Rules, states: Mapping[str, DeviceState],
              fresh: Fresh, retry: set[str]) -> Outcome:
    out = Outcome()
    where = {d: k for k, d in enumerate(fresh.ids)}
    earliest = fresh.earliest().tolist()
    live: list[int] = []
    bindings: list[engine.Binding] = []
    before: list[DeviceState] = []
    # fresh.ids are sorted already: only trackers to retry need merging in.
    for device_id in sorted(where.keys() | retry) if retry else fresh.ids:
        binding = registry.trackers[device_id].binding
        assert binding is not None
        k = where.get(device_id)
        state = states.get(device_id)
        if device_id in retry:
            track = fresh.tracks.track(k) if k is not None else None
            changes, new_state = replay.from_saved(cur, registry.network, rules, device_id, binding, track)
        elif k is None:
            continue
        elif state is None or state.shipment_id != binding.shipment_id or earliest[k] <= state.last_ts:
            changes, new_state = replay.after_late_fixes(cur, registry.network, rules, device_id, binding,
                                                         fresh.tracks.track(k))
        else:
            live.append(k)
            bindings.append(binding)
            before.append(state)
            continue
        out.changes += changes
        if new_state is not None:
            out.states[device_id] = new_state
    if live:
        tracks = fresh.tracks if len(live) == len(fresh.ids) else fresh.tracks.take(live)
        transitions, new_states = engine.evaluate_many(registry.network, rules, tracks, bindings, before)
        out.states.update(new_states)
        out.changes += apply_transitions(cur, transitions)
        checkpoints.save_due(cur, dict(zip(tracks.ids, before, strict=True)), new_states)
    return out
