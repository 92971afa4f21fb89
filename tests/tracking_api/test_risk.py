"""Risk scoring (``services.risk.assess``) and the override, on the real database: goods
against the sensitive-goods list, the operator's confirmed alerts, the route's record,
the levels' boundaries, and an override that wins, is audited and can be cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.support import query
from tests.tracking_api.geo_support import make_world, unique
from tests.tracking_api.risk_support import add_alert, assess, declare, on_api_connection, ship
from tracking_api.auth import Principal
from tracking_api.schemas.risk import Risk
from tracking_api.services import risk
from tracking_api.services.errors import NotFoundError

DAY = timedelta(days=1)


def now() -> datetime:
    return datetime.now(UTC)


def reasons(stored: dict[str, Any]) -> dict[str, int]:
    return {r["factor"]: r["points"] for r in stored["reasons"]}


def test_a_v1_declaration_without_goods_scores_20_medium(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    stored, level = assess(database_url, shipment["id"])
    assert stored == {"score": 20, "computed": "medium",
                      "reasons": [{"factor": "undeclared", "points": 20, "detail": "goods not declared"}]}
    assert level == "medium"


def test_goods_take_the_highest_matching_entry(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    # 8471 (computers) matches nothing, 2203 (beer) 20, 271019 (fuel, under 2710) 40.
    declare(database_url, shipment["id"], "8471300000", "220300", "271019")
    stored, level = assess(database_url, shipment["id"])
    assert stored["score"] == 40 and level == "medium"
    (reason,) = stored["reasons"]
    assert reason["factor"] == "goods" and reason["points"] == 40
    assert "271019" in reason["detail"] and "2710" in reason["detail"] and "line 3" in reason["detail"]


def test_goods_on_no_list_score_nothing_low(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    declare(database_url, shipment["id"], "8471300000")
    assert assess(database_url, shipment["id"]) == ({"score": 0, "computed": "low", "reasons": []}, "low")


def test_operator_history_counts_confirmed_alerts_in_the_window_once_per_incident(
        client: TestClient, database_url: str) -> None:
    operator = unique("OP ")
    past = make_world(client)  # the operator's earlier shipments, on a route of their own
    earlier = [ship(client, past, now() - 30 * DAY) for _ in range(3)]
    for s in earlier:
        declare(database_url, s["id"], operator=operator)
    first = add_alert(database_url, earlier[0], now() - 20 * DAY, "goods_seized")
    # The same condition on the consolidated truck's other shipment: the same incident, counted once.
    add_alert(database_url, earlier[1], now() - 20 * DAY, "goods_seized", incident=first)
    add_alert(database_url, earlier[2], now() - 10 * DAY, "confirmed_irregularity")
    # Not counted: a false alarm, an open alert, a confirmed one withdrawn, one older than 12 months.
    add_alert(database_url, earlier[2], now() - 9 * DAY, "false_alarm")
    add_alert(database_url, earlier[2], now() - 8 * DAY)
    add_alert(database_url, earlier[2], now() - 7 * DAY, "goods_seized", detail={"withdrawn": True})
    add_alert(database_url, earlier[2], now() - 400 * DAY, "goods_seized")

    shipment = ship(client, make_world(client))
    declare(database_url, shipment["id"], "271019", operator=operator)
    stored, level = assess(database_url, shipment["id"])
    assert reasons(stored) == {"goods": 40, "operator": 30}
    assert stored["score"] == 70 and stored["computed"] == "high" and level == "high"
    assert f"2 confirmed alerts on operator {operator}'s shipments in 12 months" in stored["reasons"][1]["detail"]

    # Over 24 months (CTT_RISK_HISTORY_MONTHS) the one 400 days old counts too.
    stored, _ = assess(database_url, shipment["id"], history_months=24)
    assert reasons(stored)["operator"] == 45 and "3 confirmed alerts" in stored["reasons"][1]["detail"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_RISK_HISTORY_MONTHS", "24")
        assert reasons(assess(database_url, shipment["id"])[0])["operator"] == 45

    # Two more confirmed: four in all, 60 points capped at 45.
    add_alert(database_url, earlier[0], now() - 5 * DAY, "confirmed_irregularity")
    add_alert(database_url, earlier[1], now() - 4 * DAY, "goods_seized")
    stored, _ = assess(database_url, shipment["id"])
    assert reasons(stored)["operator"] == 45


def test_route_record_from_ten_percent_of_departed_shipments(client: TestClient, database_url: str) -> None:
    world = make_world(client)
    departed = [ship(client, world, now() - 3 * DAY) for _ in range(10)]
    add_alert(database_url, departed[0], now() - 2 * DAY, "confirmed_irregularity")
    add_alert(database_url, departed[1], now() - 2 * DAY, "false_alarm")
    ship(client, world)  # registered, never departed: not part of the record
    shipment = ship(client, world)
    declare(database_url, shipment["id"], "240220")  # cigarettes, 40
    stored, level = assess(database_url, shipment["id"])
    # 1 of 10 = 10 %: 20 points, 60 in all.
    assert reasons(stored) == {"goods": 40, "route": 20} and stored["score"] == 60 and level == "high"
    assert "1 of 10 shipments" in stored["reasons"][1]["detail"]
    ship(client, world, now() - DAY)  # 1 of 11 = 9 %: below the share
    stored, level = assess(database_url, shipment["id"])
    assert reasons(stored) == {"goods": 40} and level == "medium"


def override(database_url: str, caller: Principal, shipment_id: int, level: Any, reason: str) -> Risk:
    return on_api_connection(database_url, lambda conn: risk.override(conn, caller, shipment_id, level, reason))


def test_an_override_wins_survives_rescoring_is_audited_and_clears(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    admin = Principal(subject=unique("risk-admin-"), role="admin")
    after = override(database_url, admin, shipment["id"], "high", "intelligence report 311")
    assert after.level == "high" and after.computed == "medium" and after.score == 20
    assert after.override is not None and after.override.by == admin.subject
    assert assess(database_url, shipment["id"])[1] == "high"  # re-scoring keeps the override
    (audited,) = query(database_url, "SELECT action, role, detail FROM audit_log WHERE actor = %s",
                       (admin.subject,))
    assert audited == ("shipment.risk_overridden", "admin", {
        "reference": shipment["reference"], "level": "high", "reason": "intelligence report 311",
        "from": "medium", "to": "high"})
    cleared = override(database_url, admin, shipment["id"], None, "report withdrawn")
    assert cleared.level == "medium" and cleared.override is None
    assert assess(database_url, shipment["id"]) == (
        {"score": 20, "computed": "medium", "reasons": [
            {"factor": "undeclared", "points": 20, "detail": "goods not declared"}]}, "medium")


def test_an_override_is_refused_to_officers_and_integrators(client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    for caller in (Principal("o", "officer", region="KE-MSA"), Principal("i", "integrator")):
        with pytest.raises(risk.ForbiddenError, match=f"role '{caller.role}' may not override"):
            override(database_url, caller, shipment["id"], "low", "trusted trader")
    assert assess(database_url, shipment["id"])[1] == "medium"


def test_an_override_names_a_bad_level_or_reason_and_an_unknown_shipment(
        client: TestClient, database_url: str) -> None:
    shipment = ship(client, make_world(client))
    admin = Principal("a", "admin")
    with pytest.raises(RequestValidationError) as bad:
        override(database_url, admin, shipment["id"], "extreme", "why not")
    assert bad.value.errors()[0]["loc"] == ("body", "level") and "'extreme'" in bad.value.errors()[0]["msg"]
    with pytest.raises(RequestValidationError) as blank:
        override(database_url, admin, shipment["id"], "high", "  ")
    assert blank.value.errors()[0]["loc"] == ("body", "reason")
    with pytest.raises(NotFoundError, match="shipment 9223372036854775807 does not exist"):
        override(database_url, admin, 2**63 - 1, "high", "no such shipment")


def test_the_history_window_setting_is_checked() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_RISK_HISTORY_MONTHS", "0")
        with pytest.raises(ValidationError, match="history_months"):
            risk.RiskSettings()
