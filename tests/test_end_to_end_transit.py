"""Transit across borders, end to end: simulator -> broker -> ingest -> engine ->
alerts and timelines in the database -> the API, against the transit ground truth
(firmware_sim/transit_scenarios.py): precision = recall = 1.0 for every alert type,
the consolidated truck's three alerts one incident, and every expected milestone on
each shipment's timeline (GET /shipments/{id}/timeline) with nothing unexpected.

The country outlines come from the ``countries`` fixture (tests/conftest.py), the
itineraries, seal numbers, releases and inspections from ``ctt.transit.register``.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from shapely import Point, Polygon

from ctt.transit import register
from firmware_sim.devices import Tracker
from firmware_sim.runner import SimClock, Simulation
from firmware_sim.scenarios import ExpectedAlert, ExpectedMilestone, Scenario
from firmware_sim.transit_scenarios import transit_ground_truth
from tests.support import (
    AlertListener,
    ApiServer,
    IngestProcess,
    device_link,
    provision,
    query,
    unique_prefix,
    wait_for,
)
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

SPEEDUP = 200.0
# Inserted already ended (docs/alerts.md): ended_at is their crossed time.
INSTANTANEOUS = {"border_bypass", "office_skipped", "suspicious_gap", "seal_mismatch"}
MILESTONES = {"arrived", "departed", "border_crossed"}  # the engine's; officers' ones are checked where expected
SUSPICIOUS_MIN = (600 + 2 * 2000 / (100 / 3.6)) / 60  # docs/alerts.md's threshold, minutes
ELLIPSE_VERTICES = 48


@dataclass(frozen=True)
class Row:
    """An alert as the database holds it (alert_view)."""

    id: int
    type: str
    device: str
    reference: str
    started_ms: int
    ended_ms: int | None
    incident: int
    detail: dict[str, Any]


def test_transit_alerts_and_milestones_match_ground_truth(
        ingest: IngestProcess, database_url: str, listener: AlertListener, api_server: ApiServer,
        countries: object) -> None:
    prefix = unique_prefix("tr")
    probe = transit_ground_truth(0, prefix=prefix)
    clock = SimClock.ending_now((probe.end_ms - probe.start_ms) / 1000, SPEEDUP)
    truth = transit_ground_truth(clock.start_ms, prefix=prefix)
    with psycopg.connect(database_url) as conn:
        ids = register(conn, truth)
    provision([d.device_id for d in truth.devices])
    stats = Simulation(truth.devices, clock, truth.end_ms, device_link).run(drain_s=30)
    assert stats.buffered == 0, stats  # every record reached the database and was acknowledged

    rows: list[Row] = wait_for(lambda: _settled(database_url, ids, len(truth.expected)), 30, "the expected alerts")
    matched = _match(truth, rows)
    _assert_precision_and_recall(truth.expected, rows, matched)
    for e, row in matched:
        assert (row.ended_ms is None) == e.open_at_end, (e, row)
        if e.type in INSTANTANEOUS:
            assert row.ended_ms is not None, row
    consolidated = {row.incident for e, row in matched if e.reference is not None}
    assert len(consolidated) == 1, "the consolidated truck's alerts are one incident"
    _check_suspicious_gap(truth, [row for row in rows if row.type == "suspicious_gap"])

    operator = mint(ApiSettings(), "e2e-operator", "operator")
    listed = _get(api_server, "/alerts?limit=500", operator)["items"]
    assert {a["id"] for a in listed if a["shipment"] in ids.values() and not a["withdrawn"]} == {r.id for r in rows}
    announced = {(m["type"], m["device"]) for m in listener.messages if m["event"] == "opened"}
    assert {(r.type, r.device) for r in rows} <= announced
    for reference, shipment_id in ids.items():
        expected = [m for m in truth.milestones if m.reference == reference]
        wait_for(_timeline_check(api_server, operator, shipment_id, expected), 20, f"the timeline of {reference}")


def _settled(database_url: str, ids: dict[str, int], expected: int) -> list[Row] | None:
    rows = _alerts(database_url, list(ids.values()))
    return rows if len(rows) >= expected and not any(r.ended_ms is None and r.type in INSTANTANEOUS
                                                     for r in rows) else None


def _alerts(database_url: str, shipment_ids: list[int]) -> list[Row]:
    found = query(database_url,
                  "SELECT id, type, device, reference, (extract(epoch FROM started_at) * 1000)::int8,"
                  " (extract(epoch FROM ended_at) * 1000)::int8, incident, detail FROM alert_view"
                  " WHERE shipment = ANY(%s) AND NOT withdrawn ORDER BY started_at, id", (shipment_ids,))
    return [Row(*r) for r in found]


def _owner(truth: Scenario, e: ExpectedAlert) -> set[str]:
    """References of the shipments the expected alert may be raised on."""
    if e.reference is not None:
        return {e.reference}
    return {s.reference for s in truth.shipments if e.device_id == s.tracker_id or e.device_id in s.seal_ids}


def _fits(truth: Scenario, e: ExpectedAlert, row: Row) -> bool:
    return (row.type == e.type and row.device == e.device_id and row.reference in _owner(truth, e)
            and e.start_from_ms <= row.started_ms <= e.start_to_ms
            and all(row.detail.get(k) == v for k, v in e.detail.items()))


def _match(truth: Scenario, rows: list[Row]) -> list[tuple[ExpectedAlert, Row]]:
    """Each expected alert paired with a distinct raised one that fits it (most constrained first)."""
    matched: list[tuple[ExpectedAlert, Row]] = []
    taken: set[int] = set()
    for e in sorted(truth.expected, key=lambda e: sum(_fits(truth, e, r) for r in rows)):
        row = next((r for r in rows if r.id not in taken and _fits(truth, e, r)), None)
        if row is not None:
            matched.append((e, row))
            taken.add(row.id)
    return matched


def _assert_precision_and_recall(expected: list[ExpectedAlert], rows: list[Row],
                                 matched: list[tuple[ExpectedAlert, Row]]) -> None:
    raised, wanted = Counter(r.type for r in rows), Counter(e.type for e in expected)
    right = Counter(e.type for e, _ in matched)
    scores = {t: (right[t] / raised[t] if raised[t] else 1.0, right[t] / wanted[t] if wanted[t] else 1.0)
              for t in sorted(set(raised) | set(wanted))}
    unmatched = [r for r in rows if r.id not in {row.id for _, row in matched}]
    missed = [e for e in expected if all(e is not m for m, _ in matched)]
    assert all(s == (1.0, 1.0) for s in scores.values()), (
        f"(precision, recall) per type: {scores}\nraised, not expected: {unmatched}\nexpected, not raised: {missed}")


def _check_suspicious_gap(truth: Scenario, rows: list[Row]) -> None:
    """The reachable area holds the hidden detour's furthest point; the unexplained time is long enough."""
    (row,) = rows
    detail = row.detail
    assert detail["unexplained_min"] >= SUSPICIOUS_MIN and detail["gap_min"] >= detail["unexplained_min"]
    ring = detail["area"]["coordinates"][0]
    assert detail["area"]["type"] == "Polygon" and len(ring) == ELLIPSE_VERTICES + 1 and ring[0] == ring[-1]
    (tracker,) = [d for d in truth.devices if isinstance(d, Tracker) and d.device_id == row.device]
    (off,) = tracker.off
    detour = tracker.truck.detours[0]
    lat, lon, _, _ = tracker.truck.at(tracker.truck.departure_ms + round((detour.start_s + detour.ramp_s) * 1000))
    assert off.start_ms < tracker.truck.departure_ms + detour.start_s * 1000 < off.end_ms
    assert Polygon(ring).contains(Point(lon, lat))


def _timeline_check(api: ApiServer, token: str, shipment_id: int,
                    expected: list[ExpectedMilestone]) -> Callable[[], bool]:
    """True once the timeline holds every expected milestone and no engine milestone besides."""

    def check() -> bool:
        items = _get(api, f"/shipments/{shipment_id}/timeline", token)["items"]
        found = [e for e in expected if any(_milestone_fits(e, item) for item in items)]
        extra = [i for i in items if i["kind"] in MILESTONES and not any(_milestone_fits(e, i) for e in expected)
                 and not (i["kind"] == "arrived" and i["position"] == 0)]  # the office it starts in: either way
        return len(found) == len(expected) and not extra

    return check


def _milestone_fits(e: ExpectedMilestone, item: dict[str, Any]) -> bool:
    at_ms = _epoch_ms(item["at"])
    detail = {**item.get("detail", {}), "position": item.get("position")}
    return (item["kind"] == e.kind and item["office_code"] == e.office_code and e.from_ms <= at_ms <= e.to_ms
            and all(detail.get(k) == v for k, v in e.detail.items()))


def _epoch_ms(rfc3339: str) -> int:
    return round(datetime.fromisoformat(rfc3339).timestamp() * 1000)


def _get(api: ApiServer, path: str, token: str) -> Any:
    request = urllib.request.Request(f"{api.url}{path}", headers={"Authorization": f"Bearer {token}"})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())

