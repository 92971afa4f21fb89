"""``/risk/sensitive-goods`` and ``/risk/profiles`` through the API on the real database:
every role reads, admins and operators edit (audited, before and after), a refusal
names the field before the database's checks are reached, an entry changes the
scoring, and a profile change reaches the engine (``geofence_version``)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import query, scalar
from tests.tracking_api.geo_support import API, auth, make_world, unique
from tests.tracking_api.risk_support import assess, declare, ship

GOODS = f"{API}/risk/sensitive-goods"
PROFILES = f"{API}/risk/profiles"
READERS = [auth("admin"), auth("operator"), auth("officer", "KE-MSA"), auth("integrator")]
# schema/022's defaults
DEFAULTS = {
    "low": {"corridor_factor": 1.0, "stop_min_s": 1800.0, "report_interval_s": 1800.0, "border_dwell_factor": 1.5,
            "severity_shift": -1},
    "medium": {"corridor_factor": 1.0, "stop_min_s": 900.0, "report_interval_s": 900.0, "border_dwell_factor": 1.0,
               "severity_shift": 0},
    "high": {"corridor_factor": 0.6, "stop_min_s": 600.0, "report_interval_s": 600.0, "border_dwell_factor": 0.5,
             "severity_shift": 1},
}


def prefix() -> str:
    """An HS prefix no other test declares (chapter 99 is not used by the tests' goods)."""
    return "99" + "".join(random.choices("0123456789", k=6))


def problem(response: Any) -> tuple[list[Any], str]:
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    return issue["loc"], issue["msg"]


def audited(actor: str, database_url: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT action, object_id, detail FROM audit_log WHERE actor = %s ORDER BY id",
                 (actor,))


def test_every_role_reads_the_list_and_the_profiles(client: TestClient) -> None:
    for headers in READERS:
        goods = client.get(GOODS, headers=headers)
        assert goods.status_code == 200, goods.text
        fuel = next(g for g in goods.json() if g["hs_prefix"] == "2710")
        assert (fuel["label"], fuel["points"]) == ("fuel (petroleum oils, not crude)", 40)
        assert client.get(f"{GOODS}/2402", headers=headers).json()["points"] == 40
        profiles = client.get(PROFILES, headers=headers)
        assert profiles.status_code == 200, profiles.text
        assert [p["level"] for p in profiles.json()] == ["low", "medium", "high"]
    assert client.get(GOODS).status_code == 401


def test_an_operator_adds_changes_and_removes_an_entry_audited(client: TestClient, database_url: str) -> None:
    hs, who = prefix(), unique("risk-operator-")
    headers = auth("operator", subject=who)
    added = client.put(f"{GOODS}/{hs}", json={"label": "test goods", "points": 25}, headers=headers)
    assert added.status_code == 201, added.text
    assert added.json() | {"updated_at": None} == {"hs_prefix": hs, "label": "test goods", "points": 25,
                                                    "updated_by": who, "updated_at": None}
    changed = client.put(f"{GOODS}/{hs}", json={"label": "test goods, revised", "points": 30}, headers=headers)
    assert changed.status_code == 200 and changed.json()["points"] == 30
    assert client.get(f"{GOODS}/{hs}", headers=auth("integrator")).json()["label"] == "test goods, revised"
    deleted = client.delete(f"{GOODS}/{hs}", headers=headers)
    assert deleted.status_code == 200 and deleted.json()["label"] == "test goods, revised"
    gone = client.get(f"{GOODS}/{hs}", headers=headers)
    assert gone.status_code == 404 and gone.json()["detail"] == f"no sensitive goods entry for hs_prefix '{hs}'"
    assert client.delete(f"{GOODS}/{hs}", headers=headers).status_code == 404
    assert audited(who, database_url) == [
        ("risk.sensitive_goods.put", hs, {"before": None, "after": {"label": "test goods", "points": 25}}),
        ("risk.sensitive_goods.put", hs, {"before": {"label": "test goods", "points": 25},
                                          "after": {"label": "test goods, revised", "points": 30}}),
        ("risk.sensitive_goods.deleted", hs, {"before": {"label": "test goods, revised", "points": 30}})]


def test_officers_and_integrators_cannot_edit(client: TestClient, database_url: str) -> None:
    hs = prefix()
    for headers in (auth("officer", "KE-MSA"), auth("integrator")):
        refused = client.put(f"{GOODS}/{hs}", json={"label": "x", "points": 100}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert "may not do this (allowed: admin, operator)" in refused.json()["detail"]
        assert client.delete(f"{GOODS}/2710", headers=headers).status_code == 403
        assert client.put(f"{PROFILES}/high", json=DEFAULTS["low"], headers=headers).status_code == 403
    assert scalar(database_url, "SELECT count(*) FROM sensitive_goods WHERE hs_prefix = %s", (hs,)) == 0
    assert client.get(f"{PROFILES}/high", headers=auth("admin")).json() | {"updated_at": None, "updated_by": None} \
        == DEFAULTS["high"] | {"level": "high", "updated_at": None, "updated_by": None}


@pytest.mark.parametrize(("path", "body", "loc", "says"), [
    ("27a0", {"label": "x", "points": 1}, ["path", "hs_prefix"], "hs_prefix '27a0' is not an HS code prefix"),
    ("2", {"label": "x", "points": 1}, ["path", "hs_prefix"], "hs_prefix '2' is not"),
    ("99887766554", {"label": "x", "points": 1}, ["path", "hs_prefix"], "of 2 to 10 digits"),
    ("9988", {"label": "x", "points": 101}, ["body", "points"], "less than or equal to 100"),
    ("9988", {"label": "x", "points": -1}, ["body", "points"], "greater than or equal to 0"),
    ("9988", {"label": "  ", "points": 1}, ["body", "label"], "must not be blank"),
    ("9988", {"label": "x" * 201, "points": 1}, ["body", "label"], "at most 200 characters"),
    ("9988", {"label": "x", "points": 1, "weight": 2}, ["body", "weight"], "Extra inputs are not permitted"),
])
def test_a_bad_entry_is_a_422_naming_the_field(client: TestClient, path: str, body: dict[str, Any],
                                               loc: list[str], says: str) -> None:
    found, msg = problem(client.put(f"{GOODS}/{path}", json=body, headers=auth("admin")))
    assert found == loc and says in msg


def test_a_new_entry_raises_the_score_of_a_shipment_declaring_such_goods(client: TestClient,
                                                                         database_url: str) -> None:
    hs = prefix()
    shipment = ship(client, make_world(client))
    declare(database_url, shipment["id"], f"{hs}00")
    assert assess(database_url, shipment["id"])[1] == "low"
    assert client.put(f"{GOODS}/{hs}", json={"label": "watched goods", "points": 50},
                      headers=auth("operator")).status_code == 201
    stored, level = assess(database_url, shipment["id"])
    assert level == "high" and stored["reasons"] == [
        {"factor": "goods", "points": 50, "detail": f"HS {hs}00 (line 1) matches {hs} watched goods"}]


@pytest.fixture
def low_profile(client: TestClient) -> Iterator[str]:
    """The low profile, put back to its defaults afterwards (the session's database is shared)."""
    yield "low"
    assert client.put(f"{PROFILES}/low", json=DEFAULTS["low"], headers=auth("admin")).status_code == 200


def test_a_profile_change_is_audited_and_reaches_the_engine(client: TestClient, database_url: str,
                                                            low_profile: str) -> None:
    who = unique("risk-admin-")
    version = scalar(database_url, "SELECT shipments FROM geofence_version")
    changed = DEFAULTS["low"] | {"stop_min_s": 2400.0, "report_interval_s": 3600.0}
    response = client.put(f"{PROFILES}/{low_profile}", json=changed, headers=auth("admin", subject=who))
    assert response.status_code == 200, response.text
    assert response.json() | {"updated_at": None} == changed | {"level": "low", "updated_by": who,
                                                                  "updated_at": None}
    assert client.get(f"{PROFILES}/low", headers=auth("officer", "KE-MSA")).json()["stop_min_s"] == 2400.0
    assert scalar(database_url, "SELECT shipments FROM geofence_version") > version
    assert audited(who, database_url) == [("risk.profile.put", "low", {"before": DEFAULTS["low"], "after": changed})]


@pytest.mark.parametrize(("level", "change", "loc", "says"), [
    ("extreme", {}, ["path", "level"], "level 'extreme' is not one of low, medium, high"),
    ("high", {"corridor_factor": 1.5}, ["body", "corridor_factor"], "less than or equal to 1"),
    ("high", {"corridor_factor": 0}, ["body", "corridor_factor"], "greater than 0"),
    ("high", {"stop_min_s": -5}, ["body", "stop_min_s"], "greater than 0"),
    ("high", {"report_interval_s": "soon"}, ["body", "report_interval_s"], "valid number"),
    ("high", {"border_dwell_factor": 0}, ["body", "border_dwell_factor"], "greater than 0"),
    ("high", {"severity_shift": 2}, ["body", "severity_shift"], "less than or equal to 1"),
    ("high", {"colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
])
def test_a_bad_profile_is_a_422_naming_the_field(client: TestClient, level: str, change: dict[str, Any],
                                                 loc: list[str], says: str) -> None:
    found, msg = problem(client.put(f"{PROFILES}/{level}", json=DEFAULTS["high"] | change, headers=auth("admin")))
    assert found == loc and says in msg


def test_a_profile_missing_a_field_is_a_422_naming_it(client: TestClient) -> None:
    body = {k: v for k, v in DEFAULTS["high"].items() if k != "severity_shift"}
    assert problem(client.put(f"{PROFILES}/high", json=body, headers=auth("admin"))) == (
        ["body", "severity_shift"], "Field required")


def test_concurrent_puts_of_a_new_prefix_add_it_once(client: TestClient, database_url: str) -> None:
    hs, who = prefix(), unique("risk-race-")
    start = threading.Barrier(6)

    def put(points: int) -> int:
        start.wait()
        return client.put(f"{GOODS}/{hs}", json={"label": "raced", "points": points},
                          headers=auth("operator", subject=who)).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(put, range(6)))
    assert codes == [200] * 5 + [201]
    befores = [detail["before"] for _, _, detail in audited(who, database_url)]
    assert befores.count(None) == 1 and befores[0] is None
