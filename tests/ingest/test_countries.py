"""Ingest records the country of every fix (fixes.country, latest_positions.country)."""

from __future__ import annotations

import json
import time

import psycopg

from protocol.records import Fix, encode
from tests.support import Device, IngestProcess, execute, provision, query, scalar, unique_prefix, wait_for

NOW_MS = int(time.time() * 1000)
# (lon, lat) -> country: Nairobi, Kampala, the Indian Ocean off Mombasa, Lake Victoria's Ugandan shore
PLACES = [((36.8219, -1.2921), "KEN"), ((32.5825, 0.3476), "UGA"), ((45.0, -5.0), None), ((39.2083, -6.7924), "TZA")]
# A made-up country in the mid-Atlantic, far from every real one.
ATLANTIC = {"type": "Polygon", "coordinates": [[[-30, 10], [-29, 10], [-29, 11], [-30, 11], [-30, 10]]]}


def fixes_of(database_url: str, device_id: str) -> list[tuple[int, str | None]]:
    return [(r[0], r[1]) for r in query(database_url, "SELECT seq, country FROM fixes WHERE device_id = %s "
                                                      "ORDER BY seq", (device_id,))]


def publish(device_id: str, points: list[tuple[float, float]], first_seq: int = 0) -> None:
    with Device(device_id) as d:
        d.publish_all([("pos", encode(Fix(seq=first_seq + i, ts=NOW_MS - 3_600_000 + (first_seq + i) * 1000,
                                          lat=lat, lon=lon, spd=50.0)))
                       for i, (lon, lat) in enumerate(points)])
        last = first_seq + len(points) - 1
        wait_for(lambda: last in d.acks, 15, f"ack of seq {last}")


def test_fixes_get_the_country_they_are_in(ingest: IngestProcess, countries: list[str], database_url: str) -> None:
    dev = unique_prefix("ctry")
    provision([dev])
    publish(dev, [p for p, _ in PLACES])
    assert fixes_of(database_url, dev) == [(i, c) for i, (_, c) in enumerate(PLACES)]
    # The newest fix (by time) is the last one: Dar es Salaam.
    assert scalar(database_url, "SELECT country FROM latest_positions WHERE device_id = %s", (dev,)) == "TZA"
    publish(dev, [(45.0, -5.0)], first_seq=len(PLACES))
    assert scalar(database_url, "SELECT country FROM latest_positions WHERE device_id = %s", (dev,)) is None


def test_a_country_loaded_or_removed_while_ingest_runs_is_used_at_once(ingest: IngestProcess, countries: list[str],
                                                                        database_url: str) -> None:
    dev = unique_prefix("ctry")
    provision([dev])
    inside = (-29.5, 10.5)
    try:
        execute(database_url, "INSERT INTO countries (code, geometry, source) VALUES ('ZZZ', %s, 'test')",
                (json.dumps(ATLANTIC),))
        publish(dev, [inside])
        execute(database_url, "DELETE FROM countries WHERE code = 'ZZZ'")
        publish(dev, [inside], first_seq=1)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM countries WHERE code = 'ZZZ'")
    assert fixes_of(database_url, dev) == [(0, "ZZZ"), (1, None)]
    assert "KEN" in countries  # East Africa stayed loaded
