"""``GET /kpi`` on the real database: a hand-made history on routes of its own
(shipments moved through the API with dated steps, alerts inserted by SQL with
known times), and the exact figures it must give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from tests.support import scalar
from tests.tracking_api.geo_support import API, World, auth, created, make_world, square, unique

KPI = f"{API}/kpi"
OPERATOR = auth("operator")
H = timedelta(hours=1)
M = timedelta(minutes=1)


@dataclass(frozen=True)
class History:
    route: int  # three arrived shipments (10, 20 and 30 h), one in transit; the alerts below
    overdue_route: int  # one shipment in transit past its deadline
    region: str  # covers ``route``'s offices
    base: datetime  # the first departure, five days ago


def move(client: TestClient, world: World, deadline: datetime, departed: datetime,
         arrived: datetime | None = None) -> dict[str, Any]:
    """A shipment registered with ``deadline`` and taken through its dated steps."""
    body = created(client.post(f"{API}/shipments", json=world.shipment(deadline=deadline.isoformat()),
                               headers=OPERATOR))
    for action, at in (("depart", departed), ("arrive", arrived)):
        if at is not None:
            response = client.post(f"{API}/shipments/{body['id']}/{action}", json={"at": at.isoformat()},
                                   headers=OPERATOR)
            assert response.status_code == 200, response.text
    return body


def add_alert(database_url: str, shipment: dict[str, Any], type_: str, started: datetime,
              ended: datetime | None, created_at: datetime, severity: str = "high", **workflow: Any) -> int:
    """An alert with explicit times; ``workflow``: status, acknowledged_at, resolved_at, detail."""
    columns = {"type": type_, "shipment_id": shipment["id"], "device_id": shipment["tracker_id"],
               "started_at": started, "ended_at": ended, "crossed_at": started + 15 * M, "severity": severity,
               "created_at": created_at, "status": "open", "detail": Jsonb({})}
    columns |= {k: Jsonb(v) if k == "detail" else v for k, v in workflow.items()}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    return int(scalar(database_url, f"INSERT INTO alerts ({names}) VALUES ({marks}) RETURNING id",
                      tuple(columns.values())))


@pytest.fixture(scope="module")
def history(client: TestClient, database_url: str) -> History:
    world = make_world(client)
    region = unique("R")
    # Before the shipments: their regions are recorded when they are registered.
    created(client.post(f"{API}/regions", json={"code": region, "name": "kpi", "geometry": square(
        world.lon + 0.5, world.lat, 2.0)}, headers=auth("admin")))
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    far = base + timedelta(days=30)
    s1 = move(client, world, base + 12 * H, base, base + 10 * H)
    s2 = move(client, world, base + 21 * H, base + H, base + 21 * H)  # arrives at its deadline: on time
    s3 = move(client, world, base + 30 * H, base + 2 * H, base + 32 * H)  # 2 h late
    s4 = move(client, world, far, base + 3 * H)
    _alerts(database_url, base, s1, s2, s3, s4)
    # On a route of its own: if ingest runs in this session, its sweep opens a transit_overdue alert.
    other = make_world(client)
    move(client, other, base + H, base)
    return History(world.route_id, other.route_id, region, base)


def _alerts(db: str, base: datetime, s1: dict[str, Any], s2: dict[str, Any], s3: dict[str, Any],
            s4: dict[str, Any]) -> None:
    # Stops of 40, 20 and 60 min and one still lasting; answered after 10, 30 (resolved, no ack), never, 20 min.
    created1, created2, created3, created4 = base + 76 * M, base + 3 * H + 16 * M, base + 5 * H + 16 * M, \
        base + 6 * H + 16 * M
    add_alert(db, s1, "unscheduled_stop", base + H, base + H + 40 * M, created1, status="acknowledged",
              acknowledged_at=created1 + 10 * M)
    add_alert(db, s2, "unscheduled_stop", base + 3 * H, base + 3 * H + 20 * M, created2, severity="medium",
              status="resolved", resolved_at=created2 + 30 * M)
    add_alert(db, s3, "unscheduled_stop", base + 5 * H, base + 6 * H, created3)
    add_alert(db, s4, "unscheduled_stop", base + 6 * H, None, created4, status="acknowledged",
              acknowledged_at=created4 + 20 * M)
    # Acknowledged after 50 min, resolved later: the acknowledgement counts.
    deviation = base + 8 * H + 2 * M
    add_alert(db, s2, "route_deviation", base + 8 * H, base + 9 * H, deviation, status="resolved",
              acknowledged_at=deviation + 50 * M, resolved_at=deviation + 70 * M)
    # Withdrawn: late data showed it never happened; counted nowhere, not even as open.
    add_alert(db, s3, "seal_breach", base + 10 * H, None, base + 10 * H, severity="critical",
              detail={"withdrawn": True})


def get_kpi(client: TestClient, headers: dict[str, str] | None = None, **query: Any) -> dict[str, Any]:
    response = client.get(KPI, params=query, headers=headers or auth("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def minutes(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 60


def test_transit_times_on_time_share_and_shipments_now(client: TestClient, history: History) -> None:
    (route,) = get_kpi(client, route=history.route)["routes"]
    assert route["id"] == history.route
    assert {k: v for k, v in route.items() if k not in ("id", "name")} == pytest.approx({
        "departed": 4, "arrived": 3, "transit_median_h": 20.0, "transit_p90_h": 28.0, "transit_mean_h": 20.0,
        "on_time_share": 2 / 3, "in_transit_now": 1, "overdue_now": 0})
    (overdue,) = get_kpi(client, route=history.overdue_route)["routes"]
    assert overdue | {"id": 0, "name": ""} == {
        "id": 0, "name": "", "departed": 1, "arrived": 0, "transit_median_h": None, "transit_p90_h": None,
        "transit_mean_h": None, "on_time_share": None, "in_transit_now": 1, "overdue_now": 1}


def test_stop_times_count_a_lasting_stop_up_to_now(client: TestClient, history: History) -> None:
    body = get_kpi(client, route=history.route)
    (stops,) = body["stops"]
    lasting = minutes(at(body["generated_at"]), history.base + 6 * H)  # about five days
    assert stops == pytest.approx({
        "route_id": history.route, "route_name": stops["route_name"], "stops": 4, "ongoing": 1,
        "total_min": 40 + 20 + 60 + lasting, "median_min": 50.0,
        # Sorted 20, 40, 60, lasting: position 0.9 * 3 = 2.7 lies 0.7 of the way from 60 to lasting.
        "p90_min": 60 + 0.7 * (lasting - 60)})


def test_alerts_per_type_and_severity_leave_out_withdrawn_ones(client: TestClient, history: History) -> None:
    counts = {(a["type"], a["severity"]): a["count"] for a in get_kpi(client, route=history.route)["alerts"]}
    assert counts == {("route_deviation", "high"): 1, ("unscheduled_stop", "high"): 3,
                      ("unscheduled_stop", "medium"): 1}


def test_time_to_acknowledgement_and_the_unanswered(client: TestClient, history: History) -> None:
    body = get_kpi(client, route=history.route)
    oldest = minutes(at(body["generated_at"]), history.base + 5 * H + 16 * M)
    response = body["response"]
    # 10, 20, 30 and 50 min: the median halfway between 20 and 30, the p90 0.7 of the way from 30 to 50.
    assert response["overall"] == pytest.approx({"answered": 4, "median_min": 25.0, "p90_min": 44.0, "open": 1,
                                                 "oldest_open_min": oldest})
    deviation, stop = response["by_type"]
    assert deviation == {"type": "route_deviation", "answered": 1, "median_min": 50.0, "p90_min": 50.0, "open": 0,
                         "oldest_open_min": None}
    assert stop == pytest.approx({"type": "unscheduled_stop", "answered": 3, "median_min": 20.0, "p90_min": 28.0,
                                  "open": 1, "oldest_open_min": oldest})


def test_default_window_is_the_last_30_days(client: TestClient, history: History) -> None:
    body = get_kpi(client, route=history.route)
    window = body["window"]
    assert at(window["to"]) == at(body["generated_at"])
    assert at(window["to"]) - at(window["from"]) == timedelta(days=30)
    assert window["to"].endswith("Z")


def test_a_window_before_everything_keeps_only_the_now_figures(client: TestClient, history: History) -> None:
    start, end = history.base - timedelta(days=10), history.base - timedelta(days=9)
    query: dict[str, Any] = {"route": history.route, "from": start.isoformat(), "to": end.isoformat()}
    body = get_kpi(client, **query)
    assert at(body["window"]["from"]) == start and at(body["window"]["to"]) == end
    (route,) = body["routes"]
    assert (route["departed"], route["arrived"], route["transit_median_h"], route["in_transit_now"]) == (0, 0, None, 1)
    assert body["stops"] == [] and body["alerts"] == []
    # The unanswered stop is a backlog whatever the window.
    assert body["response"]["overall"]["answered"] == 0 and body["response"]["overall"]["open"] == 1


def test_an_officer_sees_only_their_regions_figures(client: TestClient, history: History) -> None:
    mine = get_kpi(client, auth("officer", history.region), route=history.route)
    everything = get_kpi(client, route=history.route)
    for group in ("routes", "alerts"):
        assert mine[group] == everything[group]
    assert mine["response"]["overall"]["answered"] == 4
    elsewhere = get_kpi(client, auth("officer", unique("nowhere-")), route=history.route)
    assert elsewhere["routes"] == elsewhere["stops"] == elsewhere["alerts"] == []
    assert elsewhere["response"] == {"overall": {"answered": 0, "median_min": None, "p90_min": None, "open": 0,
                                                 "oldest_open_min": None}, "by_type": []}


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-11-23T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
    ({"from": "2026-11-23T00:00:00Z", "to": "2026-11-23T00:00:00Z"}, "from"),
    ({"from": "2099-01-01T00:00:00Z"}, "from"),  # after the default to, now
    ({"from": "2026-11-01T00:00:00"}, "from"),  # no time zone
    ({"to": "2026-11-23T00:00:00"}, "to"),
    ({"to": "yesterday"}, "to"),
    ({"from": "0001-01-01T00:00:00+01:00"}, "from"),  # before year 1 in UTC
    ({"route": "0"}, "route"),
])
def test_a_bad_window_is_a_422_naming_the_field(client: TestClient, query: dict[str, str], field: str) -> None:
    response = client.get(KPI, params=query, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert [issue["loc"] for issue in response.json()["detail"]] == [["query", field]]


def test_an_end_in_year_one_starts_the_window_at_the_first_instant(client: TestClient) -> None:
    body = get_kpi(client, to="0001-01-02T00:00:00Z")
    assert body["window"] == {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}
