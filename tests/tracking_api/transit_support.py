"""Helpers of the issue-13 shipment tests: a corridor with offices of transit
between its departure and destination offices (tests/tracking_api/geo_support.py's
World, plus offices along the way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests.tracking_api.geo_support import (
    API,
    CONTAINERS,
    World,
    auth,
    created,
    make_world,
    office_code,
    square,
    unique,
)


def make_office(client: TestClient, lon: float, lat: float, kind: str = "office", **properties: Any) -> str:
    """A zone with an office code (kind office or border_post) at (lon, lat); its code."""
    body = {"name": unique(f"{kind} "), "kind": kind, "office_code": office_code(),
            "geometry": square(lon, lat)} | properties
    code: str = created(client.post(f"{API}/zones", json=body, headers=auth("operator")))["properties"][
        "office_code"]
    return code


@dataclass(frozen=True)
class Corridor:
    """A World whose route passes two offices of transit, at a third and two thirds of the way."""

    world: World
    transit: tuple[str, str]

    def shipment(self, **overrides: Any) -> dict[str, Any]:
        """A full issue-13 body: itinerary, seal numbers on the containers, vehicle, operator, goods."""
        body = self.world.shipment(
            offices_of_transit=list(self.transit),
            seals=[{"number": unique("S-"), "container": CONTAINERS[0]},
                   {"number": unique("S-"), "container": CONTAINERS[1]}],
            vehicle=plate(), operator="Acme Freight Ltd",
            goods=[{"hs_code": "271019", "description": "diesel fuel", "gross_mass_kg": 28000.0, "value": 21500.5,
                    "currency": "USD"}, {"hs_code": "8703"}])
        return body | overrides

    @property
    def itinerary(self) -> list[str]:
        return [self.world.departure, *self.transit, self.world.destination]


def make_corridor(client: TestClient) -> Corridor:
    world = make_world(client)
    transit = (make_office(client, world.lon + 0.33, world.lat + 0.007),
               make_office(client, world.lon + 0.66, world.lat + 0.007))
    return Corridor(world, transit)


def plate() -> str:
    return "KC " + unique().upper()[:8]
