"""The geofence engine on every committed batch, and the alerts it raises.

Runs inside the batch's transaction: the records, the alert rows and the new
detector states commit together, so a crash or a redelivery can neither lose
nor repeat an alert. Only records the batch newly stored are evaluated (the
INSERT reports them), so duplicates change nothing. A tracker whose new fixes
are older than what it has already been evaluated on (backlog arriving out of
order) is replayed from its shipment's departure and its alerts reconciled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import structlog

from geofence import engine
from geofence.engine import Track, Transition
from geofence.rules import Rules
from geofence.state import DeviceState, dumps
from ingest import metrics
from ingest.batch import Batch
from ingest.registry import Registry, load_network, load_registry, load_states
from protocol import alerts
from protocol.alerts import SEVERITY, AlertChange, alert_change
from protocol.topics import alert_topic

log = structlog.get_logger("ingest.alerting")

CONDITION_TYPES = ("route_deviation", "unscheduled_stop")
_RETURNING = "SELECT id FROM changed ORDER BY id"
# The changed alerts as every consumer sees them (protocol.alerts.Alert); a later
# statement of the same transaction sees what the modifying one did.
_VIEW = "SELECT * FROM alert_view WHERE id = ANY(%s) ORDER BY id"
_MS = "to_timestamp({} / 1000.0)"
_VERSION = "SELECT geometry, shipments FROM geofence_version"
_INSERT = f"""
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, ended_at, crossed_at, lon, lat, severity, late,
                        source_seq)
    VALUES (%s, %s, %s, {_MS.format("%s::int8")}, {_MS.format("%s::int8")}, {_MS.format("%s::int8")}, %s, %s, %s,
            %s, %s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) {_RETURNING}
"""
_END = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {_MS.format("%s::int8")}), updated_at = now()
    WHERE shipment_id = %s AND device_id = %s AND type = %s AND ended_at IS NULL
    RETURNING *
) {_RETURNING}
"""
_UPDATE = f"""
WITH changed AS (
    UPDATE alerts SET started_at = {_MS.format("%s::int8")}, ended_at = {_MS.format("%s::int8")},
                      crossed_at = {_MS.format("%s::int8")}, lon = %s, lat = %s, updated_at = now()
    WHERE id = %s
    RETURNING *
) {_RETURNING}
"""
_WITHDRAW = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = started_at, updated_at = now(),
                      detail = detail || '{{"withdrawn": true}}'::jsonb
    WHERE id = %s
    RETURNING *
) {_RETURNING}
"""
_EXISTING = """
SELECT id, type, (extract(epoch FROM started_at) * 1000)::int8, (extract(epoch FROM ended_at) * 1000)::int8
FROM alerts
WHERE shipment_id = %s AND device_id = %s AND type = ANY(%s) AND NOT (detail ? 'withdrawn')
ORDER BY started_at
"""
_TRACK = """
SELECT (extract(epoch FROM ts) * 1000)::int8, lon, lat, seq FROM fixes
WHERE device_id = %s AND ts >= to_timestamp(%s / 1000.0) ORDER BY ts, seq
"""
_SAVE_STATES = f"""
INSERT INTO geofence_state (device_id, shipment_id, state, chainage_m, distance_m, last_fix_at, updated_at)
SELECT id, sid, st, ch, dist, {_MS.format("ts")}, now()
FROM unnest(%s::text[], %s::int8[], %s::bytea[], %s::float8[], %s::float8[], %s::int8[]) AS v(id, sid, st, ch, dist, ts)
ON CONFLICT (device_id) DO UPDATE SET shipment_id = excluded.shipment_id, state = excluded.state,
    chainage_m = excluded.chainage_m, distance_m = excluded.distance_m, last_fix_at = excluded.last_fix_at,
    updated_at = excluded.updated_at
"""
_TRACKER_AT = f"""
SELECT lon, lat FROM fixes
WHERE device_id = %s AND ts <= {_MS.format("%s::int8")} AND ts > {_MS.format("%s::int8")} - interval '30 minutes'
ORDER BY ts DESC LIMIT 1
"""
_BREACH_COVERED = f"""
SELECT 1 FROM alerts WHERE shipment_id = %s AND device_id = %s AND type = 'seal_breach'
AND started_at <= {_MS.format("%s::int8")} AND (ended_at IS NULL OR ended_at >= {_MS.format("%s::int8")})
"""
_REARMED_AFTER = f"""
SELECT (extract(epoch FROM min(ts)) * 1000)::int8 FROM seal_events
WHERE device_id = %s AND event IN ('armed', 'closed') AND ts > {_MS.format("%s::int8")}
"""
_REARM = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = {_MS.format("%s::int8")}, updated_at = now()
    WHERE shipment_id = %s AND device_id = %s AND type = 'seal_breach' AND ended_at IS NULL
      AND started_at <= {_MS.format("%s::int8")}
    RETURNING *
) {_RETURNING}
"""
_SIGNAL_BACK = f"""
WITH changed AS (
    UPDATE alerts SET ended_at = greatest(started_at, {_MS.format("v.ms")}), updated_at = now()
    FROM unnest(%s::text[], %s::int8[]) AS v(device_id, ms)
    WHERE alerts.device_id = v.device_id AND alerts.type = 'signal_lost' AND alerts.ended_at IS NULL
    RETURNING alerts.*
) {_RETURNING}
"""
# Wall-clock rules. The sweep also ends the conditions of shipments that are no
# longer in transit: an arrived truck is not deviating any more.
_SWEEP_SIGNAL_LOST = """
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'signal_lost', s.id, s.tracker_id, q.since, now(), lp.lat, lp.lon, 'medium'
    FROM shipments s
    LEFT JOIN devices d ON d.device_id = s.tracker_id
    LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    CROSS JOIN LATERAL (SELECT greatest(d.last_seen, s.status_changed_at) AS since) q
    WHERE s.status = 'in_transit' AND q.since <= now() - make_interval(secs => %s)
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) """ + _RETURNING
# The officers' workflow (ack, resolve) happens in the API; its changes reach
# the alert topic through the numbered alert_events, read here.
_WORKFLOW_START = "SELECT coalesce(max(seq), 0) FROM alert_events"
_WORKFLOW = """
SELECT e.seq AS event_seq, e.event AS event_kind, v.* FROM alert_events e JOIN alert_view v ON v.id = e.alert_id
WHERE e.seq > %s AND e.event IN ('acknowledged', 'resolved') ORDER BY e.seq
"""
_SWEEP_OVERDUE = """
WITH changed AS (
    INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, lat, lon, severity)
    SELECT 'transit_overdue', s.id, s.tracker_id, s.deadline, now(), lp.lat, lp.lon, 'medium'
    FROM shipments s LEFT JOIN latest_positions lp ON lp.device_id = s.tracker_id
    WHERE s.status = 'in_transit' AND s.deadline <= now()
      AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.shipment_id = s.id AND a.type = 'transit_overdue')
    ON CONFLICT (shipment_id, device_id, type) WHERE ended_at IS NULL DO NOTHING
    RETURNING *
) """ + _RETURNING
_SWEEP_FINISHED = """
WITH changed AS (
    UPDATE alerts a SET ended_at = greatest(a.started_at, coalesce(s.arrived_at, s.closed_at, now())),
                        updated_at = now()
    FROM shipments s
    WHERE s.id = a.shipment_id AND s.status IN ('arrived', 'closed') AND a.ended_at IS NULL
      AND a.type <> 'seal_breach'
    RETURNING a.*
) """ + _RETURNING



@dataclass
class Outcome:
    """What one batch did, to publish and adopt once its transaction commits."""

    changes: list[AlertChange] = field(default_factory=list)
    states: dict[str, DeviceState] = field(default_factory=dict)


class Alerting:
    """Geofence state of in-transit shipments, kept in step with the database."""

    def __init__(self, rules: Rules, publish: Callable[[str, bytes], None]) -> None:
        self._rules = rules
        self._publish = publish
        self._workflow_id: int | None = None
        self._registry: Registry | None = None
        self._version: tuple[int, int] = (-1, -1)
        self._states: dict[str, DeviceState] = {}

    # ------------------------------------------------------------ registry

    def refresh(self, cur: psycopg.Cursor[Any]) -> Registry:
        """Reload routes, zones and shipments if they changed since the last batch."""
        row = cur.execute(_VERSION).fetchone()
        assert row is not None
        geometry, shipments = row
        if self._registry is None or (geometry, shipments) != self._version:
            same_geometry = self._registry is not None and self._version[0] == geometry
            network = self._registry.network if self._registry and same_geometry else load_network(cur)
            registry = load_registry(cur, network)
            self._states = load_states(cur, registry)
            self._registry = registry
            self._version = (geometry, shipments)
            metrics.GEOFENCE_SHIPMENTS.set(len(registry.shipments))
            log.info("geofence loaded", routes=len(network.route_keys), zones=len(network.zone_keys),
                     in_transit=len(registry.shipments))
        return self._registry

    # --------------------------------------------------------------- batch

    def on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                 new_seals: set[tuple[str, int]]) -> Outcome:
        """Evaluate the records this batch newly stored; write alerts and states (no commit)."""
        with metrics.GEOFENCE_SECONDS.time():
            return self._on_batch(cur, batch, new_fixes, new_seals)

    def _on_batch(self, cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                  new_seals: set[tuple[str, int]]) -> Outcome:
        registry = self.refresh(cur)
        out = Outcome()
        tracks = _tracks(batch, new_fixes, registry)
        live: dict[str, tuple[engine.Binding, DeviceState, Track]] = {}
        for device_id, track in tracks.items():
            shipment = registry.trackers[device_id]
            assert shipment.binding is not None
            state = self._states.get(device_id)
            if state is None or state.shipment_id != shipment.id or int(track.t.min()) <= state.last_ts:
                self._replay(cur, device_id, shipment.binding, track, out)
            else:
                live[device_id] = (shipment.binding, state, track)
        if live:
            transitions, states = engine.evaluate(registry.network, self._rules, live)
            out.states.update(states)
            for tr in transitions:
                out.changes.extend(self._apply(cur, tr))
        self._seal_events(cur, batch, new_seals, registry, out)
        self._signal_back(cur, batch, registry, out)
        if out.states:
            saved = [out.states[i] for i in sorted(out.states)]
            cur.execute(_SAVE_STATES, (sorted(out.states), [s.shipment_id for s in saved],
                                       [dumps(s) for s in saved], [s.chainage_m for s in saved],
                                       [s.distance_m for s in saved], [s.last_ts for s in saved]))
        return out

    def adopt(self, out: Outcome) -> None:
        """After commit: take the new states and tell the officers' apps."""
        self._states.update(out.states)
        for change in out.changes:
            self._publish(alert_topic(change.type), alerts.encode(change))
            metrics.ALERTS.labels(change.type, change.event).inc()

    def forget(self, device_ids: list[str]) -> None:
        """Drop in-memory states (after an engine failure): these trackers are replayed next time."""
        for device_id in device_ids:
            self._states.pop(device_id, None)

    def _apply(self, cur: psycopg.Cursor[Any], tr: Transition) -> list[AlertChange]:
        if tr.event == "opened":
            rows = _rows(cur, _INSERT, (tr.type, tr.shipment_id, tr.device_id, tr.started_ms, tr.ended_ms,
                                         tr.crossed_ms, tr.lon, tr.lat, SEVERITY[tr.type], tr.late, None))
        else:
            rows = _rows(cur, _END, (tr.ended_ms, tr.shipment_id, tr.device_id, tr.type))
        return [alert_change(tr.event, row) for row in rows]

    def _replay(self, cur: psycopg.Cursor[Any], device_id: str, binding: engine.Binding, fresh: Track,
                out: Outcome) -> None:
        """Evaluate the whole trip again from the stored fixes and reconcile its alerts."""
        rows = cur.execute(_TRACK, (device_id, binding.departed_ms)).fetchall()
        metrics.GEOFENCE_REPLAYS.inc()
        if not rows:
            return
        t = np.array([r[0] for r in rows], dtype=np.int64)
        # Fixes stored before this batch arrived after later ones had been evaluated: late.
        in_batch = dict(zip(fresh.t.tolist(), fresh.backlog.tolist(), strict=False))
        backlog = [in_batch.get(ts, True) for ts in t.tolist()]
        track = Track.of(t.tolist(), [r[1] for r in rows], [r[2] for r in rows], backlog)
        registry = self._registry
        assert registry is not None
        transitions, states = engine.evaluate(
            registry.network, self._rules, {device_id: (binding, DeviceState(shipment_id=binding.shipment_id), track)})
        out.states.update(states)
        existing = cur.execute(_EXISTING, (binding.shipment_id, device_id, list(CONDITION_TYPES))).fetchall()
        out.changes.extend(_reconcile(cur, binding.shipment_id, device_id, _intervals(transitions), existing))

    def _seal_events(self, cur: psycopg.Cursor[Any], batch: Batch, new_seals: set[tuple[str, int]],
                     registry: Registry, out: Outcome) -> None:
        rows = [(row, backlog) for row, backlog in zip(batch.seals, batch.seal_backlog, strict=True)
                if row[0] in registry.seals and (row[0], row[1]) in new_seals]
        for (device_id, seq, ts, _seal, event, lat, lon, _bat, _rcv), backlog in sorted(rows, key=lambda r: r[0][2]):
            shipment = registry.seals[device_id]
            binding = shipment.binding
            if binding is None or ts < binding.departed_ms:
                continue
            if event in engine.REARM_EVENTS:
                for row in _rows(cur, _REARM, (ts, shipment.id, device_id, ts)):
                    out.changes.append(alert_change("ended", row))
                continue
            if lon is None or lat is None:
                found = cur.execute(_TRACKER_AT, (shipment.tracker_id, ts, ts)).fetchone()
                lon, lat = found if found else (None, None)
            if not engine.is_breach(registry.network, binding, event, lon, lat):
                continue
            if cur.execute(_BREACH_COVERED, (shipment.id, device_id, ts, ts)).fetchone():
                continue  # the same breach, reported again before the seal was re-armed
            rearmed = cur.execute(_REARMED_AFTER, (device_id, ts)).fetchone()
            ended = rearmed[0] if rearmed else None
            params = ("seal_breach", shipment.id, device_id, ts, ended, ts, lon, lat, "critical", backlog, seq)
            out.changes.extend(alert_change("opened", row) for row in _rows(cur, _INSERT, params))

    def _signal_back(self, cur: psycopg.Cursor[Any], batch: Batch, registry: Registry, out: Outcome) -> None:
        back = sorted(d for d in batch.last_seen if d in registry.trackers)
        if back:
            rows = _rows(cur, _SIGNAL_BACK, (back, [batch.last_seen[d] for d in back]))
            out.changes.extend(alert_change("ended", row) for row in rows)

    # --------------------------------------------------------------- sweep

    def workflow(self, cur: psycopg.Cursor[Any]) -> Outcome:
        """Officers' acknowledgements and resolutions since the last call (none before the first)."""
        out = Outcome()
        if self._workflow_id is None:
            row = cur.execute(_WORKFLOW_START).fetchone()
            self._workflow_id = int(row[0]) if row else 0
            return out
        rows = cur.execute(_WORKFLOW, (self._workflow_id,)).fetchall()
        names = [c.name for c in cur.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in rows]
        out.changes.extend(alert_change(row["event_kind"], row) for row in rows)
        if rows:
            self._workflow_id = int(rows[-1]["event_seq"])
        return out

    def sweep(self, cur: psycopg.Cursor[Any]) -> Outcome:
        """Wall-clock rules: signal lost, transit overdue, conditions of finished shipments."""
        out = Outcome()
        for sql, params, event in ((_SWEEP_SIGNAL_LOST, (self._rules.signal_lost_s,), "opened"),
                                   (_SWEEP_OVERDUE, (), "opened"), (_SWEEP_FINISHED, (), "ended")):
            out.changes.extend(alert_change(event, row) for row in _rows(cur, sql, params))
        return out


def _tracks(batch: Batch, new_fixes: set[tuple[str, int]], registry: Registry) -> dict[str, Track]:
    """The newly stored fixes of in-transit trackers, per tracker (whole messages at a time)."""
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device_id, a, b in batch.fix_runs:
        shipment = registry.trackers.get(device_id)
        if shipment is not None and shipment.binding is not None:
            runs[device_id].append((a, b))
    if not runs:
        return {}
    rows = batch.fixes
    every_row_new = len(new_fixes) == len(rows)  # the usual case: no duplicate to skip
    out = {}
    for device_id, spans in runs.items():
        picked = [rows[i] for a, b in spans for i in range(a, b)
                  if every_row_new or (device_id, rows[i][1]) in new_fixes]
        flags = [batch.fix_backlog[i] for a, b in spans for i in range(a, b)
                 if every_row_new or (device_id, rows[i][1]) in new_fixes]
        if picked:
            out[device_id] = Track.of([r[2] for r in picked], [r[4] for r in picked], [r[3] for r in picked], flags)
    return out


def _rows(cur: psycopg.Cursor[Any], sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Run a statement that changes alerts (``... SELECT id FROM changed``) and read the changed alerts."""
    ids = [row[0] for row in cur.execute(sql, params).fetchall()]
    if not ids:
        return []
    cur.execute(_VIEW, (ids,))
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass
class _Interval:
    type: str
    started_ms: int
    crossed_ms: int
    lon: float
    lat: float
    late: bool
    ended_ms: int | None = None


def _intervals(transitions: list[Transition]) -> list[_Interval]:
    """Pair each opening with the ending that follows it."""
    found: list[_Interval] = []
    open_: dict[str, _Interval] = {}
    for tr in transitions:
        if tr.event == "opened":
            assert tr.started_ms is not None
            open_[tr.type] = _Interval(tr.type, tr.started_ms, tr.crossed_ms, tr.lon, tr.lat, tr.late)
            found.append(open_[tr.type])
        elif tr.type in open_:
            open_.pop(tr.type).ended_ms = tr.ended_ms
    return found


def _reconcile(cur: psycopg.Cursor[Any], shipment_id: int, device_id: str, computed: list[_Interval],
               existing: list[tuple[int, str, int, int | None]]) -> list[AlertChange]:
    """Make the stored alerts of one tracker equal ``computed``: an alert that
    overlaps a computed interval of its type is the same alert (its id and
    workflow status stay), a new interval is inserted, a stored alert the full
    track no longer supports is withdrawn."""
    changes: list[AlertChange] = []
    unmatched = list(existing)
    for c in computed:
        c_end = c.ended_ms if c.ended_ms is not None else 2**62
        match = next((e for e in unmatched if e[1] == c.type and e[2] <= c_end
                      and (e[3] if e[3] is not None else 2**62) >= c.started_ms), None)
        if match is None:
            params = (c.type, shipment_id, device_id, c.started_ms, c.ended_ms, c.crossed_ms, c.lon, c.lat,
                      SEVERITY[c.type], c.late, None)
            changes.extend(alert_change("opened", row) for row in _rows(cur, _INSERT, params))
            continue
        unmatched.remove(match)
        if (match[2], match[3]) != (c.started_ms, c.ended_ms):
            rows = _rows(cur, _UPDATE, (c.started_ms, c.ended_ms, c.crossed_ms, c.lon, c.lat, match[0]))
            event = "ended" if match[3] is None and c.ended_ms is not None else "updated"
            changes.extend(alert_change(event, row) for row in rows)
    for e in unmatched:
        changes.extend(alert_change("withdrawn", row) for row in _rows(cur, _WITHDRAW, (e[0],)))
    return changes

