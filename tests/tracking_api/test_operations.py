"""Operations endpoints of the API against the real database and broker."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support import ApiServer, wait_for
from tests.tracking_api.geo_support import auth
from tracking_api.config import ApiSettings
from tracking_api.main import app, create_app


def test_healthz(client: TestClient) -> None:
    assert client.get("/api/v1/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client: TestClient) -> None:
    checks = wait_for(lambda: (r := client.get("/api/v1/readyz")).status_code == 200 and r.json()["checks"], 10,
                      "the API to be ready")
    assert checks == {"database": True, "broker": True, "stream": True}


def test_readyz_names_the_unreachable_dependency(database_url: str) -> None:
    # An app of its own: nothing it opens is shared with the module's client.
    unreachable = ApiSettings(database_url=database_url, broker_port=1)  # nothing listens on port 1
    with TestClient(create_app(unreachable)) as c:
        response = c.get("/api/v1/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is True and response.json()["checks"]["broker"] is False


def test_the_api_process_logs_json_at_the_configured_level(database_url: str, tmp_path: Path) -> None:
    # As deployed: uvicorn tracking_api.main:app, configured only by the environment.
    log = tmp_path / "api.log"
    server = ApiServer(database_url, log, CTT_LOG_LEVEL="DEBUG").start()
    try:
        urllib.request.urlopen(f"{server.url}/healthz", timeout=5).read()
    finally:
        server.stop()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, uvicorn's and psycopg's included
    assert {"event": "api started", "level": "info", "logger": "tracking_api.main"}.items() <= records[0].items()
    assert any(r["level"] == "debug" for r in records), lines
    assert "ctt:ctt@" not in log.read_text()  # the database password is not logged


def test_the_log_level_filters(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    ApiServer(database_url, log, CTT_LOG_LEVEL="WARNING").start().stop()
    assert "api started" not in log.read_text()


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text


def test_metrics_time_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/shipments/987654321", headers=auth("admin"))
    text = client.get("/metrics").text
    assert ('ctt_api_request_seconds_count{method="GET",route="/shipments/{shipment_id}",status="404"}'
            in text)
    assert "/api/v1/shipments/987654321" not in text  # ids never become series
    assert "ctt_api_stream_clients" in text


def test_every_operation_has_a_summary_and_an_example_of_success() -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), f"{method} {path}"
            ok = [r for code, r in op["responses"].items() if code.startswith("2")]
            examples = [c for r in ok for c in r.get("content", {}).values()
                        if "example" in c or "examples" in c
                        or "examples" in schemas.get(c.get("schema", {}).get("$ref", "/").rsplit("/", 1)[-1], {})]
            assert examples, f"{method} {path} documents no example of its success response"


def test_routes_reach_the_apps_services_only_through_typed_dependencies() -> None:
    # deps.services() is the one reader of app.state; main's lifespan the one writer.
    package = Path(__file__).resolve().parents[2] / "tracking_api"
    readers = {str(p.relative_to(package)) for p in package.rglob("*.py") if "app.state" in p.read_text()}
    assert readers <= {"deps.py", "main.py"}
