"""Schemathesis against the API's own OpenAPI document, on the real server and
database: generated requests (valid and invalid) never get a 5xx, and every
response conforms to the schema (status code, content type, body)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ApiServer, execute
from tracking_api.auth import mint
from tracking_api.config import ApiSettings
from tracking_api.main import app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# The document the app serves, built in-process; the requests go to the real server.
# The live stream never ends; it has tests of its own.
# POST /declarations/import takes JSON lines: generated as text (a string per the schema).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_dict(app.openapi()).exclude(path="/api/v1/stream")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_responses_match_the_schema(case: schemathesis.Case[Any],
                                                                      api_server: ApiServer,
                                                                      database_url: str) -> None:
    token = mint(ApiSettings(), "schemathesis", "admin")
    try:
        case.call_and_validate(base_url=api_server.url.removesuffix("/api/v1"),
                               headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
    finally:
        if case.operation.path == "/api/v1/push/subscriptions":
            # The documented example subscribes a real push service's URL (and an admin's
            # subscription hears of every alert): the test suite must never push there.
            execute(database_url, "DELETE FROM push_subscriptions WHERE subject = 'schemathesis'")
        elif case.operation.path.startswith("/api/v1/webhooks"):
            # Generated subscriptions (some allowed private addresses) must not outlive the call.
            execute(database_url, "DELETE FROM webhook_subscriptions WHERE created_by = 'schemathesis'")
