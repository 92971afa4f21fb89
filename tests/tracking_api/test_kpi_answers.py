"""``GET /kpi/response`` (time to acknowledge and to resolve per severity and region) and
``GET /kpi/outcomes`` (outcome mix and false-alarm rate per alert type) on hand-made alerts in
a window of their own (2020), against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import execute
from tests.tracking_api.case_support import CaseWorld, auth, case_world, new_alert

API = "/api/v1"
T0 = datetime(2020, 3, 1, tzinfo=UTC)
WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(days=1)).isoformat()}
M = timedelta(minutes=1)


def timed(database_url: str, w: CaseWorld, shipment: int, severity: str, ack: int | None, resolve: int | None,
          outcome: str | None = None, type_: str = "route_deviation", escalated: bool = False,
          withdrawn: bool = False) -> int:
    """An alert created at T0 + 1 h, answered ``ack`` and resolved ``resolve`` minutes later."""
    alert_id = new_alert(database_url, w, shipment, type_=type_, severity=severity,
                         detail={"withdrawn": True} if withdrawn else None)
    created = T0 + timedelta(hours=1)
    execute(database_url, "UPDATE alerts SET created_at = %s, acknowledged_at = %s, resolved_at = %s, outcome = %s,"
                          " status = %s, escalation_level = %s WHERE id = %s",
            (created, None if ack is None else created + ack * M, None if resolve is None else created + resolve * M,
             outcome, "resolved" if resolve is not None else "acknowledged" if ack is not None else "open",
             int(escalated), alert_id))
    return alert_id


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    world = case_world(database_url, "kpians")
    a, b = world.s_a, world.s_b
    timed(database_url, world, a, "critical", 2, 10, "false_alarm", "unscheduled_stop")
    timed(database_url, world, a, "critical", 4, 20, "false_alarm", "unscheduled_stop")
    timed(database_url, world, a, "critical", 6, None, escalated=True)
    timed(database_url, world, a, "critical", None, None, escalated=True)  # never answered
    timed(database_url, world, a, "critical", 1, 1, withdrawn=True)  # never counted
    timed(database_url, world, b, "high", None, 30, "goods_seized", "unscheduled_stop")  # resolved without an ack
    timed(database_url, world, b, "high", 3, 5, "false_alarm", "unscheduled_stop")
    timed(database_url, world, b, "low", 3, 5, None, "signal_lost")  # resolved before outcomes were required
    return world


def get(client: TestClient, path: str, headers: dict[str, str], **params: str) -> Any:
    response = client.get(f"{API}/kpi/{path}", params={**WINDOW, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_time_to_acknowledge_and_resolve_per_severity_and_region(client: TestClient, w: CaseWorld) -> None:
    rows = get(client, "response", auth("operator"))["rows"]
    ours = [r for r in rows if r["region"] in (w.region_a, w.region_b)]
    assert ours == [
        {"severity": "critical", "region": w.region_a, "alerts": 4, "acknowledged": 3, "ack_median_min": 4.0,
         "ack_p90_min": pytest.approx(5.6), "resolved": 2, "resolve_median_min": 15.0,
         "resolve_p90_min": pytest.approx(19.0), "escalated": 2},
        {"severity": "high", "region": w.region_b, "alerts": 2, "acknowledged": 2, "ack_median_min": 16.5,
         "ack_p90_min": pytest.approx(27.3), "resolved": 2, "resolve_median_min": 17.5,
         "resolve_p90_min": pytest.approx(27.5), "escalated": 0},
        {"severity": "low", "region": w.region_b, "alerts": 1, "acknowledged": 1, "ack_median_min": 3.0,
         "ack_p90_min": 3.0, "resolved": 1, "resolve_median_min": 5.0, "resolve_p90_min": 5.0, "escalated": 0}]
    # A supervisor sees their own region's rows; another region's filter gives nothing.
    supervisor = auth("supervisor", w.region_b)
    assert {r["region"] for r in get(client, "response", supervisor)["rows"]} == {w.region_b}
    assert get(client, "response", supervisor, region=w.region_a)["rows"] == []
    assert [r["severity"] for r in get(client, "response", auth("admin"), region=w.region_a)["rows"]] == ["critical"]


def test_outcome_mix_and_false_alarm_rate_per_type(client: TestClient, w: CaseWorld) -> None:
    types = {t["type"]: t for t in get(client, "outcomes", auth("integrator"), region=w.region_b)["types"]}
    assert types == {
        "unscheduled_stop": {"type": "unscheduled_stop", "resolved": 2, "false_alarm_rate": 0.5, "outcomes": {
            "false_alarm": 1, "technical_fault": 0, "confirmed_irregularity": 0, "goods_seized": 1, "other": 0,
            "none": 0}},
        "signal_lost": {"type": "signal_lost", "resolved": 1, "false_alarm_rate": None, "outcomes": {
            "false_alarm": 0, "technical_fault": 0, "confirmed_irregularity": 0, "goods_seized": 0, "other": 0,
            "none": 1}}}
    officer_a = get(client, "outcomes", auth("officer", w.region_a))["types"]
    (stops,) = [t for t in officer_a if t["type"] == "unscheduled_stop"]
    assert (stops["resolved"], stops["false_alarm_rate"]) == (2, 1.0)  # region B's are not theirs
    assert client.get(f"{API}/kpi/outcomes", params={"since": "2020-03-02T00:00:00Z", "until": "2020-03-01T00:00:00Z"},
                      headers=auth("admin")).status_code == 422
