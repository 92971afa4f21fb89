"""Replay a tracker after out-of-order fixes from a saved state, not from departure: no IO.

Live evaluation saves a checkpoint (the tracker's state after its newest fix)
in every ``CHECKPOINT_INTERVAL_MS`` slot of fix time (``due``). When fixes arrive that are older
than what the tracker was already evaluated on, ``replay`` restarts from the
newest checkpoint before the earliest of them and evaluates the stored fixes
after it in chunks that end at the later checkpoints' fix times. Once a chunk
ends at or past the newest late fix and its recomputed state equals the
checkpoint saved at that same fix time, everything after it evaluates exactly
as before (evaluation is a function of the state and the fixes that follow):
the replay stops there. A late batch costs the late stretch plus a checkpoint
interval or two, whatever the trip's length.

The result says which fix-time window was re-evaluated and which conditions
were already open when it began (``carried_in``) or were still open when it
ended (``open_at_end``), so that reconciling stored alerts can stay inside
the window; ``splice`` is that reconciliation on plain intervals.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import numpy as np

from geofence import kernels
from geofence.engine import Binding, Track, Transition, evaluate
from geofence.geometry import Network
from geofence.rules import Rules
from geofence.state import CONTEXT, DEFAULT_RULES, RULES, DeviceState
from geofence.types import IntArray
from protocol.alerts import AlertType

CHECKPOINT_INTERVAL_MS = 15 * 60_000


@dataclass(frozen=True)
class Checkpoint:
    """A tracker's state after evaluating its fixes up to fix time ``last_ts`` (epoch ms)."""

    last_ts: int
    state: DeviceState


@dataclass(frozen=True)
class Interval:
    """One alert condition as seen by a replay window; times are fix times (epoch ms).

    ``carried_in``: already open when the window began; its opening (``started_ms``,
    ``crossed_ms``, position) lies before the window and is None here: the stored
    alert keeps it. ``open_at_end``: still open at the window's last fix
    (``ended_ms`` None); when the replay converged, what happened to it after
    the window is unchanged, so the stored alert keeps its end.
    """

    type: AlertType
    started_ms: int | None
    crossed_ms: int | None
    ended_ms: int | None
    lon: float | None
    lat: float | None
    late: bool
    carried_in: bool = False
    open_at_end: bool = False
    office: int = -1  # as Transition's
    country: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayResult:
    """What a replay recomputed.

    The window is the fix times ``[from_ms, to_ms]``: stored alerts whose opening
    it decided (``decided``), and the one carried into it, are replaced by
    ``intervals``. ``state`` is None when the replay converged (the tracker's
    live state stays valid), else the state after the newest stored fix.
    ``checkpoints`` replace every stored checkpoint with ``last_ts`` in the window.
    """

    transitions: list[Transition]
    intervals: list[Interval]
    from_ms: int
    to_ms: int
    converged: bool
    state: DeviceState | None
    checkpoints: list[Checkpoint]
    fixes: int = 0  # evaluated

    @property
    def milestones(self) -> list[Transition]:
        """The window's milestones: they replace the stored ones it decided (``splice_milestones``)."""
        return [t for t in self.transitions if t.event == "milestone"]

    def decided(self, type_: str) -> tuple[int, int]:
        """The crossing times (``crossed_ms``, inclusive bounds) of the openings of
        this type that the window decided.

        The stop detector holds the newest fix back until its successor shows
        whether it is a multipath jump: the window decides about the start
        state's newest fix (``from_ms - 1``), not about its own last one.
        """
        lag = 1 if type_ == "unscheduled_stop" else 0
        return self.from_ms - lag, self.to_ms - lag


def due(previous_ms: int | None, state: DeviceState, interval_ms: int = CHECKPOINT_INTERVAL_MS) -> bool:
    """Does this newly evaluated state deserve a checkpoint: has evaluation moved
    into a new ``interval_ms`` slot of fix time since ``previous_ms`` (the state
    before it, or the newest checkpoint; None: there is none)? Needs no lookup:
    live evaluation keeps about one checkpoint per slot."""
    return previous_ms is None or state.last_ts // interval_ms > previous_ms // interval_ms


def nearest(checkpoints: Sequence[Checkpoint], earliest_late_ms: int) -> tuple[Checkpoint | None, list[Checkpoint]]:
    """The newest checkpoint strictly before the earliest late fix, and those after it (sorted)."""
    ordered = sorted(checkpoints, key=lambda c: c.last_ts)
    k = bisect.bisect_left([c.last_ts for c in ordered], earliest_late_ms)
    return (ordered[k - 1] if k else None), ordered[k:]


def replay(network: Network, rules: Rules, binding: Binding, start: Checkpoint | None, later: Sequence[Checkpoint],
           track: Track, late_until_ms: int, *, device_id: str = "",
           interval_ms: int = CHECKPOINT_INTERVAL_MS) -> ReplayResult:
    """Evaluate the stored fixes after ``start`` (from departure with a fresh state
    when None) until the state converges on a checkpoint at or past the newest
    late fix ``late_until_ms``, or to the end of ``track``.

    ``track`` holds the tracker's stored fixes (late ones included; older ones
    are skipped). ``later``: the stored checkpoints after ``start``; pass the
    live state too (``Checkpoint(live.last_ts, live)``) so that a replay can
    converge on it. Where no checkpoint is within ``interval_ms`` of fix time,
    a new one is made, so that the next late batch finds one near.
    """
    state = start.state if start is not None else DeviceState(shipment_id=binding.shipment_id)
    from_ms = start.last_ts + 1 if start is not None else binding.departed_ms
    track = _after(track, from_ms)
    chunks = _chunks(track.t, start.last_ts if start is not None else binding.departed_ms,
                     [c for c in later if c.last_ts >= from_ms], interval_ms)
    transitions: list[Transition] = []
    saved: list[Checkpoint] = []
    converged = False
    fixes = 0
    for a, b, stored in chunks:
        fixes += b - a
        part = Track(track.t[a:b], track.lon[a:b], track.lat[a:b], track.backlog[a:b])
        found, states = evaluate(network, rules, {device_id: (binding, state, part)})
        transitions.extend(found)
        state = states[device_id]
        saved.append(Checkpoint(state.last_ts, state))
        if stored is not None and state.last_ts >= late_until_ms and same_future(state, stored.state, rules):
            converged = True
            break
    start_state = start.state if start is not None else None
    to_ms = state.last_ts if saved else from_ms - 1
    return ReplayResult(transitions, intervals(start_state, transitions), from_ms, to_ms,
                        converged or not saved, None if converged or not saved else state, saved, fixes)


def _after(track: Track, from_ms: int) -> Track:
    """The fixes at or after ``from_ms``, in fix-time order."""
    t = track.t
    if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):  # as stored: no sort
        a = int(np.searchsorted(t, from_ms, side="left"))
        return Track(t[a:], track.lon[a:], track.lat[a:], track.backlog[a:])
    order = np.argsort(t, kind="stable")
    order = order[t[order] >= from_ms]
    return Track(t[order], track.lon[order], track.lat[order], track.backlog[order])


def _chunks(t: IntArray, prev_ms: int, later: Sequence[Checkpoint],
            interval_ms: int) -> Iterator[tuple[int, int, Checkpoint | None]]:
    """Index ranges of ``t`` (sorted) ending at each stored checkpoint's fix time, or
    at the first fix ``interval_ms`` after the previous end where none is stored;
    with the stored checkpoint that ends there (None for a new one). Lazy: a
    replay that converges early never looks at the rest of the trip."""
    stored = sorted(later, key=lambda c: c.last_ts)
    ends = np.searchsorted(t, np.array([c.last_ts for c in stored], dtype=np.int64), side="right").tolist()
    pos, k, n = 0, 0, len(t)
    while pos < n:
        due_at = int(np.searchsorted(t, prev_ms + interval_ms, side="left"))
        end = int(np.searchsorted(t, t[min(due_at, n - 1)], side="right"))  # equal times stay together
        while k < len(stored) and ends[k] <= pos:
            k += 1  # a checkpoint without a fix after the previous end: replaced, never compared
        match: Checkpoint | None = None
        if k < len(stored) and ends[k] <= end:
            end = ends[k]
            match = stored[k] if int(t[end - 1]) == stored[k].last_ts else None
            k += 1
        yield pos, end, match
        pos, prev_ms = end, int(t[end - 1])


def same_future(a: DeviceState, b: DeviceState, rules: Rules | None = None) -> bool:
    """Will these two states evaluate any following fixes identically?

    Ignored, because nothing later reads them: the per-point backlog flags of
    the stop window (they only mark alerts raised at those points as late);
    while no deviation is open, the newest fix outside the corridor (the next
    fix outside overwrites it before one can open); while one is open, where
    the current run outside began (a deviation ends on a fix inside, which
    forgets that run); while no run outside is under way, its first position.
    Likewise what is left of an office the truck is no longer in or entering,
    of a country change no longer pending, and, with none pending, a visit to an
    office zone longer ago than ``rules.post_grace_s`` (it can excuse no crossing).
    """
    return _normal(a, rules or Rules()) == _normal(b, rules or Rules())


def _normal(s: DeviceState, rules: Rules) -> DeviceState:
    context = np.frombuffer(s.context, dtype=CONTEXT).copy()
    context["backlog"] = False
    out_since = -1 if s.deviation_open else s.out_since
    record = np.frombuffer(s.rules or DEFAULT_RULES, dtype=RULES).copy()
    stale = [*(_OFFICE if record["office_pos"][0] < 0 else ()), *(_CAND if record["cand_pos"][0] < 0 else ()),
             *(_COUNTRY_CAND if record["country_cand"][0] == b"" else ())]
    if record["country_cand"][0] == b"" and s.last_ts - record["post_seen"][0] > rules.post_grace_s * 1000:
        stale.append("post_seen")
    for name in stale:
        record[name] = _DEFAULTS[name]
    return msgspec.structs.replace(
        s, context=context.tobytes(), last_out=s.last_out if s.deviation_open else -1, out_since=out_since,
        out_lon=s.out_lon if out_since >= 0 else 0.0, out_lat=s.out_lat if out_since >= 0 else 0.0,
        rules=record.tobytes())


_DEFAULTS = np.frombuffer(DEFAULT_RULES, dtype=RULES)[0]
_OFFICE = ("office_in", "office_last", "office_lon", "office_lat", "office_still", "office_out", "dwell_open")
_CAND = ("cand_in", "cand_lon", "cand_lat", "cand_still")
_COUNTRY_CAND = ("country_cand_t", "country_cand_lon", "country_cand_lat")


def splice_milestones(stored: Sequence[Transition], result: ReplayResult) -> list[Transition]:
    """Stored milestones of one tracker after the replay ``result``: those the window
    decided (confirmed, ``crossed_ms``, within ``[from_ms, to_ms]``) are replaced by
    the window's. A milestone's time (``started_ms``) may lie before the window: it
    is its confirmation that the window decides."""
    kept = [m for m in stored if not result.from_ms <= m.crossed_ms <= result.to_ms]
    return sorted([*kept, *result.milestones], key=lambda m: (m.crossed_ms, m.type, m.office))


def intervals(start: DeviceState | None, transitions: Sequence[Transition]) -> list[Interval]:
    """Pair openings with endings inside a window that began in state ``start``
    (None: a fresh state), flagging what was carried in and what stays open."""
    found: list[Interval] = []
    open_: dict[AlertType, int] = {}  # type -> index in found
    if start is not None and start.deviation_open:
        open_["route_deviation"] = len(found)
        found.append(Interval("route_deviation", None, None, None, None, None, False, carried_in=True))
    carried: list[tuple[bool, AlertType]] = [] if start is None else [
        (start.stop_alert == kernels.STOP_ALERTED, "unscheduled_stop"),
        (start.dwell_open, "border_dwell"), (start.reversal_open, "route_reversal")]
    for is_open, carried_type in carried:
        if is_open:
            open_[carried_type] = len(found)
            found.append(Interval(carried_type, None, None, None, None, None, False, carried_in=True))
    for tr in transitions:
        kind = tr.alert_type
        if kind is None:
            continue  # a milestone: ReplayResult.milestones
        if tr.event == "opened":
            if not tr.instantaneous:
                open_[kind] = len(found)
            found.append(Interval(kind, tr.started_ms, tr.crossed_ms, tr.ended_ms, tr.lon, tr.lat, tr.late,
                                  office=tr.office, country=tr.country, detail=tr.detail))
        elif kind in open_:
            k = open_.pop(kind)
            found[k] = replace(found[k], ended_ms=tr.ended_ms)
    for k in open_.values():
        found[k] = replace(found[k], open_at_end=True)
    return found


def splice(stored: Sequence[Interval], result: ReplayResult) -> list[Interval]:
    """Stored alert intervals of one tracker (none carried in) after the replay
    ``result``: the reconciliation that stays inside the window, on plain intervals.

    An interval whose opening the window decides (``ReplayResult.decided``) is
    replaced by what the replay found; the one open when the window began gets
    its ending from the replay; one still open at the window's end keeps its
    stored ending when the replay converged (that ending was decided after the window).
    """
    out = [s for s in stored if not _inside(result.decided(s.type), s.crossed_ms)]
    for r in result.intervals:
        lo, hi = result.decided(r.type)
        if r.carried_in:
            k = _opened_last(out, r.type, lo - 1)
            if k is None:
                continue  # nothing stored was open there: inconsistent input, keep the stored alerts
            end = out[k].ended_ms if r.open_at_end and result.converged else r.ended_ms
            out[k] = replace(out[k], ended_ms=end)
            continue
        if r.open_at_end and result.converged:
            k = _opened_last(stored, r.type, hi)
            end = stored[k].ended_ms if k is not None else None
        else:
            end = r.ended_ms
        out.append(replace(r, ended_ms=end, open_at_end=False))
    return sorted(out, key=lambda s: (s.crossed_ms if s.crossed_ms is not None else -1, s.type))


def _inside(bounds: tuple[int, int], ms: int | None) -> bool:
    return ms is not None and bounds[0] <= ms <= bounds[1]


def _opened_last(found: Sequence[Interval], type_: AlertType, until_ms: int) -> int | None:
    """Index of the interval of this type whose opening was crossed last at or before ``until_ms``."""
    opened = [(s.crossed_ms, k) for k, s in enumerate(found)
              if s.type == type_ and s.crossed_ms is not None and s.crossed_ms <= until_ms]
    return max(opened)[1] if opened else None
