"""A simulator scenario's issue-13 fields registered through the shipment service
(``ctt.transit``): border posts with country and dwell limit, itinerary, seal
numbers, a consolidated truck, goods, risk override and release, audited as the
API's own calls are."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.exceptions import RequestValidationError

from ctt import transit
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import query
from tests.tracking_api.geo_support import office_code, reference, somewhere, unique
from tracking_api.services.errors import ConflictError

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Planned:
    reference: str
    office_code: str
    at_ms: int


def _ring(lon: float, lat: float, half: float = 0.01) -> tuple[tuple[float, float], ...]:
    return ((lon - half, lat - half), (lon + half, lat - half), (lon + half, lat + half), (lon - half, lat + half),
            (lon - half, lat - half))


def _scenario(shipments: list[ShipmentSpec], zones: list[ZoneSpec], route: str, lon: float, lat: float) -> Scenario:
    line = ((lon, lat), (lon + 0.5, lat), (lon + 1, lat))
    start = shipments[0].departed_at_ms
    return Scenario("transit", [], zones, [RouteSpec(route, line)], shipments, [], start, start, 15.0)


def _spec(route: str, codes: list[str], tracker: str, departed_ms: int, **fields: Any) -> ShipmentSpec:
    return ShipmentSpec(reference(), route, tracker, (), codes[0], codes[-1], departed_ms, departed_ms + 24 * HOUR_MS,
                        **({"offices_of_transit": tuple(codes[1:-1])} | fields))


def _geography(tag: str) -> tuple[list[ZoneSpec], list[str], float, float]:
    lon, lat = somewhere()
    codes = [office_code() for _ in range(3)]
    zones = [ZoneSpec(f"dep-{tag}", "office", _ring(lon, lat), codes[0], "KEN"),
             ZoneSpec(f"post-{tag}", "border_post", _ring(lon + 0.5, lat), codes[1], "UGA", 7200.0),
             ZoneSpec(f"dest-{tag}", "office", _ring(lon + 1, lat), codes[2], "UGA"),
             ZoneSpec(f"bridge-{tag}", "weighbridge", _ring(lon + 0.25, lat), None, "KEN")]
    return zones, codes, lon, lat


def test_a_scenario_registers_itinerary_seals_truck_goods_risk_and_release(database_url: str) -> None:
    tag = unique()
    zones, codes, lon, lat = _geography(tag)
    departed_ms = int(time.time() * 1000) - 2 * HOUR_MS
    truck = {"vehicle": "KBX " + tag[:6].upper(), "operator": "Acme"}
    tracker = f"trk-{tag}"
    first = _spec(f"r-{tag}", codes, tracker, departed_ms, seal_numbers=(f"N1-{tag}", f"N2-{tag}"),
                  goods=(("271019", "diesel"),), released_at_ms=departed_ms + HOUR_MS,
                  risk_override=("high", "tip-off"), **truck)
    second = _spec(f"r-{tag}", codes, tracker, departed_ms, seal_numbers=(f"N3-{tag}",), **truck)
    scenario = _scenario([first, second], zones, f"r-{tag}", lon, lat)
    # The simulator helper's Scenario.inspections (PlannedInspection: reference, office_code, at_ms).
    setattr(scenario, "inspections", [Planned(second.reference, codes[1], departed_ms + HOUR_MS // 2)])  # noqa: B010
    with psycopg.connect(database_url) as conn:
        ids = transit.register(conn, scenario)

    assert query(database_url, "SELECT kind, country, dwell_limit_s FROM zones WHERE name = ANY(%s) ORDER BY name",
                 ([z.name for z in zones],)) == [
        ("weighbridge", "KEN", None), ("office", "KEN", None), ("office", "UGA", None), ("border_post", "UGA", 7200.0)]
    rows = query(database_url, "SELECT id, status, vehicle, operator, risk_level, released_at IS NOT NULL, "
                 "ARRAY(SELECT office_code FROM shipment_offices o WHERE o.shipment_id = s.id ORDER BY position), "
                 "ARRAY(SELECT seal_number FROM shipment_seal_numbers n WHERE n.shipment_id = s.id ORDER BY 1), "
                 "ARRAY(SELECT hs_code FROM shipment_goods g WHERE g.shipment_id = s.id) "
                 "FROM shipments s WHERE id = ANY(%s) ORDER BY id", ([ids[first.reference], ids[second.reference]],))
    assert [r[1:] for r in rows] == [
        ("in_transit", truck["vehicle"], "Acme", "high", True, codes, [f"N1-{tag}", f"N2-{tag}"], ["271019"]),
        ("in_transit", truck["vehicle"], "Acme", "medium", False, codes, [f"N3-{tag}"], [])]
    audited = query(database_url, "SELECT actor, action FROM audit_log WHERE object_type = 'shipment' "
                    "AND object_id = %s ORDER BY id", (str(ids[first.reference]),))
    assert audited == [("ctt-sim", a) for a in ("shipment.registered", "shipment.departed",
                                                 "shipment.risk_overridden", "shipment.released")]

    inspections = query(database_url, "SELECT office_code, authorised_at, authorised_by FROM inspections "
                        "WHERE shipment_id = %s", (ids[second.reference],))
    assert [(o, int(at.timestamp() * 1000), by) for o, at, by in inspections] == [
        (codes[1], departed_ms + HOUR_MS // 2, "ctt-sim")]

    # A release during the run (the scenario's truck reached its destination).
    with psycopg.connect(database_url) as conn:
        transit.release(conn, ids[second.reference])
    assert query(database_url, "SELECT kind, office_code FROM shipment_events WHERE shipment_id = %s ORDER BY at",
                 (ids[second.reference],)) == [("inspection_authorised", codes[1]), ("released", codes[-1])]


def test_a_scenario_the_api_would_refuse_raises_what_it_answers(database_url: str) -> None:
    tag = unique()
    zones, codes, lon, lat = _geography(tag)
    departed_ms = int(time.time() * 1000) - HOUR_MS
    tracker = f"trk-{tag}"
    other_truck = [_spec(f"r-{tag}", codes, tracker, departed_ms, vehicle="KAA 1" + tag[:3].upper()),
                   _spec(f"r-{tag}", codes, tracker, departed_ms, vehicle="KAA 2" + tag[:3].upper())]
    with psycopg.connect(database_url) as conn, pytest.raises(ConflictError, match="one vehicle and route"):
        transit.register(conn, _scenario(other_truck, zones, f"r-{tag}", lon, lat))
    skipping = [_spec(f"r-{tag}", [codes[0], codes[0], codes[2]], f"trk2-{tag}", departed_ms)]
    with psycopg.connect(database_url) as conn, pytest.raises(RequestValidationError) as refused:
        transit.register(conn, _scenario(skipping, zones, f"r-{tag}", lon, lat))
    assert refused.value.errors()[0]["loc"] == ("body", "offices_of_transit", 0)
