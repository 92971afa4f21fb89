"""Hostile devices against the real broker and ingest process: nothing a device
sends stops ingest, and what it refuses is kept in dead letters with the reason."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.request

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctt.config import REPO_ROOT
from ingest.messages import parse_message
from ingest.store import is_transient
from protocol.records import Fix, encode
from tests.ingest import hostile
from tests.support import Device, IngestProcess, execute, provision, query, scalar, unique_prefix, wait_for

POISON_STATUS = b'{"ts":%d,"state":"online","fw":"2.\xff\xc0\xaf"}'
SENTINEL_SEQ = 10**12  # above every valid seq the hostile strategies make
# Reasons that depend on the clock: the test's and ingest's differ by a few seconds.
CLOCK_REASONS = ("clock skew", "maximum age")
SAMPLE_NOW_MS = int(time.time() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _counter(ingest: IngestProcess, name: str) -> float:
    """An unlabelled counter of the running ingest process (0 before it exists)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{ingest.metrics_port}/metrics", timeout=2).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _fix_stored(url: str, device_id: str, seq: int) -> bool:
    return bool(scalar(url, "SELECT count(*) FROM fixes WHERE device_id = %s AND seq = %s", (device_id, seq)))


def test_retained_poison_status_is_dead_lettered_and_survives_restarts(ingest: IngestProcess,
                                                                        database_url: str) -> None:
    dev = unique_prefix("poison")
    provision([dev])
    topic = f"ctt/v1/dev/{dev}/status"
    payload = POISON_STATUS % _now_ms()
    with Device(dev) as d:
        d.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=10)
        try:
            wait_for(lambda: query(database_url, "SELECT reason FROM dead_letters WHERE device_id = %s", (dev,)),
                     15, "the poison status in dead letters")
            # On every restart the broker delivers the retained status again.
            for _ in range(2):
                ingest.stop()
                ingest.start()
                wait_for(lambda: _counter(ingest, "ctt_ingest_dead_letters_total") >= 1, 15,
                         "the restarted ingest to refuse the retained status again")
                assert ingest.metric("ctt_ingest_broker_connected") == 1.0  # and it is still up
            d.publish_all([("pos", encode(Fix(seq=0, ts=_now_ms(), lat=-1.0, lon=36.0)))])
            wait_for(lambda: _fix_stored(database_url, dev, 0), 15, "the valid fix sent after the poison")
        finally:
            d.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=10)
    rows = query(database_url, "SELECT payload, reason FROM dead_letters WHERE device_id = %s", (dev,))
    assert len(rows) == 1, rows  # redelivered on each restart, kept once
    stored, reason = rows[0]
    assert bytes(stored) == payload
    assert "utf-8" in reason  # the decoder's own words


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sample=st.lists(hostile.messages(SAMPLE_NOW_MS), min_size=10, max_size=10))
def test_hostile_sample_through_broker_and_process(ingest: IngestProcess, database_url: str,
                                                   sample: list[tuple[str, bytes]]) -> None:
    dev = unique_prefix("hostile")
    provision([dev])
    sample = hostile.known(SAMPLE_NOW_MS) + sample
    with Device(dev) as d:
        d.publish_all(sample)
        d.publish_all([("pos", encode(Fix(seq=SENTINEL_SEQ, ts=_now_ms(), lat=-1.0, lon=36.0)))])
        # The good fix behind the hostile ones is stored: they did not stop ingest.
        wait_for(lambda: _fix_stored(database_url, dev, SENTINEL_SEQ), 20, "the valid fix sent afterwards")
    assert ingest.metric("ctt_ingest_broker_connected") == 1.0
    stored = {bytes(digest) for (digest,) in query(
        database_url, "SELECT digest FROM dead_letters WHERE device_id = %s", (dev,))}
    for kind, payload in sample:
        expected = parse_message(f"ctt/v1/dev/{dev}/{kind}", payload, _now_ms()).rejects
        missing = [r.reason for r in expected
                   if r.digest not in stored and not any(c in r.reason for c in CLOCK_REASONS)]
        assert not missing, (kind, payload, missing)


def test_fixes_older_than_the_maximum_age_are_refused_but_acked(ingest: IngestProcess, database_url: str) -> None:
    # One array of 300 fixes a day apart once created 300 TimescaleDB chunks.
    dev = unique_prefix("old")
    provision([dev])
    chunks_before = scalar(database_url, "SELECT count(*) FROM show_chunks('fixes')")
    now = _now_ms()
    backlog = [Fix(seq=i, ts=now - i * 86_400_000, lat=-1.0, lon=36.0) for i in range(300)]
    with Device(dev) as d:
        d.publish_all([("pos", encode(backlog))])
        wait_for(lambda: 299 in d.acks, 20, "the device ack covering all 300 seqs")
    stored = scalar(database_url, "SELECT array_agg(seq ORDER BY seq) FROM fixes WHERE device_id = %s", (dev,))
    assert stored == list(range(31))  # 0 .. 30 days old; the default maximum age is 31 days
    refused = query(database_url, "SELECT seq, reason FROM dead_letters WHERE device_id = %s ORDER BY seq", (dev,))
    assert [seq for seq, _ in refused] == list(range(31, 300))
    assert all(f"pos[{seq}]: ts" in reason and "older than the maximum age" in reason for seq, reason in refused)
    assert scalar(database_url, "SELECT count(*) FROM show_chunks('fixes')") - chunks_before <= 32


def test_oversized_dead_letter_keeps_a_prefix_its_length_and_hash(ingest: IngestProcess, database_url: str) -> None:
    dev = unique_prefix("big")
    provision([dev])
    payload = b'{"seq":0,"ts":1,"lat":0,"lon":0,"pad":"' + os.urandom(60_000).hex().encode() + b'"}'
    with Device(dev) as d:
        d.publish_all([("pos", payload), ("pos", payload)])  # redelivered or resent: kept once
        wait_for(lambda: 0 in d.acks, 15, "the ack of the refused record")
    rows = query(database_url, "SELECT payload, payload_length, payload_sha256, reason FROM dead_letters"
                 " WHERE device_id = %s", (dev,))
    assert len(rows) == 1
    kept, length, sha256, reason = rows[0]
    assert bytes(kept) == payload[:4096]  # CTT_DEAD_LETTER_MAX_BYTES
    assert length == len(payload) and bytes(sha256) == hashlib.sha256(payload).digest()
    assert "$.ts" in reason


def test_retention_deletes_old_dead_letters_only(database_url: str) -> None:
    tag = unique_prefix("ret")
    for age_days, name in ((500, "old"), (2, "new")):
        execute(database_url, "INSERT INTO dead_letters (received_at, topic, payload, payload_length, payload_sha256,"
                " reason, digest) VALUES (now() - %s * interval '1 day', %s, 'x', 1, sha256('x'), 'test', %s)",
                (age_days, f"{tag}/{name}", hashlib.sha256(f"{tag}/{name}".encode()).digest()))
    result = subprocess.run([sys.executable, "-m", "ctt.cli", "retention", "--keep-days", "400",
                             "--min-interval-h", "0"], cwd=REPO_ROOT,
                            env={**os.environ, "CTT_DATABASE_URL": database_url}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "dead_letters: deleted" in result.stderr
    assert "geofence_checkpoints: deleted" in result.stderr  # pruned by the same daily job
    left = query(database_url, "SELECT topic FROM dead_letters WHERE topic LIKE %s", (tag + "/%",))
    assert left == [(f"{tag}/new",)]


def _broker_option(name: str) -> int:
    conf = (REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf.in").read_text().splitlines()
    (value,) = [line.split()[1] for line in conf if line.startswith(name + " ")]
    return int(value)


def test_ingest_session_queue_is_bounded_in_bytes_and_holds_hours_of_outage() -> None:
    # Without a byte bound a few devices sending 1 MiB packets fill the broker's memory.
    max_bytes, max_messages = _broker_option("max_queued_bytes"), _broker_option("max_queued_messages")
    assert 0 < max_bytes <= 4 * 10**9
    four_hours = 10_000 * 4 * 3600 // 15  # messages of 10,000 trucks every 15 s
    live_fix = len(encode(Fix(seq=10**7, ts=_now_ms(), lat=-1.2834567, lon=36.8234567, spd=61.3, hdg=271.5,
                              acc=4.8, bat=87.5, v=1)))
    assert max_messages >= four_hours and max_bytes >= four_hours * 2 * live_fix


def _raised(database_url: str, sqlstate: str) -> psycopg.Error:
    """The error the database raises with ``sqlstate``."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$")
        except psycopg.Error as exc:
            return exc
    raise AssertionError(f"nothing raised for {sqlstate}")


@pytest.mark.parametrize(("sqlstate", "transient"), [
    ("08006", True), ("57P01", True), ("57P03", True), ("53300", True), ("40001", True), ("40P01", True),
    ("25006", True), ("53200", False), ("53400", False), ("53100", False), ("54000", False), ("22P02", False),
    ("23505", False), ("XX000", False), ("57014", False),
])
def test_database_errors_are_transient_only_when_a_retry_can_succeed(database_url: str, sqlstate: str,
                                                                     transient: bool) -> None:
    exc = _raised(database_url, sqlstate)
    assert exc.sqlstate == sqlstate
    assert is_transient(exc) is transient


def test_error_that_never_succeeds_on_retry_dead_letters_one_message_not_the_batch(
        ingest: IngestProcess, database_url: str) -> None:
    # An operator's trigger stands in for any error a retry cannot cure; 53200 is what
    # "out of shared memory / too many locks in one transaction" raises.
    good, bad = [unique_prefix("mate") for _ in range(4)], unique_prefix("locks")
    provision([*good, bad])
    execute(database_url, f"""
        CREATE FUNCTION test_refuse_{bad}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            RAISE EXCEPTION 'test: out of shared memory' USING ERRCODE = '53200'; END $$;
        CREATE TRIGGER test_refuse BEFORE INSERT ON fixes FOR EACH ROW WHEN (NEW.device_id = '{bad}')
            EXECUTE FUNCTION test_refuse_{bad}();""")
    retries_before = ingest.metric('ctt_ingest_database_errors_total{kind="transient"}') or 0.0
    now = _now_ms()
    try:
        devices = [Device(d).__enter__() for d in [*good, bad]]
        try:
            infos = [dev.publish("pos", encode(Fix(seq=s, ts=now - 1000 + s, lat=-1.0, lon=36.0)))
                     for s in range(25) for dev in devices]
            for info in infos:
                info.wait_for_publish(timeout=10)
            wait_for(lambda: all(24 in dev.acks for dev in devices), 20, "every device's ack of seq 24")
        finally:
            for dev in devices:
                dev.__exit__(None, None, None)
    finally:
        execute(database_url, f"DROP TRIGGER test_refuse ON fixes; DROP FUNCTION test_refuse_{bad}()")
    for dev_id in good:
        assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (dev_id,)) == 25
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (bad,)) == 0
    reasons = [r for (r,) in query(database_url, "SELECT reason FROM dead_letters WHERE device_id = %s", (bad,))]
    assert len(reasons) == 25
    assert all(r.startswith("database refused:") and "SQLSTATE 53200" in r for r in reasons)
    # Refused, not retried: no retry loop, and ingest is still up.
    assert (ingest.metric('ctt_ingest_database_errors_total{kind="transient"}') or 0.0) == retries_before
    assert ingest.metric("ctt_ingest_broker_connected") == 1.0


def test_terminated_database_connection_is_retried_not_refused(ingest: IngestProcess, database_url: str) -> None:
    # 57P01 (admin shutdown) is what a restarting database sends: retry, dead-letter nothing.
    dev = unique_prefix("term")
    provision([dev])
    retries_before = ingest.metric('ctt_ingest_database_errors_total{kind="transient"}') or 0.0
    now = _now_ms()
    with Device(dev) as d:
        for start in range(0, 3000, 500):
            d.publish_all([("pos", encode(Fix(seq=s, ts=now - 5000 + s, lat=-1.0, lon=36.0)))
                           for s in range(start, start + 500)])
            execute(database_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'ctt-ingest' AND datname = current_database()")
        wait_for(lambda: 2999 in d.acks, 30, "the ack of seq 2999")
    assert scalar(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s", (dev,)) == 3000
    assert scalar(database_url, "SELECT count(*) FROM dead_letters WHERE device_id = %s", (dev,)) == 0
    assert (ingest.metric('ctt_ingest_database_errors_total{kind="transient"}') or 0.0) > retries_before
