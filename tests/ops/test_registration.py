"""One way to register a shipment: ``ctt shipments`` and the scenario registration
(demo, tests, benchmarks) go through the service behind ``POST /shipments``:
the same schema refuses the same bodies, the audit log gets the same rows."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from ctt.config import REPO_ROOT
from ctt.transit import register
from firmware_sim.scenarios import RouteSpec, Scenario, ShipmentSpec, ZoneSpec
from tests.support import BROKER, query, scalar
from tests.tracking_api.geo_support import API, World, auth, created, make_world, reference
from tracking_api.config import ApiSettings
from tracking_api.main import create_app

AUDITED = "SELECT actor, role, action, object_type, detail FROM audit_log WHERE object_type = 'shipment'" \
          " AND object_id = %s ORDER BY id"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(database_url=database_url, broker_port=BROKER[1]))) as c:
        yield c


@pytest.fixture(scope="module")
def world(client: TestClient) -> World:
    return make_world(client)


def ctt(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctt.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, "CTT_DATABASE_URL": database_url}, timeout=60)


def _shape(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """An audit row without who made it and the values that differ per shipment."""
    return [(role, action, object_type, sorted(detail)) for _actor, role, action, object_type, detail in rows]


def test_a_cli_registered_shipment_is_audited_like_an_api_registered_one(
        client: TestClient, world: World, database_url: str) -> None:
    by_api = created(client.post(f"{API}/shipments", json=world.shipment(), headers=auth("admin")))
    body = world.shipment()
    result = ctt(database_url, "shipments", "register", "-", stdin=json.dumps(body))
    assert result.returncode == 0, result.stderr
    by_cli = json.loads(result.stdout)
    assert by_cli.keys() == by_api.keys() and by_cli["status"] == "registered"
    assert by_cli["created_by"] == f"cli:{getpass.getuser()}"

    for action in ("depart", "arrive", "close"):  # closing too goes through the service
        step = client.post(f"{API}/shipments/{by_api['id']}/{action}", headers=auth("admin"))
        assert step.status_code == 200, step.text
        result = ctt(database_url, "shipments", action, str(by_cli["id"]))
        assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "closed"

    api_rows, cli_rows = query(database_url, AUDITED, (str(by_api["id"]),)), query(database_url, AUDITED,
                                                                                   (str(by_cli["id"]),))
    assert [r[2] for r in cli_rows] == ["shipment.registered", "shipment.departed", "shipment.arrived",
                                        "shipment.closed"]
    assert _shape(cli_rows) == _shape(api_rows)
    assert {r[0] for r in cli_rows} == {f"cli:{getpass.getuser()}"}
    registered = cli_rows[0][4]
    assert registered["reference"] == body["reference"] and registered["containers"] == body["containers"]
    assert scalar(database_url, "SELECT count(*) FROM shipment_seals WHERE shipment_id = %s AND active",
                  (by_cli["id"],)) == 0  # closing released the seals


@pytest.mark.parametrize(("overrides", "named"), [
    ({"containers": ["CSQU3054384"]}, "containers.0: Value error, container CSQU3054384: check digit 4 is wrong"),
    ({"reference": "26ke1"}, "reference: String should match pattern"),
    ({"deadline": "2030-01-01T12:00:00"}, "deadline: Input should have timezone info"),
    ({"route_id": 2_000_000_000}, "route_id: route 2000000000 does not exist"),
])
def test_the_cli_refuses_an_invalid_shipment_naming_the_field(
        world: World, database_url: str, overrides: dict[str, Any], named: str) -> None:
    body = world.shipment(**overrides)
    result = ctt(database_url, "shipments", "register", "-", stdin=json.dumps(body))
    assert result.returncode == 1
    assert named in " ".join(result.stderr.split()), result.stderr
    assert scalar(database_url, "SELECT count(*) FROM shipments WHERE tracker_id = %s", (body["tracker_id"],)) == 0


def test_the_cli_refuses_a_step_the_lifecycle_does_not_allow(client: TestClient, world: World,
                                                            database_url: str) -> None:
    fresh = created(client.post(f"{API}/shipments", json=world.shipment(), headers=auth("admin")))
    result = ctt(database_url, "shipments", "close", str(fresh["id"]))
    assert result.returncode == 1
    assert f"cannot close shipment {fresh['id']}: its status is 'registered'" in result.stderr


def _scenario(world: World, ref: str, departed_ms: int) -> Scenario:
    tag = ref[-6:].lower()
    ring = ((0.0, 0.0), (0.01, 0.0), (0.01, 0.01), (0.0, 0.0))
    shipment = ShipmentSpec(ref, f"reg-{tag}", f"trk-reg-{tag}", (f"seal-reg-{tag}",), world.departure,
                            world.destination, departed_ms, departed_ms + 48 * HOUR_MS)
    route = RouteSpec(f"reg-{tag}", ((world.lon, world.lat), (world.lon + 1, world.lat)))
    return Scenario("registration", [], [ZoneSpec(f"reg-stop-{tag}", "stop", ring)], [route], [shipment], [],
                    departed_ms, departed_ms, 15.0)


def test_a_scenario_registers_and_departs_its_shipments_through_the_service(world: World, database_url: str) -> None:
    departed_ms = int(time.time() * 1000) - HOUR_MS
    ref = reference()
    with psycopg.connect(database_url) as conn:
        ids = register(conn, _scenario(world, ref, departed_ms))
    rows = query(database_url, AUDITED, (str(ids[ref]),))
    assert [(r[0], r[1], r[2]) for r in rows] == [("ctt-sim", "admin", "shipment.registered"),
                                                  ("ctt-sim", "admin", "shipment.departed")]
    assert rows[0][4]["regions"] == [] and rows[1][4]["to"] == "in_transit"
    departed = scalar(database_url, "SELECT extract(epoch FROM departed_at) * 1000 FROM shipments WHERE id = %s",
                      (ids[ref],))
    assert abs(float(departed) - departed_ms) < 1


def test_a_scenario_with_an_invalid_shipment_is_refused_naming_the_field(world: World, database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(ValidationError, match="reference"):
        register(conn, _scenario(world, "26KE-not-an-mrn", int(time.time() * 1000)))


def test_the_command_line_writes_no_shipment_or_audit_row_itself() -> None:
    # Shipments and the audit log change only through tracking_api's services and audit module.
    for path in (*Path(REPO_ROOT / "ctt").glob("*.py"), *Path(REPO_ROOT / "firmware_sim").glob("*.py")):
        text = " ".join(path.read_text().split()).lower()
        for statement in ("insert into audit_log", "insert into shipments", "update shipments",
                          "insert into shipment_seals"):
            assert statement not in text, f"{path.name}: {statement}"
