"""The API in-process (starlette TestClient) on the session's test database and test broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from ctt.config import DB_API
from tests.support import BROKER, as_role
from tracking_api.main import app

if TYPE_CHECKING:
    from tests.tracking_api.test_push import PushService


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_DATABASE_URL", as_role(database_url, DB_API))  # as in production
        mp.setenv("CTT_BROKER_PORT", str(BROKER[1]))
        mp.setenv("CTT_WEBHOOKS_DISPATCH", "0")  # webhook tests run their own dispatchers
        with TestClient(app) as c:
            yield c


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    """A local Web Push service (tests/tracking_api/test_push.py), one per test module."""
    from tests.tracking_api.test_push import PushService

    service = PushService()
    service.thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()
