"""Webhook test helpers: a dispatcher on a thread of its own (as in an API process, with the
test's settings), subscriptions and events made through the API and the database."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support import query
from tests.tracking_api.geo_support import API, World, auth, created
from tracking_api.config import ApiSettings
from tracking_api.webhooks.dispatcher import Dispatcher


class DispatcherThread:
    """A ``Dispatcher`` with its own event loop and pool, like one more API process."""

    def __init__(self, api_url: str, **settings: Any) -> None:
        self.settings = ApiSettings(database_url=api_url, webhook_allow_http=True, webhook_poll_s=0.1,
                                    webhook_retry_base_s=0.05, webhook_retry_cap_s=0.2, **settings)
        self._loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    def __enter__(self) -> DispatcherThread:
        self._thread.start()
        assert self._ready.wait(10), "dispatcher did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    async def _main(self) -> None:
        pool = AsyncConnectionPool(self.settings.database_url, min_size=1, max_size=4, open=False,
                                   kwargs={"row_factory": dict_row})
        await pool.open()
        dispatcher = Dispatcher(self.settings, pool)
        dispatcher.start()
        self._ready.set()
        await self._stopped.wait()
        await dispatcher.stop()
        await pool.close()


def subscribe(client: TestClient, url: str, types: list[str], role: str = "admin", **extra: Any) -> dict[str, Any]:
    """A subscription to ``url`` (private addresses allowed: the receiver is on loopback)."""
    body = {"url": url, "event_types": types, "allow_private": True} | extra
    return created(client.post(f"{API}/webhooks", json=body, headers=auth(role)))


def shipment(client: TestClient, world: World) -> dict[str, Any]:
    return created(client.post(f"{API}/shipments", json=world.shipment(), headers=auth("operator")))


def open_alert(database_url: str, shipment: dict[str, Any], kind: str = "unscheduled_stop") -> int:
    """An alert opened on ``shipment`` in a transaction of its own (ended at once: many of a
    type may then exist); its id."""
    rows = query(database_url, "INSERT INTO alerts (type, shipment_id, device_id, started_at, crossed_at, severity, "
                               "ended_at) VALUES (%s, %s, %s, now(), now(), 'high', now()) RETURNING id",
                 (kind, shipment["id"], shipment["tracker_id"]))
    return int(rows[0][0])


def states(database_url: str, subscription: int) -> dict[str, int]:
    rows = query(database_url, "SELECT state, count(*) FROM webhook_deliveries WHERE subscription_id = %s "
                               "GROUP BY state", (subscription,))
    return {str(s): int(n) for s, n in rows}
