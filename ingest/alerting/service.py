"""The alerting facade the pipeline calls: on every batch, in its transaction;
the sweep and the workflow relay between batches; publication after commit.

The records, the alert rows and the new detector states commit together, so a
crash or a redelivery can neither lose nor repeat an alert. Only records the
batch newly stored are evaluated (the INSERT reports them), so duplicates
change nothing. A tracker whose new fixes are older than what it has already
been evaluated on (backlog arriving out of order) is replayed from its
shipment's departure and its alerts reconciled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from geofence import engine
from geofence.engine import Track
from geofence.rules import Rules
from geofence.state import DeviceState
from ingest import metrics
from ingest.alerting import replay, seals, signal_lost
from ingest.alerting.changes import Outcome
from ingest.alerting.live import Fresh, apply_transitions, fresh_fixes, save_states
from ingest.alerting.relay import Delivery, Relay
from ingest.alerting.sweep import sweep
from ingest.batch import Batch
from ingest.registry import Registry, RegistryCache
from protocol import alerts
from protocol.topics import alert_topic

log = structlog.get_logger("ingest.alerting")


class Alerting:
    """Geofence state of in-transit shipments, kept in step with the database."""

    def __init__(self, rules: Rules, publish: Callable[[str, bytes], Delivery]) -> None:
        self._rules = rules
        self._publish = publish
        self._relay = Relay()
        self._cache = RegistryCache()
        self._states: dict[str, DeviceState] = {}

    def refresh(self, cur: psycopg.Cursor[Any]) -> Registry:
        """Reload routes, zones and shipments if they changed since the last batch."""
        registry, states = self._cache.refresh(cur)
        if states is not None:
            self._states = states
        return registry

    def on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                 new_seals: set[tuple[str, int]]) -> Outcome:
        """Evaluate the records this batch newly stored; write alerts and states (no commit)."""
        with metrics.GEOFENCE_SECONDS.time():
            return self._on_batch(cur, batch, new_fixes, new_seals)

    def _on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                  new_seals: set[tuple[str, int]]) -> Outcome:
        registry = self.refresh(cur)
        out = Outcome()
        fresh = fresh_fixes(batch, new_fixes, registry)
        live: dict[str, tuple[engine.Binding, DeviceState, Track]] = {}
        for device_id, (track, _seqs) in fresh.items():
            binding = registry.trackers[device_id].binding
            assert binding is not None
            state = self._states.get(device_id)
            if state is None or state.shipment_id != binding.shipment_id or int(track.t.min()) <= state.last_ts:
                changes, new_state = replay.from_departure(cur, registry.network, self._rules, device_id, binding,
                                                           track)
                out.changes += changes
                if new_state is not None:
                    out.states[device_id] = new_state
            else:
                live[device_id] = (binding, state, track)
        if live:
            transitions, states = engine.evaluate(registry.network, self._rules, live)
            out.states.update(states)
            out.changes += apply_transitions(cur, transitions)
        out.changes += seals.seal_events(cur, batch, new_seals, registry)
        out.changes += signal_lost.end_lost(cur, _newest(fresh), self._rules.signal_lost_s)
        save_states(cur, out.states)
        return out

    def adopt(self, out: Outcome) -> None:
        """After commit: take the new states and tell the officers' apps."""
        self._states.update(out.states)
        deliveries = [self._publish(alert_topic(change.type), alerts.encode(change)) for change in out.changes]
        for change in out.changes:
            metrics.ALERTS.labels(change.type, change.event).inc()
        if out.relayed is not None:
            self._relay.handed(out.relayed, deliveries)

    def forget(self, device_ids: list[str]) -> None:
        """Drop in-memory states (after an engine failure): these trackers are replayed next time."""
        for device_id in device_ids:
            self._states.pop(device_id, None)

    def workflow(self, cur: psycopg.Cursor[Any]) -> Outcome:
        """Officers' acknowledgements and resolutions not yet relayed."""
        read = self._relay.poll(cur)
        return Outcome(changes=read.changes, relayed=read)

    def sweep(self, cur: psycopg.Cursor[Any], drained: bool) -> Outcome:
        """Wall-clock rules; signal lost only once ingest has drained its backlog (Pipeline.drained)."""
        return Outcome(changes=sweep(cur, self._rules.signal_lost_s, drained))


def _newest(fresh: dict[str, Fresh]) -> dict[str, int]:
    """Each tracker's newest new fix time (epoch ms)."""
    return {device_id: int(f.track.t.max()) for device_id, f in fresh.items()}
