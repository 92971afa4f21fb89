"""The visibility rule is written once: ``access.visible`` (SQL, the REST routes) and
``access.may_see`` (Python, the live stream's Hub) agree for every role and every
kind of shipment: in the caller's region, in another region, in none."""

from __future__ import annotations

from typing import get_args

import psycopg
import pytest
from psycopg import sql

from tests.dashboards.world import add_region, shipments_on
from tests.support import execute, unique_prefix
from tracking_api import access
from tracking_api.auth import Principal, Role


@pytest.fixture(scope="module")
def placed(database_url: str) -> tuple[str, dict[str, tuple[int, frozenset[str]]]]:
    """A region code, and shipments by where they are: (id, their region codes)."""
    mine, other = (unique_prefix("acc")[-8:].upper() for _ in range(2))
    for code in (mine, other):
        add_region(database_url, code, 30.0, -1.0, 31.0, 0.0)
    ships = shipments_on(database_url, "access", -4.4, 30.0, 31.0, 4)
    regions = {"in region": {mine}, "other region": {other}, "no region": set(), "both": {mine, other}}
    placed = {}
    for (where, codes), ship in zip(regions.items(), ships, strict=True):
        execute(database_url, "DELETE FROM shipment_regions WHERE shipment_id = %s", (ship.id,))
        for code in codes:
            execute(database_url, "INSERT INTO shipment_regions VALUES (%s, %s)", (ship.id, code))
        placed[where] = (ship.id, frozenset(codes))
    return mine, placed


@pytest.mark.parametrize("role", get_args(Role))
@pytest.mark.parametrize("with_region", [True, False])
def test_visible_and_may_see_agree(database_url: str, placed: tuple[str, dict[str, tuple[int, frozenset[str]]]],
                                   role: Role, with_region: bool) -> None:
    region, shipments = placed
    caller = Principal("access-tester", role, region if with_region else None)
    query = sql.SQL("SELECT {} FROM shipments s WHERE s.id = %s").format(access.visible(caller))
    with psycopg.connect(database_url) as conn:
        for where, (shipment_id, codes) in shipments.items():
            row = conn.execute(query, (shipment_id,)).fetchone()
            assert row is not None
            assert row[0] is access.may_see(caller, codes), f"{role} (region {caller.region}), shipment {where}"
            expected = role not in access.REGION_SCOPED or (with_region and where in ("in region", "both"))
            assert row[0] is expected, f"{role} (region {caller.region}), shipment {where}"
