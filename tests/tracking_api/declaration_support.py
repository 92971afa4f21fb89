"""Declarations for the tests: a valid document on a world's route, and a world made in SQL
(for tests without the API client)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from tests.support import query
from tests.tracking_api.geo_support import (
    CONTAINERS,
    World,
    device,
    line,
    office_code,
    reference,
    somewhere,
    square,
    unique,
)


def document(world: World, **overrides: Any) -> dict[str, Any]:
    """A valid declaration on ``world``'s route, with a fresh MRN, tracker and e-seal."""
    number = device("KRA").upper()
    doc: dict[str, Any] = {
        "functionalReferenceId": reference(),
        "declarant": {"name": "Acme Freight Ltd", "id": "P051234567X"},
        "carrier": {"name": "Rift Valley Haulage"},
        "borderTransportMeans": {"identificationId": "KCB 123A"},
        "transportEquipment": [{"id": CONTAINERS[0], "seals": [{"id": number}]}, {"id": CONTAINERS[1]}],
        "goodsItems": [{"sequenceNumeric": 1, "commodity": {"description": "tea", "classification": {"id": "0902"}},
                        "grossMassMeasure": 12000.0, "valueAmount": {"value": 30000.0, "currencyId": "USD"}}],
        "officeOfDeparture": world.departure, "officeOfDestination": world.destination,
        "timeLimit": "2030-01-01T12:00:00+03:00", "guarantee": {"referenceId": "26KE0000000012345"},
        "monitoring": {"trackerId": device("trk"), "sealIds": [device("seal")], "routeId": world.route_id}}
    return doc | overrides


def sql_world(database_url: str) -> World:
    """Two office zones 1 degree apart and a route between them, inserted directly."""
    lon, lat = somewhere()
    codes = [office_code(), office_code()]
    for code, x in zip(codes, (lon, lon + 1), strict=True):
        query(database_url, "INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'office', %s, %s) "
                            "RETURNING id", (unique("office "), code, Jsonb(square(x, lat))))
    route = query(database_url, "INSERT INTO routes (name, geometry) VALUES (%s, %s) RETURNING id",
                  (unique("route "), Jsonb(line((lon, lat), (lon + 1, lat)))))
    return World(lon, lat, codes[0], codes[1], int(route[0][0]))
