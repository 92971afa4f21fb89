"""Seal openings after departure: at the destination only from release on (fix time),
before it a breach even inside the zone; at a border post of the itinerary with an
authorised inspection, one opening is recorded (``inspection_opening``), the seal's
re-arming there is no mismatch, and a second opening there is a breach."""

from __future__ import annotations

from collections.abc import Callable

from tests.ingest.alerting.seal_support import (
    DESTINATION,
    POST,
    POST_LON,
    event,
    milestones,
    now_ms,
    seal_alerts,
    sealed,
    send,
)
from tests.ingest.conftest import Transit
from tests.support import IngestProcess, execute, query

AT_POST = (POST_LON + 0.001, 0.001)


def test_an_opening_at_the_destination_is_a_breach_until_release(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "release")
    release = now_ms() - 600_000
    execute(database_url, "UPDATE shipments SET status = 'arrived', arrived_at = to_timestamp(%s / 1000.0),"
                          " released_at = to_timestamp(%s / 1000.0), released_by = 'officer' WHERE id = %s",
            (release - 600_000, release, s.id))
    send(s.seal, [event(0, release, s.number, "opened", DESTINATION)])
    assert seal_alerts(database_url, s.id) == []  # at release: normal
    send(s.seal, [event(1, release - 1000, s.number, "opened", DESTINATION)])
    assert [(t, started, ended) for t, started, ended, _ in seal_alerts(database_url, s.id)] == [
        ("seal_breach", release - 1000, None)]


def test_one_opening_per_authorised_inspection_at_a_border_post(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "inspect")
    opened = now_ms() - 1_800_000
    # Authorised 4 min after the opening it covers: within the 5 min allowed.
    execute(database_url, "INSERT INTO inspections (shipment_id, office_code, authorised_at, authorised_by)"
                          " VALUES (%s, %s, to_timestamp(%s / 1000.0), 'officer')", (s.id, POST, opened + 240_000))
    send(s.seal, [event(0, opened, s.number, "opened", AT_POST)])
    send(s.seal, [event(1, opened + 600_000, s.number, "armed", AT_POST)])
    assert seal_alerts(database_url, s.id) == []
    (inspection,) = query(database_url, "SELECT id FROM inspections WHERE shipment_id = %s", (s.id,))[0]
    assert milestones(database_url, s.id) == [
        ("inspection_opening", POST, opened,
         {"position": 1, "seal_number": s.number, "inspection": inspection, "event": "opened"}),
        ("seal_armed", POST, opened + 600_000, {"position": 1, "seal_number": s.number, "inspection": inspection})]
    assert query(database_url, "SELECT (extract(epoch FROM used_at) * 1000)::int8, used_device, used_seq"
                               " FROM inspections WHERE id = %s", (inspection,)) == [(opened, s.seal, 0)]
    # The inspection is used up: a second opening at the post is a breach, a second re-arming a mismatch.
    send(s.seal, [event(2, opened + 900_000, s.number, "opened", AT_POST),
                  event(3, opened + 960_000, s.number, "armed", AT_POST)])
    assert [(t, started) for t, started, _, _ in seal_alerts(database_url, s.id)] == [
        ("seal_breach", opened + 900_000), ("seal_mismatch", opened + 960_000)]


def test_an_inspection_authorised_long_after_the_opening_does_not_cover_it(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    s = sealed(database_url, transit, "inspectlate")
    opened = now_ms() - 1_800_000
    execute(database_url, "INSERT INTO inspections (shipment_id, office_code, authorised_at, authorised_by)"
                          " VALUES (%s, %s, to_timestamp(%s / 1000.0), 'officer')", (s.id, POST, opened + 301_000))
    send(s.seal, [event(0, opened, s.number, "opened", AT_POST)])
    assert [t for t, *_ in seal_alerts(database_url, s.id)] == ["seal_breach"]
    assert query(database_url, "SELECT used_at FROM inspections WHERE shipment_id = %s", (s.id,)) == [(None,)]
