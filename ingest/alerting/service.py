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

import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from geofence.rules import Rules
from geofence.state import DeviceState
from ingest import metrics
from ingest.alerting import health, seals, signal_lost, suspect, tamper, trackers
from ingest.alerting.changes import Outcome
from ingest.alerting.live import Fresh, fresh_fixes, save_states
from ingest.alerting.relay import Delivery, Relay
from ingest.alerting.sweep import sweep
from ingest.batch import Batch
from ingest.countries import CountryCache
from ingest.registry import Registry, RegistryCache, behind, load_states
from ingest.store import mark_unevaluated, unevaluated
from protocol import alerts
from protocol.topics import alert_topic

log = structlog.get_logger("ingest.alerting")


class Alerting:
    """Geofence state of in-transit shipments, kept in step with the database."""

    def __init__(self, rules: Rules, publish: Callable[[str, bytes], Delivery],
                 suspect_seq_jump: int = 100_000, countries: CountryCache | None = None) -> None:
        self._rules = rules
        self._suspect_seq_jump = suspect_seq_jump
        self._publish = publish
        self._relay = Relay()
        self._cache = RegistryCache(rules, countries)
        self._states: dict[str, DeviceState] = {}
        # Trackers whose evaluation failed: evaluated next batch from their saved state.
        self._retry: set[str] = set()
        # time.monotonic() of the last battery forecast. The first comes one interval after start,
        # not in the first sweep: it reads every active device's readings inside the pipeline's
        # thread, and a restart (a crash, a deploy) must get to the broker's backlog first.
        self._battery_at = time.monotonic()

    def refresh(self, cur: psycopg.Cursor[Any]) -> Registry:
        """Reload routes, zones and shipments if they changed since the last batch."""
        registry, states = self._cache.refresh(cur)
        if states is not None:
            self._states = states
            # Fixes stored after a saved state were not evaluated (a failure, then a restart).
            self._retry.update(behind(cur, registry))
        return registry

    def on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                 new_seals: set[tuple[str, int]], stale: frozenset[str] = frozenset()) -> Outcome:
        """Evaluate the records this batch newly stored; write alerts and states (no commit).

        ``stale``: devices another worker has evaluated since this one last committed
        them (the store tells, from the device rows it locked): their cached states
        are replaced by the saved ones before anything is evaluated."""
        with metrics.GEOFENCE_SECONDS.time():
            return self._on_batch(cur, batch, new_fixes, new_seals, stale)

    def _on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                  new_seals: set[tuple[str, int]], stale: frozenset[str]) -> Outcome:
        registry = self.refresh(cur)
        if stale:
            self._reload(cur, registry, stale)
        fresh = fresh_fixes(batch, new_fixes, registry)
        self._retry = {d for d in self._retry if d in registry.trackers}  # e-seals and finished trips drop out
        retry = {d for d in self._retry if registry.trackers[d].binding is not None}
        suspect.flag(cur, suspect.late_fixes(fresh, self._states), self._suspect_seq_jump)
        out = trackers.evaluate(cur, registry, self._rules, self._states, fresh, retry)
        out.changes += seals.seal_events(cur, batch, new_seals, registry)
        out.changes += health.device_health(cur, batch, new_fixes, new_seals, self._rules.signal_lost_s)
        out.changes += tamper.refused_records(cur, batch, registry)
        out.changes += signal_lost.end_lost(cur, _newest(fresh), self._rules.signal_lost_s)
        save_states(cur, out.states)
        mark_unevaluated(cur, out.failed)  # another worker may handle these next: it must replay them
        return out

    def _reload(self, cur: psycopg.Cursor[Any], registry: Registry, stale: frozenset[str]) -> None:
        """Saved states instead of the cached ones, in one query (none saved: none cached);
        a tracker whose evaluation failed on another worker is replayed from it."""
        for device_id in stale:
            self._states.pop(device_id, None)
        self._states.update(load_states(cur, registry, stale))
        self._retry.update(unevaluated(cur, stale))

    def adopt(self, out: Outcome) -> None:
        """After commit: take the new states and tell the officers' apps."""
        self._states.update(out.states)
        self._retry = (self._retry - set(out.states)) | out.failed
        for device_id in out.failed:
            self._states.pop(device_id, None)
        deliveries = [self._publish(alert_topic(change.type), alerts.encode(change)) for change in out.changes]
        for change in out.changes:
            metrics.ALERTS.labels(change.type, change.event).inc()
        if out.relayed is not None:
            self._relay.handed(out.relayed, deliveries)

    def forget(self, device_ids: list[str]) -> None:
        """After a batch whose alerting failed as a whole: its devices are retried next
        batch from their saved states (those that are in-transit trackers)."""
        for device_id in device_ids:
            self._states.pop(device_id, None)
        self._retry.update(device_ids)

    def lead(self) -> None:
        """This worker was just elected: the relay resumes from the stored cursor (another
        leader may have moved it; what that leader published and the broker had not yet
        acknowledged is published again: at least once)."""
        self._relay = Relay()

    def workflow(self, cur: psycopg.Cursor[Any]) -> Outcome:
        """Officers' acknowledgements and resolutions not yet relayed."""
        read = self._relay.poll(cur)
        return Outcome(changes=read.changes, relayed=read)

    def sweep(self, cur: psycopg.Cursor[Any], drained: bool) -> Outcome:
        """Wall-clock rules; signal lost only once ingest has drained its backlog (Pipeline.drained)."""
        now = time.monotonic()
        battery = now - self._battery_at >= self._rules.battery_sweep_s
        if battery:
            self._battery_at = now
        return Outcome(changes=sweep(cur, self._rules, drained, battery))


def _newest(fresh: Fresh) -> dict[str, int]:
    """Each tracker's newest new fix time (epoch ms)."""
    return dict(zip(fresh.ids, fresh.newest().tolist(), strict=True))
