"""One settings base for every service: the shared fields are defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from ctt.config import OpsSettings
from ctt_common.settings import ServiceSettings
from firmware_sim.config import SimSettings
from ingest.config import IngestSettings
from tracking_api.config import ApiSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (ApiSettings, IngestSettings, OpsSettings, SimSettings)
SHARED = ("database_url", "broker_host", "broker_port", "log_level")


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
def test_every_service_reads_the_shared_fields_from_the_base(settings: type[ServiceSettings],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert issubclass(settings, ServiceSettings)
    redefined = set(SHARED) & set(vars(settings).get("__annotations__", {}))
    assert not redefined, f"{settings.__name__} redefines {redefined}"
    monkeypatch.setenv("CTT_DATABASE_URL", "postgresql://x@db.example:5432/ctt")
    monkeypatch.setenv("CTT_BROKER_PORT", "1884")
    monkeypatch.setenv("CTT_LOG_LEVEL", "debug")
    read = settings()
    assert (read.database_url, read.broker_port, read.log_level) == ("postgresql://x@db.example:5432/ctt", 1884,
                                                                      "DEBUG")


def test_a_bad_log_level_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTT_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="log level 'loud' is not one of"):
        ApiSettings()


def test_the_base_imports_no_service() -> None:
    services = {"ingest", "tracking_api", "firmware_sim", "geofence", "ctt"}
    bad = []
    for path in (ROOT / "ctt_common").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            bad += [(path.name, n) for n in names if n.split(".")[0] in services]
    assert not bad
