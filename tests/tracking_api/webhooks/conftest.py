"""Webhook tests: a world to register shipments in, the API role's URL, a receiver; every
subscription a test made is deleted after it (no other dispatcher keeps calling its receiver)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ctt.config import DB_API
from tests.support import as_role, execute
from tests.tracking_api.geo_support import World, make_world
from tests.tracking_api.webhooks.receiver import Receiver


@pytest.fixture(scope="module")
def world(client: TestClient) -> World:
    return make_world(client)


@pytest.fixture(scope="module")
def api_url(database_url: str) -> str:
    return as_role(database_url, DB_API)


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    # Alone with the test's own subscriptions: a dispatcher delivers every enabled one.
    execute(database_url, "DELETE FROM webhook_subscriptions")
    r = Receiver()
    yield r
    r.close()
    execute(database_url, "DELETE FROM webhook_subscriptions")
