"""Helpers of the geography and shipment API tests: tokens, and unique
places, codes and references (the test database is shared by the whole
session, so every test makes its own)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tracking_api.auth import mint
from tracking_api.config import ApiSettings

API = "/api/v1"
# Published ISO 6346 numbers with correct check digits (Wikipedia, python-stdnum, calc-ilu-check-digit).
CONTAINERS = ["CSQU3054383", "TASU1170000", "ZEPU0037255", "ABCU1234560"]


def auth(role: str, region: str | None = None, subject: str | None = None) -> dict[str, str]:
    token = mint(ApiSettings(), subject or f"test-{role}", role, region)
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def office_code() -> str:
    return unique("T").upper()


def reference() -> str:
    return "26KE" + uuid.uuid4().hex[:13].upper()


def device(prefix: str) -> str:
    return unique(f"{prefix}-")


def somewhere() -> tuple[float, float]:
    """A random place, so that tests' geometries (and regions) do not overlap."""
    return random.uniform(-170, 170), random.uniform(-60, 60)


def square(lon: float, lat: float, half: float = 0.01) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
            [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def line(*positions: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in positions]}


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_zone(client: TestClient, lon: float, lat: float, kind: str = "office") -> dict[str, Any]:
    body: dict[str, Any] = {"name": unique(f"{kind} "), "kind": kind, "geometry": square(lon, lat)}
    if kind == "office":
        body["office_code"] = office_code()
    return created(client.post(f"{API}/zones", json=body, headers=auth("operator")))


@dataclass(frozen=True)
class World:
    """Two offices 1 degree apart (east-west) and a route between them."""

    lon: float
    lat: float
    departure: str
    destination: str
    route_id: int

    def shipment(self, **overrides: Any) -> dict[str, Any]:
        body = {"reference": reference(), "route_id": self.route_id, "tracker_id": device("trk"),
                "seal_ids": [device("seal")], "containers": CONTAINERS[:2], "office_of_departure": self.departure,
                "office_of_destination": self.destination, "deadline": "2030-01-01T12:00:00+03:00"}
        return body | overrides


def make_world(client: TestClient) -> World:
    lon, lat = somewhere()
    departure = make_zone(client, lon, lat)["properties"]["office_code"]
    destination = make_zone(client, lon + 1, lat)["properties"]["office_code"]
    route = created(client.post(f"{API}/routes", json={"name": unique("route "), "geometry": line(
        (lon, lat), (lon + 0.5, lat + 0.01), (lon + 1, lat))}, headers=auth("operator")))
    return World(lon, lat, departure, destination, route["id"])
