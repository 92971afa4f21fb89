"""A subscription disabled after persistent failure is an alert to the operators: the API
process that disabled it pushes a notice to every admin's and operator's browser (not to
officers), after the disabling committed; through a real push service on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ctt.config import DB_API
from tests.support import BROKER, as_role, execute, wait_for
from tests.tracking_api.geo_support import API, auth, make_world
from tests.tracking_api.test_push import Browser, PushService
from tests.tracking_api.webhooks.receiver import Receiver
from tests.tracking_api.webhooks.support import open_alert, shipment, subscribe


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[TestClient]:
    """The API in-process, dispatching webhooks, disabling a subscription after 0.5 s of failures."""
    from tracking_api.main import app

    with pytest.MonkeyPatch.context() as mp:
        for name, value in (("CTT_DATABASE_URL", as_role(database_url, DB_API)), ("CTT_BROKER_PORT", str(BROKER[1])),
                            ("CTT_PUSH_ALLOW_INSECURE_ENDPOINTS", "true"), ("CTT_WEBHOOKS_DISPATCH", "1"),
                            ("CTT_WEBHOOK_ALLOW_HTTP", "1"), ("CTT_WEBHOOK_RETRY_BASE_S", "0.05"),
                            ("CTT_WEBHOOK_RETRY_CAP_S", "0.2"), ("CTT_WEBHOOK_POLL_S", "0.1"),
                            ("CTT_WEBHOOK_DISABLE_AFTER_S", "0.5")):
            mp.setenv(name, value)
        with TestClient(app) as c:
            yield c


def _browser(api: TestClient, service: PushService, role: str, region: str | None = None) -> Browser:
    browser = Browser(service.endpoint())
    answer = api.post(f"{API}/push/subscriptions", json=browser.subscription(), headers=auth(role, region))
    assert answer.status_code == 201, answer.text
    return browser


def test_the_operators_are_told_when_a_subscription_is_disabled(api: TestClient, push_service: PushService,
                                                                database_url: str) -> None:
    # This process dispatches: other tests' subscriptions (to addresses nobody answers) are not its business.
    execute(database_url, "DELETE FROM webhook_subscriptions")
    operator, officer = _browser(api, push_service, "operator"), _browser(api, push_service, "officer", "NOWHERE")
    receiver = Receiver()
    receiver.status = 500
    try:
        hook = subscribe(api, receiver.url, ["alert.opened"])
        open_alert(database_url, shipment(api, make_world(api)))
        wait_for(lambda: _notices(push_service, operator), 15, "the operator's notice")
    finally:
        receiver.close()
        execute(database_url, "DELETE FROM webhook_subscriptions")
    (notice,) = _notices(push_service, operator)
    assert notice["title"] == f"Webhook subscription {hook['id']} disabled"
    assert notice["body"].startswith("every delivery failed since") and notice["tag"] == f"webhook-{hook['id']}"
    assert _notices(push_service, officer) == []


def _notices(service: PushService, browser: Browser) -> list[dict[str, Any]]:
    """The pushes ``browser`` received that are webhook notices (the alert's own opening is pushed too)."""
    return [m for m in (browser.read(p) for p in service.to(browser.endpoint)) if m["tag"].startswith("webhook-")]
