"""The resolution outcome (``POST /alerts/{id}/resolve``) and ``GET /kpi/risk`` on the real
database: a hand-made history in a region of its own and a window years back (so that
the session's other shipments never count), and the exact figures per level."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import execute, query
from tests.tracking_api.geo_support import API, auth, make_world, unique
from tests.tracking_api.risk_support import add_alert, region_of, ship

RISK_KPI = f"{API}/kpi/risk"
BASE = datetime(2021, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class History:
    region: str
    alerts: dict[str, int]  # by name, for the outcome tests


def arrive(client: TestClient, shipment: dict[str, Any], at: datetime) -> None:
    response = client.post(f"{API}/shipments/{shipment['id']}/arrive", json={"at": at.isoformat()},
                           headers=auth("operator"))
    assert response.status_code == 200, response.text


def level(database_url: str, shipment: dict[str, Any], value: str) -> None:
    execute(database_url, "UPDATE shipments SET risk_level = %s WHERE id = %s", (value, shipment["id"]))


def resolve(client: TestClient, alert_id: int, outcome: str | None, headers: dict[str, str] | None = None) -> Any:
    body = {"note": "checked on site"} | ({"outcome": outcome} if outcome else {})
    return client.post(f"{API}/alerts/{alert_id}/resolve", json=body, headers=headers or auth("admin"))


@pytest.fixture(scope="module")
def history(client: TestClient, database_url: str) -> History:
    world = make_world(client)
    region = region_of(client, world)  # before the shipments: their regions are recorded at registration
    low = ship(client, world, BASE)
    arrive(client, low, BASE + 10 * H)
    medium = ship(client, world, BASE + H)  # still in transit
    gone = ship(client, world, BASE - 2 * DAY)  # arrived before the window: not counted
    arrive(client, gone, BASE - DAY)
    high = ship(client, world, BASE + 2 * H)
    arrive(client, high, BASE + 3 * DAY)  # arrived after the window, in transit during it: counted
    waiting = ship(client, world)  # registered, never departed: not counted
    for shipment, value in ((low, "low"), (high, "high"), (waiting, "high")):
        level(database_url, shipment, value)
    ids = {
        "low false alarm": add_alert(database_url, low, BASE + 2 * H),
        "low open": add_alert(database_url, low, BASE + 3 * H, type_="unscheduled_stop"),
        "medium confirmed": add_alert(database_url, medium, BASE + 4 * H),
        "medium seized": add_alert(database_url, medium, BASE + 5 * H, type_="seal_breach"),
        "medium acknowledged": add_alert(database_url, medium, BASE + 6 * H, type_="unscheduled_stop",
                                         status="acknowledged"),
        "high fault": add_alert(database_url, high, BASE + 7 * H),
        "high other": add_alert(database_url, high, BASE + 8 * H, type_="unscheduled_stop"),
    }
    # Not counted: withdrawn, and started before the window.
    add_alert(database_url, medium, BASE + 9 * H, "goods_seized", type_="signal_lost", detail={"withdrawn": True})
    add_alert(database_url, gone, BASE - 1.5 * DAY, "goods_seized")
    for name, outcome in (("low false alarm", "false_alarm"), ("medium confirmed", "confirmed_irregularity"),
                          ("medium seized", "goods_seized"), ("high fault", "technical_fault"),
                          ("high other", "other")):
        assert resolve(client, ids[name], outcome).status_code == 200
    return History(region, ids)


def figures(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get(RISK_KPI, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_outcome_is_stored_in_the_alert_object_and_audited(client: TestClient, database_url: str,
                                                              history: History) -> None:
    seized = history.alerts["medium seized"]
    body = client.get(f"{API}/alerts/{seized}", headers=auth("integrator")).json()
    assert (body["status"], body["outcome"]) == ("resolved", "goods_seized")
    (audited,) = query(database_url, "SELECT detail FROM audit_log WHERE action = 'alert.resolved' "
                                     "AND object_id = %s", (str(seized),))
    assert audited == ({"note": "checked on site", "from": "open", "outcome": "goods_seized"},)


def test_a_resolution_without_an_outcome_is_a_422_naming_it(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    alert_id = add_alert(database_url, shipment, datetime.now(UTC))
    response = resolve(client, alert_id, None)
    assert response.status_code == 422, response.text
    assert [issue["loc"] for issue in response.json()["detail"]] == [["body", "outcome"]]
    assert query(database_url, "SELECT status, outcome FROM alerts WHERE id = %s", (alert_id,)) == [("open", None)]


def test_an_unknown_outcome_is_a_422_naming_it(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    alert_id = add_alert(database_url, shipment, datetime.now(UTC))
    response = resolve(client, alert_id, "smuggling")
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "outcome"]
    assert "outcome 'smuggling' is not one of false_alarm, technical_fault" in issue["msg"]
    assert query(database_url, "SELECT status, outcome FROM alerts WHERE id = %s", (alert_id,)) == [("open", None)]


def test_figures_per_level_in_the_window(client: TestClient, history: History) -> None:
    body = figures(client, auth("officer", history.region), since=BASE.isoformat(),
                   until=(BASE + DAY).isoformat())
    assert body["period"] == {"since": "2021-03-01T00:00:00Z", "until": "2021-03-02T00:00:00Z"}
    assert body["levels"] == [
        {"level": "low", "shipments": 1, "alerts": 2, "confirmed": 0, "false_alarms": 1, "open": 1},
        {"level": "medium", "shipments": 1, "alerts": 3, "confirmed": 2, "false_alarms": 0, "open": 1},
        {"level": "high", "shipments": 1, "alerts": 2, "confirmed": 0, "false_alarms": 0, "open": 0}]


def test_a_narrower_window_and_another_region(client: TestClient, history: History) -> None:
    # [BASE + 4 h, BASE + 5 h): the medium confirmed alert only; shipments in transit then: all three.
    body = figures(client, auth("officer", history.region), since=(BASE + 4 * H).isoformat(),
                   until=(BASE + 5 * H).isoformat())
    assert [(x["shipments"], x["alerts"], x["confirmed"]) for x in body["levels"]] == [(1, 0, 0), (1, 1, 1),
                                                                                         (1, 0, 0)]
    elsewhere = figures(client, auth("officer", unique("R")), since=BASE.isoformat(),
                        until=(BASE + DAY).isoformat())
    assert all(x | {"level": None} == {"level": None, "shipments": 0, "alerts": 0, "confirmed": 0,
                                       "false_alarms": 0, "open": 0} for x in elsewhere["levels"])


@pytest.mark.parametrize(("params", "says"), [
    ({"since": "2021-03-02T00:00:00Z", "until": "2021-03-01T00:00:00Z"}, "must be before until"),
    ({"since": "2021-03-01T00:00:00"}, "timezone"),
])
def test_a_bad_window_is_a_422_naming_since(client: TestClient, params: dict[str, str], says: str) -> None:
    response = client.get(RISK_KPI, params=params, headers=auth("admin"))
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["query", "since"] and says in issue["msg"]
