"""``/exports/*``: CSV and GeoJSON parsed back and compared with the API's JSON for
the same rows, the formula-injection guard attacked, officers' regions, the
range and parameter checks, and the streaming itself (a server-side cursor read in
chunks, bounded memory) on a track of BIG_FIXES fixes made with COPY."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from shapely.geometry import shape

from ctt.config import DB_API
from tests.support import as_role, run_async
from tests.tracking_api.export_support import ATTACKS, BIG_FIXES, World, auth, build
from tracking_api.auth import Principal
from tracking_api.services import exports

EXPORTS = "/api/v1/exports"
OPERATOR = auth("operator", subject="op-export")


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    return build(database_url)


def span(w: World) -> dict[str, Any]:
    return {"from": w.start.isoformat(), "to": w.end.isoformat()}


def get(client: TestClient, kind: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = client.get(f"{EXPORTS}/{kind}", params=params, headers=headers or OPERATOR)
    assert response.status_code == 200, response.text
    return response


def rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def same(cell: str, value: Any) -> bool:
    """Whether a CSV cell holds the JSON ``value`` (the documented cell encoding)."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, int | float):
        return float(cell) == value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return cell == ";".join(value)
    if isinstance(value, dict | list):
        return bool(json.loads(cell) == value)
    if isinstance(value, str) and value[:1] in "=+-@":
        return cell == "'" + value
    try:
        return bool(datetime.fromisoformat(cell) == datetime.fromisoformat(value))
    except ValueError:
        return bool(cell == value)


def test_alerts_csv_is_the_api_json(client: TestClient, world: World) -> None:
    response = get(client, "alerts", shipment=world.s1, **span(world))
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="ctt-alerts-')
    assert "\r\n" in response.text  # RFC 4180 line ends
    exported = {int(r["id"]): r for r in rows(response)}
    api = client.get("/api/v1/alerts", params={"shipment": world.s1}, headers=OPERATOR).json()["items"]
    assert set(exported) == {a["id"] for a in api} == set(world.alerts1)
    for item in api:
        row = exported[item["id"]]
        assert set(row) == set(item)
        assert [k for k, v in item.items() if not same(row[k], v)] == [], (row, item)
        assert row["started_at"].endswith("Z")


def test_a_cell_a_spreadsheet_would_run_is_quoted(client: TestClient, world: World) -> None:
    notes = [r["note"] for r in rows(get(client, "alerts", shipment=world.s1, **span(world)))]
    assert sorted(notes) == sorted("'" + a for a in ATTACKS)
    shipment = next(r for r in rows(get(client, "shipments", **span(world))) if r["id"] == str(world.s1))
    assert shipment["operator"] == "'" + ATTACKS[0]
    # Numbers are values, not text: a negative latitude keeps its sign.
    track = rows(get(client, "tracks", shipment=world.s1, **span(world)))
    assert float(track[0]["lat"]) < 0 and not track[0]["lat"].startswith("'")


def test_alerts_geojson_holds_the_alert_objects(client: TestClient, world: World) -> None:
    response = get(client, "alerts", shipment=world.s1, format="geojson", **span(world))
    assert response.headers["content-type"] == "application/geo+json"
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    api = {a["id"]: a for a in client.get("/api/v1/alerts", params={"shipment": world.s1},
                                          headers=OPERATOR).json()["items"]}
    for f in collection["features"]:
        assert f["type"] == "Feature" and f["id"] in api
        point = shape(f["geometry"])
        assert point.geom_type == "Point" and point.is_valid
        assert f["properties"] == api[f["id"]]
        assert list(point.coords[0]) == [api[f["id"]]["lon"], api[f["id"]]["lat"]]
    assert len(collection["features"]) == len(world.alerts1)


def test_tracks_csv_and_geojson_hold_the_same_fixes(client: TestClient, world: World) -> None:
    exported = rows(get(client, "tracks", shipment=world.s1, **span(world)))
    assert len(exported) == world.fixes1
    assert {r["device"] for r in exported} == {world.tracker1}
    assert [r["ts"] for r in exported] == sorted(r["ts"] for r in exported)
    features = get(client, "tracks", shipment=world.s1, format="geojson", **span(world)).json()["features"]
    assert len(features) == world.fixes1
    assert all(shape(f["geometry"]).geom_type == "Point" for f in features)
    assert [[float(r["lon"]), float(r["lat"])] for r in exported] == [f["geometry"]["coordinates"] for f in features]
    # The same fixes GET /devices/{id}/track serves.
    track = client.get(f"/api/v1/devices/{world.tracker1}/track", headers=OPERATOR,
                       params={"from": world.start.isoformat(), "to": world.end.isoformat()}).json()
    assert track["geometry"]["coordinates"] == [f["geometry"]["coordinates"] for f in features]
    # A narrower range: only its fixes.
    middle: dict[str, Any] = {"from": (world.start + timedelta(days=1, hours=10)).isoformat(),
              "to": (world.start + timedelta(days=1, hours=12)).isoformat()}
    assert 0 < len(rows(get(client, "tracks", shipment=world.s1, **middle))) < world.fixes1 // 5


def test_shipments_csv_is_the_api_json(client: TestClient, world: World) -> None:
    exported = {int(r["id"]): r for r in rows(get(client, "shipments", **span(world)))}
    for sid in (world.s1, world.s2, world.big):
        item = client.get(f"/api/v1/shipments/{sid}", headers=OPERATOR).json()
        row = exported[sid]
        assert [k for k in row if not same(row[k], item[k])] == [], (row, item)
    features = get(client, "shipments", format="geojson", office=world.offices["T"], **span(world)).json()["features"]
    assert sorted(f["id"] for f in features) == sorted([world.s1, world.s2, world.big])
    assert all(f["geometry"] is None and f["properties"]["id"] == f["id"] for f in features)


def test_an_officer_exports_only_their_regions_rows(client: TestClient, world: World) -> None:
    officer_b = auth("officer", world.region_b, "officer-b")
    assert rows(get(client, "alerts", officer_b, shipment=world.s1, **span(world))) == []
    assert rows(get(client, "tracks", officer_b, shipment=world.s1, **span(world))) == []
    assert [int(r["shipment"]) for r in rows(get(client, "alerts", officer_b, **span(world)))
            if r["reference"].startswith("26" + world.prefix.upper())] == [world.s2]
    shipment_ids = {int(r["id"]) for r in rows(get(client, "shipments", officer_b, **span(world)))}
    assert world.s2 in shipment_ids and not shipment_ids & {world.s1, world.big}
    assert get(client, "shipments", officer_b, format="geojson", office=world.offices["D"],
               **span(world)).json()["features"][0]["id"] == world.s2
    officer_a = auth("officer", world.region_a, "officer-a")
    assert {int(r["shipment"]) for r in rows(get(client, "alerts", officer_a, region=world.region_a,
                                                 **span(world)))} == {world.s1}


@pytest.mark.parametrize(("params", "loc", "words"), [
    ({"to": "2026-11-02T00:00:00Z"}, ["query", "from"], "Field required"),
    ({"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z"}, ["query", "from"], "timezone"),
    ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, ["query", "to"], "must be after from"),
    ({"from": "2026-10-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, ["query", "to"], "longer than 31 days"),
    ({"from": "0001-01-01T00:00:00+00:01", "to": "0001-01-01T00:01:00Z"}, ["query", "from"], "out of range"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "format": "xlsx"}, ["query", "format"],
     "format 'xlsx' is not one of csv, geojson"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "type": "nope"}, ["query", "type"],
     "type 'nope'"),
])
def test_bad_parameters_are_a_422_naming_the_field(client: TestClient, params: dict[str, str], loc: list[str],
                                                    words: str) -> None:
    response = client.get(f"{EXPORTS}/alerts", params=params, headers=OPERATOR)
    assert response.status_code == 422, response.text
    issue = next(i for i in response.json()["detail"] if i["loc"] == loc)
    assert words in issue["msg"]


def test_the_range_bound_is_a_setting(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = client.app.state.services.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "export_max_days", 1)
    response = client.get(f"{EXPORTS}/tracks", headers=OPERATOR,
                          params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:01Z"})
    assert response.status_code == 422 and "longer than 1 days" in response.text


@pytest.fixture
def api_conn(database_url: str) -> Iterator[str]:
    yield as_role(database_url, DB_API)


def test_a_fleet_month_is_read_in_chunks_from_a_server_side_cursor(client: TestClient, world: World,
                                                                   database_url: str, api_conn: str) -> None:
    """The streaming itself: a server-side cursor (the server shows its FETCH while the export
    runs), chunks of the asked size, and Python memory bounded by a chunk, not by the export."""
    export = exports.tracks(Principal("op-export", "operator"), exports.Window(world.start, world.end),
                            shipment=world.big)
    sizes: list[int] = []
    fetching: list[str] = []

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(api_conn, row_factory=dict_row) as conn:
            tracemalloc.start()
            async for chunk in exports.chunks(conn, export, size=2_000):
                if not fetching:
                    with psycopg.connect(database_url, autocommit=True) as admin:
                        row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                                            (conn.info.backend_pid,)).fetchone()
                    fetching.append(row[0] if row else "")
                sizes.append(len(chunk))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

    peak = run_async(run())
    assert fetching[0].startswith("FETCH FORWARD 2000 FROM"), fetching
    assert sum(sizes) == BIG_FIXES and max(sizes) == 2_000
    assert peak < 6_000_000, f"peak {peak} bytes"
    # And over HTTP, the whole of it.
    response = get(client, "tracks", shipment=world.big, **span(world))
    assert response.text.count("\r\n") == BIG_FIXES + 1
