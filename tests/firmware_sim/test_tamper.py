"""The ``tamper`` scenario end to end (simulator -> broker -> ingest -> TimescaleDB): the
devices sign with the keys provisioning gave them; an intruder forges an ``armed`` event
after a seal breach and replays captured records. Its expected alerts and dead letters
must be exactly what the database holds."""

from __future__ import annotations

import psycopg

from ctt.device_keys import provision_simulated
from ctt.transit import register
from firmware_sim.runner import SimClock, Simulation
from firmware_sim.scenarios import FORGED_SEQ, REPLAYED_FIXES, deliveries, tamper
from protocol.signing import verify
from tests.support import IngestProcess, device_link, provision, query, unique_prefix, wait_for


def test_forged_and_replayed_records_are_refused_and_the_breach_stays_open(ingest: IngestProcess,
                                                                            database_url: str) -> None:
    probe = tamper(0)
    duration_s = (probe.end_ms - probe.start_ms) / 1000
    clock = SimClock.ending_now(duration_s, speedup=600)
    scenario = tamper(clock.start_ms, prefix=unique_prefix("tamper"))
    with psycopg.connect(database_url) as conn:
        ids = register(conn, scenario)
        provision_simulated(conn, scenario.devices)
    assert all(d.firmware.key is not None for d in scenario.devices)  # they sign like real firmware
    provision([d.device_id for d in scenario.devices])
    Simulation(scenario.devices, clock, scenario.end_ms, device_link).run(drain_s=15)
    (shipment_id,) = ids.values()

    def alerts() -> list[tuple[str, str, int, bool]]:
        return sorted(query(database_url, "SELECT type, device_id, (extract(epoch FROM started_at) * 1000)::int8,"
                                          " ended_at IS NULL FROM alerts WHERE shipment_id = %s", (shipment_id,)))

    wait_for(lambda: len(alerts()) >= len(scenario.expected), 15, "the expected alerts")
    found = alerts()
    assert sorted((a[0], a[1]) for a in found) == sorted((e.type, e.device_id) for e in scenario.expected)
    for e in scenario.expected:
        ((_, _, started, still_open),) = [a for a in found if (a[0], a[1]) == (e.type, e.device_id)]
        assert e.start_from_ms <= started <= e.start_to_ms, (e, started)
        assert still_open or not e.open_at_end, e
    refused = query(database_url, "SELECT device_id, seq, reason FROM dead_letters WHERE device_id = ANY(%s)",
                    ([d.device_id for d in scenario.devices],))
    for d in scenario.dead_letters:
        assert any((device, seq) == (d.device_id, d.seq) and d.reason in reason for device, seq, reason in refused), d
    assert len(refused) == len(scenario.dead_letters), refused
    # The forged armed event is nowhere among the seal's events; its genuine ones all are.
    seal = next(d for d in scenario.devices if d.firmware.kind == "seal")
    events = query(database_url, "SELECT seq, event FROM seal_events WHERE device_id = %s ORDER BY seq",
                   (seal.device_id,))
    assert events == [(0, "armed"), (1, "opened")]


def test_the_intruder_s_messages_offline() -> None:
    scenario = tamper(1_767_225_600_000, prefix="off")
    key = bytes(range(32))
    for device in scenario.devices:
        device.firmware.key = key
    played = deliveries(scenario)
    seal = [r for d in played if d.device_id == "off-seal" for r in d.records]
    trk = [r for d in played if d.device_id == "off-trk" for r in d.records]
    genuine = [r for r in seal if r.seq < FORGED_SEQ]
    assert all(verify(key, "off-seal", "seal", r) for r in genuine[:2])  # the firmware signs
    (forged,) = [r for r in seal if r.seq == FORGED_SEQ]
    assert forged.event == "armed" and not verify(key, "off-seal", "seal", forged)  # type: ignore[union-attr]
    replayed_armed = genuine[2]
    assert replayed_armed.seq == 0 and replayed_armed.ts != genuine[0].ts and replayed_armed.sig == genuine[0].sig
    first = {r.seq: r for r in reversed(trk)}
    replays = [r for r in trk if r.seq < REPLAYED_FIXES and r.ts != first[r.seq].ts]
    assert sorted(r.seq for r in replays) == list(range(REPLAYED_FIXES)) and all(r.sig is None for r in replays)
