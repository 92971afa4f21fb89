"""One settings base for every service: the shared fields are defined once."""

from __future__ import annotations

import ast
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from ctt.config import OpsSettings
from ctt_common.settings import PRODUCTION_MIN_SECRET_LENGTH, SECRET_SUFFIXES, ServiceSettings, shipped_secrets
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


def _secret_fields(settings: type[ServiceSettings]) -> list[str]:
    return [name for name in settings.model_fields if name.endswith(SECRET_SUFFIXES)]


def _strong_environment(settings: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTT_ENV", "production")
    monkeypatch.setenv("CTT_DATABASE_URL", f"postgresql://ctt_api:{secrets.token_urlsafe(24)}@db:5432/ctt")
    for name in _secret_fields(settings):
        monkeypatch.setenv(f"CTT_{name.upper()}", secrets.token_urlsafe(32))


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
def test_production_starts_with_secrets_of_its_own(settings: type[ServiceSettings],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _strong_environment(settings, monkeypatch)
    assert settings().env == "production"


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
def test_production_refuses_every_shipped_default_by_name(settings: type[ServiceSettings],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTT_ENV", "production")
    with pytest.raises(ValidationError) as refused:
        settings()
    message = str(refused.value)
    assert "the password in CTT_DATABASE_URL is a shipped default" in message
    for name in _secret_fields(settings):
        assert f"CTT_{name.upper()} is a shipped default" in message
    settings_in_development = settings(env="development")  # the same defaults are fine locally
    assert settings_in_development.env == "development"


@pytest.mark.parametrize("settings", SERVICES, ids=lambda s: s.__name__)
@pytest.mark.parametrize("published", sorted(shipped_secrets()))
def test_production_refuses_a_shipped_password_in_the_database_url(
        settings: type[ServiceSettings], published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _strong_environment(settings, monkeypatch)
    monkeypatch.setenv("CTT_DATABASE_URL", f"postgresql://ctt:{published}@db:5432/ctt")
    with pytest.raises(ValidationError, match="the password in CTT_DATABASE_URL is a shipped default"):
        settings()


@pytest.mark.parametrize("settings", [s for s in SERVICES if _secret_fields(s)], ids=lambda s: s.__name__)
def test_production_refuses_a_short_secret_by_name(settings: type[ServiceSettings],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _strong_environment(settings, monkeypatch)
    for name in _secret_fields(settings):
        variable = f"CTT_{name.upper()}"
        minimum = max(PRODUCTION_MIN_SECRET_LENGTH, settings.model_fields[name].metadata[0].min_length
                      if settings.model_fields[name].metadata else 0)
        with monkeypatch.context() as short:
            short.setenv(variable, "k" * minimum)
            settings()  # at the minimum: accepted
            short.setenv(variable, "k" * (minimum - 1))
            named = f"{variable} is shorter than {minimum} characters|{name}\n.*at least {minimum} characters"
            with pytest.raises(ValidationError, match=named):  # the field's own min_length names it too
                settings()


def test_production_refuses_a_short_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    _strong_environment(ApiSettings, monkeypatch)
    monkeypatch.setenv("CTT_DATABASE_URL", "postgresql://ctt_api:sh0rt@db:5432/ctt")
    with pytest.raises(ValidationError, match="the password in CTT_DATABASE_URL is shorter than 16"):
        ApiSettings()
