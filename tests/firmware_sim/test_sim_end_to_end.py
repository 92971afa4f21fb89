"""Simulator -> broker -> ingest -> TimescaleDB: every record a device made is stored once."""

from __future__ import annotations

from firmware_sim.corridors import NORTHERN_CORRIDOR
from firmware_sim.fleet import FleetSpec, build_fleet
from firmware_sim.runner import SimClock, Simulation
from tests.support import IngestProcess, device_link, hold_seals, provision, query, unique_prefix


def test_fleet_records_all_land_including_backlog_after_coverage_gaps(ingest: IngestProcess,
                                                                      database_url: str) -> None:
    prefix = unique_prefix("sim")
    duration_s = 2 * 3600
    clock = SimClock.ending_now(duration_s, speedup=400)
    end_ms = clock.start_ms + duration_s * 1000
    spec = FleetSpec(trucks=6, interval_s=15, gaps_per_truck=2, gap_minutes=(5, 25), prefix=prefix, seed=11)
    fleet = build_fleet(NORTHERN_CORRIDOR, spec, clock.start_ms, duration_s)
    provision([d.device_id for d in fleet])
    # Their seals on a registered shipment: a seal no active shipment knows is dead-lettered.
    hold_seals(database_url, prefix, [d.device_id for d in fleet if d.firmware.kind == "seal"])
    sim = Simulation(fleet, clock, end_ms, device_link)
    stats = sim.run(drain_s=20)

    stored = dict(query(database_url,
                        "SELECT device_id, count(*) FROM (SELECT device_id, seq FROM fixes WHERE device_id LIKE %s"
                        " UNION SELECT device_id, seq FROM seal_events WHERE device_id LIKE %s) s GROUP BY 1",
                        (prefix + "%", prefix + "%")))
    acked = dict(query(database_url, "SELECT device_id, acked_seq FROM devices WHERE device_id LIKE %s",
                       (prefix + "%",)))
    drained = [d for d in fleet if d.firmware.buffered == 0 and d.firmware.next_seq > 0]
    assert len(drained) >= len(fleet) // 2, stats
    for device in drained:
        made = device.firmware.next_seq
        assert stored.get(device.device_id) == made, device.device_id
        assert acked[device.device_id] == made - 1
    assert sum(stored.values()) <= stats.records  # resends are deduplicated

    # Fixes timed inside a coverage gap could only arrive as backlog after it: all are there.
    gaps = [(d.device_id, g) for d in drained if d.firmware.kind == "pos" for g in d.firmware.gaps
            if clock.start_ms < g.start_ms and g.end_ms <= end_ms and d.truck.arrival_ms > g.end_ms]
    assert gaps
    for device_id, gap in gaps:
        (n,), = query(database_url, "SELECT count(*) FROM fixes WHERE device_id = %s AND ts >= to_timestamp(%s)"
                                    " AND ts < to_timestamp(%s)", (device_id, gap.start_ms / 1000, gap.end_ms / 1000))
        assert n >= (gap.end_ms - gap.start_ms) // (spec.interval_s * 1000) - 1, (device_id, gap)
