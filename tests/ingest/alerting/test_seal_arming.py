"""``armed`` events checked against the declaration, through the broker and ingest:
a declared number inside the office of departure zone is a ``seal_armed`` milestone
(also while the shipment is still registered); an undeclared number or an arming
elsewhere is an instantaneous ``seal_mismatch`` saying why."""

from __future__ import annotations

from collections.abc import Callable

from tests.ingest.alerting.seal_support import (
    DEPARTURE,
    MID_ROUTE,
    event,
    milestones,
    now_ms,
    seal_alerts,
    sealed,
    send,
)
from tests.ingest.conftest import Transit
from tests.support import AlertListener, IngestProcess, execute, wait_for


def test_a_declared_seal_armed_at_departure_while_registered_is_a_milestone(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "armok")
    execute(database_url, "UPDATE shipments SET status = 'registered', departed_at = NULL WHERE id = %s", (s.id,))
    ts = now_ms() - 60_000
    send(s.seal, [event(0, ts, s.number, "armed", DEPARTURE)])
    assert milestones(database_url, s.id) == [
        ("seal_armed", "TSTDEP", ts, {"position": 0, "seal_number": s.number})]
    assert seal_alerts(database_url, s.id) == []


def test_a_forged_arming_with_an_undeclared_number_is_a_mismatch(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    s = sealed(database_url, transit, "armfake")
    ts = now_ms() - 120_000
    send(s.seal, [event(0, ts, "FORGED-1", "armed", DEPARTURE)])
    assert seal_alerts(database_url, s.id) == [
        ("seal_mismatch", ts, ts, {"seal_number": "FORGED-1",
                                   "reason": "seal number FORGED-1 is not declared on the shipment"})]
    assert milestones(database_url, s.id) == []
    wait_for(lambda: listener.of(s.seal) == [("opened", "seal_mismatch")], 10, "the mismatch message")
    message = listener.messages[-1]
    assert message["severity"] == "high" and message["ended_at"] == message["started_at"]


def test_a_declared_seal_armed_away_from_the_office_of_departure_is_a_mismatch(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "armaway")
    ts = now_ms() - 120_000
    send(s.seal, [event(0, ts, s.number, "armed", MID_ROUTE)])
    assert seal_alerts(database_url, s.id) == [
        ("seal_mismatch", ts, ts, {"seal_number": s.number, "reason": "armed outside the office of departure TSTDEP"})]
    assert milestones(database_url, s.id) == []
