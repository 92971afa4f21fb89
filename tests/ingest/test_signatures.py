"""Signed records and replays, through the real broker, ingest and TimescaleDB: a device
that must sign has its unsigned and forged records dead-lettered; any device's replayed
records (a seq already used, with another ts or body) are dead-lettered; each refusal on
a device serving an in-transit shipment raises device_tamper; acks still move on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg

from ctt.device_keys import DeviceKind, provision_keys
from protocol.records import Fix, SealEvent, SealEventName, encode
from protocol.signing import sign
from tests.ingest.conftest import HOUR_MS, Transit
from tests.ingest.test_alerting import acked
from tests.support import AlertListener, Device, IngestProcess, query, wait_for


def dead_letters(database_url: str, device_id: str) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT seq, reason FROM dead_letters WHERE device_id = %s ORDER BY seq, id",
                 (device_id,))


def tamper_alerts(database_url: str, shipment_id: int) -> list[tuple[Any, ...]]:
    return query(database_url, "SELECT device_id, (extract(epoch FROM started_at) * 1000)::int8, ended_at,"
                               " severity, detail->>'reason' FROM alerts WHERE shipment_id = %s"
                               " AND type = 'device_tamper'", (shipment_id,))


def keys(database_url: str, device_ids: list[str], kind: DeviceKind) -> dict[str, bytes]:
    with psycopg.connect(database_url) as conn:
        return provision_keys(conn, device_ids, kind, None)


def test_a_seal_that_must_sign_has_unsigned_and_forged_events_refused_and_the_breach_stays_open(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit], listener: AlertListener) -> None:
    start = int(time.time() * 1000) - 2 * HOUR_MS
    tr = transit("signed", start)
    key = keys(database_url, [tr.seal], "eseal")[tr.seal]

    def event(seq: int, ts: int, name: SealEventName) -> SealEvent:
        return SealEvent(seq=seq, ts=ts, seal_id=tr.seal, event=name, lat=0.0, lon=30.5)

    armed = sign(key, tr.seal, "seal", event(0, start - 600_000, "armed"))
    opened = sign(key, tr.seal, "seal", event(1, start + 600_000, "opened"))
    unsigned = event(2, start + 900_000, "armed")
    forged = sign(bytes(32), tr.seal, "seal", event(3, start + 960_000, "closed"))
    altered = msgspec.structs.replace(sign(key, tr.seal, "seal", event(4, start + 990_000, "armed")),
                                      ts=start + 1_000_000)
    with Device(tr.seal) as seal:
        seal.publish_all([("seal", encode(r)) for r in (armed, opened, unsigned, forged, altered)])
        acked(seal, 4)  # refused records count for the ack: resending them cannot help
        wait_for(lambda: tamper_alerts(database_url, tr.shipment_id), 10, "device_tamper")
    stored = query(database_url, "SELECT seq, event FROM seal_events WHERE device_id = %s ORDER BY seq", (tr.seal,))
    assert stored == [(0, "armed"), (1, "opened")]
    refused = dead_letters(database_url, tr.seal)
    assert [(seq, reason.split(":")[0]) for seq, reason in refused] == [
        (2, "unsigned record"), (3, "signature does not verify"), (4, "signature does not verify")]
    ((device, started, ended, severity, reason),) = tamper_alerts(database_url, tr.shipment_id)
    assert (device, started, ended, severity) == (tr.seal, unsigned.ts, None, "critical")
    assert reason.startswith("unsigned record: seal seq 2")
    breach = query(database_url, "SELECT ended_at FROM alerts WHERE shipment_id = %s AND type = 'seal_breach'",
                   (tr.shipment_id,))
    assert breach == [(None,)]  # neither the unsigned armed nor the forged closed ended it
    wait_for(lambda: ("opened", "device_tamper") in listener.of(tr.seal), 10, "device_tamper on MQTT")


def test_any_device_s_replayed_records_are_refused_and_duplicates_stored_once(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    start = int(time.time() * 1000) - 2 * HOUR_MS
    tr = transit("replay", start)  # the tracker has no key: a v1 device
    fixes = [Fix(seq=i, ts=start + i * 15_000, lat=0.0, lon=30.0 + i * 0.001) for i in range(4)]
    with Device(tr.tracker) as trk:
        trk.publish_all([("pos", encode(f)) for f in fixes])
        acked(trk, 3)
        shifted = msgspec.structs.replace(fixes[1], ts=fixes[1].ts + HOUR_MS)  # same seq, new ts
        moved = msgspec.structs.replace(fixes[2], lat=0.01)  # same seq and ts, another body
        twice = [Fix(seq=5, ts=start + 90_000, lat=0.0, lon=30.01), Fix(seq=5, ts=start + 95_000, lat=0.0, lon=30.01)]
        bad = b'{"seq": 4, "ts": 1, "lat": 0, "lon": 30}'  # refused at parse, counts for the ack
        trk.publish_all([("pos", encode(shifted)), ("pos", encode(moved)), ("pos", encode(fixes[3])),
                         ("pos", bad), ("pos", encode(twice))])
        acked(trk, 5)
        late4 = Fix(seq=4, ts=start + 60_000, lat=0.0, lon=30.004)  # seq 4 was used (refused): the counter went back
        trk.publish_all([("pos", encode(late4))])
        wait_for(lambda: len(dead_letters(database_url, tr.tracker)) >= 5, 10, "the replays dead-lettered")
    stored = query(database_url, "SELECT seq, (extract(epoch FROM ts) * 1000)::int8, lat FROM fixes"
                                 " WHERE device_id = %s ORDER BY seq", (tr.tracker,))
    assert stored == [(f.seq, f.ts, f.lat) for f in fixes] + [(5, twice[0].ts, 0.0)]
    reasons = [(seq, reason) for seq, reason in dead_letters(database_url, tr.tracker) if "replayed" in reason]
    assert [seq for seq, _ in reasons] == [1, 2, 4, 5]
    assert f"already stored with ts {fixes[1].ts}" in reasons[0][1]
    assert "twice in one batch" in reasons[3][1] or "already stored" in reasons[3][1]
    assert "counter went back" in reasons[2][1]
    ((device, _started, ended, _severity, reason),) = tamper_alerts(database_url, tr.shipment_id)
    assert (device, ended) == (tr.tracker, None) and reason.startswith("replayed record")


def test_a_tracker_that_may_sign_has_wrong_signatures_refused_and_unsigned_records_kept(
        ingest: IngestProcess, database_url: str, transit: Callable[..., Transit]) -> None:
    start = int(time.time() * 1000) - 2 * HOUR_MS
    tr = transit("maysign", start)
    key = keys(database_url, [tr.tracker], "tracker")[tr.tracker]
    good = sign(key, tr.tracker, "pos", Fix(seq=0, ts=start, lat=0.0, lon=30.0))
    unsigned = Fix(seq=1, ts=start + 15_000, lat=0.0, lon=30.001)
    wrong = sign(bytes(32), tr.tracker, "pos", Fix(seq=2, ts=start + 30_000, lat=0.0, lon=30.002))
    with Device(tr.tracker) as trk:
        trk.publish_all([("pos", encode(r)) for r in (good, unsigned, wrong)])
        acked(trk, 2)
    assert [s for (s,) in query(database_url, "SELECT seq FROM fixes WHERE device_id = %s ORDER BY seq",
                                (tr.tracker,))] == [0, 1]
    assert [(s, r.split(":")[0]) for s, r in dead_letters(database_url, tr.tracker)] == [
        (2, "signature does not verify")]


def test_the_check_without_a_database_and_the_batch_keeps_its_runs_and_latest_fix() -> None:
    from ingest.batch import Batch
    from ingest.messages import Parsed
    from ingest.refusals import refuse
    from ingest.signatures import DeviceKey, check

    key = bytes(range(32))
    signed = [sign(key, "trk", "pos", Fix(seq=i, ts=1_767_225_600_000 + i, lat=0.0, lon=30.0)) for i in range(3)]
    forged = msgspec.structs.replace(signed[2], seq=3, ts=1_767_225_600_009)  # a signature lifted from another record
    batch = Batch()
    batch.add(Parsed("trk", fixes=[signed[0], forged]), 1)
    batch.add(Parsed("trk", fixes=[signed[1], Fix(seq=4, ts=1_767_225_600_004, lat=0.0, lon=30.0)]), 2)
    batch.add(Parsed("v1", fixes=[Fix(seq=0, ts=1_767_225_600_000, lat=0.0, lon=31.0)]), 3)
    assert check(batch, {}) == []  # no device of the batch has a key: nothing to do
    refusals = check(batch, {"trk": DeviceKey(key, must_sign=True)})
    assert [(r.index, r.reason.split(":")[0]) for r in refusals] == [
        (1, "signature does not verify"), (3, "unsigned record")]
    refuse(batch, refusals)
    assert [(row[0], row[1]) for row in batch.fixes] == [("trk", 0), ("trk", 1), ("v1", 0)]
    assert batch.fix_runs == [("trk", 0, 1), ("trk", 1, 2), ("v1", 2, 3)]
    assert batch.latest["trk"][1] == 1 and len(batch.fix_records) == len(batch.fix_backlog) == 3
    assert [(r.seq, ms) for r, ms in batch.rejects] == [(3, 1), (4, 2)]
    assert batch.seqs["trk"] == [0, 3, 1, 4]  # refused records still count for the ack
    assert [t[0] for t in batch.tampered] == ["trk", "trk"]
