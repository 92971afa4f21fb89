"""Helpers of the risk and KPI tests: shipments through the API, goods, operators and
alerts with outcomes written as the other parts would (SQL), and ``assess`` run on a
connection of the API's own role."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from ctt.config import DB_API
from tests.support import as_role, execute, query, scalar
from tests.tracking_api.geo_support import API, World, auth, created, square, unique
from tracking_api.services import risk

T = TypeVar("T")
# Alerts here are over (one open alert per shipment, device and type: alerts_one_open).
ENDED_AFTER = timedelta(minutes=30)
OPERATOR = auth("operator")


def ship(client: TestClient, world: World, departed: datetime | None = None) -> dict[str, Any]:
    """A v1 shipment on ``world``'s route, departed at ``departed`` when given."""
    body = created(client.post(f"{API}/shipments", json=world.shipment(), headers=OPERATOR))
    if departed is not None:
        response = client.post(f"{API}/shipments/{body['id']}/depart", json={"at": departed.isoformat()},
                               headers=OPERATOR)
        assert response.status_code == 200, response.text
    return body


def declare(database_url: str, shipment_id: int, *hs_codes: str, operator: str | None = None) -> None:
    """Goods lines (and the operator) as registration stores them."""
    for line, code in enumerate(hs_codes, 1):
        execute(database_url, "INSERT INTO shipment_goods (shipment_id, line, hs_code) VALUES (%s, %s, %s)",
                (shipment_id, line, code))
    if operator is not None:
        execute(database_url, "UPDATE shipments SET operator = %s WHERE id = %s", (operator, shipment_id))


def add_alert(database_url: str, shipment: dict[str, Any], started: datetime, outcome: str | None = None,
              type_: str = "route_deviation", **columns: Any) -> int:
    """An alert on ``shipment`` started at ``started``; ``columns``: status, incident, detail..."""
    values = {"type": type_, "shipment_id": shipment["id"], "device_id": shipment["tracker_id"],
              "started_at": started, "crossed_at": started, "ended_at": started + ENDED_AFTER,
              "severity": "high", "outcome": outcome,
              "status": "resolved" if outcome else "open"} | columns
    values = {k: Jsonb(v) if k == "detail" else v for k, v in values.items()}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return int(scalar(database_url, f"INSERT INTO alerts ({names}) VALUES ({marks}) RETURNING id",
                      tuple(values.values())))


def on_api_connection(database_url: str, work: Callable[[AsyncConnection[DictRow]], Awaitable[T]]) -> T:
    """``work`` on a connection of the API's role (as in production), committed."""

    async def run() -> T:
        async with await AsyncConnection.connect(as_role(database_url, DB_API), row_factory=dict_row) as conn:
            result = await work(conn)
            await conn.commit()
            return result

    # In a thread of its own: the calling thread may already run an event loop (another
    # test's, in the same session).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def assess(database_url: str, shipment_id: int, history_months: int | None = None) -> tuple[dict[str, Any], str]:
    """Runs ``risk.assess`` and returns the stored ``(risk, risk_level)``."""
    on_api_connection(database_url, lambda conn: risk.assess(conn, shipment_id, history_months))
    ((stored, level),) = query(database_url, "SELECT risk, risk_level FROM shipments WHERE id = %s",
                               (shipment_id,))
    return stored, level


def region_of(client: TestClient, world: World) -> str:
    """A region of its own around ``world`` (before its shipments: their regions are recorded
    at registration): an officer of it sees only the test's shipments."""
    code = unique("R")
    created(client.post(f"{API}/regions", json={"code": code, "name": "risk kpi", "geometry": square(
        world.lon + 0.5, world.lat, 2.0)}, headers=auth("admin")))
    return code
