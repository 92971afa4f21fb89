"""The settings base of every service: ``CTT_*`` environment variables, defaults
that fit the local services of ``deploy/services.sh``. Each service subclasses
it with the fields only it reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from annotated_types import MinLen
from pydantic import AfterValidator, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"log level {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


LogLevel = Annotated[str, AfterValidator(_log_level)]
Environment = Literal["development", "production"]
# Fields holding a secret, by name; in production each must be set, not a shipped default,
# and at least this long (or its own ``min_length``, when longer).
SECRET_SUFFIXES = ("_secret", "_password")
URL_SUFFIX = "_url"
PRODUCTION_MIN_SECRET_LENGTH = 16
# Passwords published in this repository outside the settings classes (the local database
# superuser of deploy/services.sh and the image's); the settings' own defaults are added.
PUBLISHED_PASSWORDS = frozenset({"ctt", "postgres"})


class ServiceSettings(BaseSettings):
    """Where the database and the broker are, and how much to log."""

    model_config = SettingsConfigDict(env_prefix="CTT_", extra="ignore")

    database_url: str = "postgresql://ctt:ctt@127.0.0.1:5432/ctt"
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=1883, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    # ``production`` (docker-compose sets it for every service) refuses shipped defaults.
    env: Environment = "development"

    @model_validator(mode="after")
    def _production_posture(self) -> Self:
        if self.env == "production":
            problems = list(production_problems(self))
            if problems:
                raise ValueError("refusing to start with CTT_ENV=production: " + "; ".join(problems))
        return self


def production_problems(settings: ServiceSettings) -> Iterator[str]:
    """Why ``settings`` may not run in production, one sentence per variable: a secret (or a
    password inside a URL) equal to a shipped default, or shorter than its minimum."""
    shipped = shipped_secrets()
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if not isinstance(value, str):
            continue
        variable = _variable(name, field.validation_alias)
        if name.endswith(SECRET_SUFFIXES):
            secret, minimum = value, max([PRODUCTION_MIN_SECRET_LENGTH] +
                                         [m.min_length for m in field.metadata if isinstance(m, MinLen)])
        elif name.endswith(URL_SUFFIX) and urlsplit(value).password is not None:
            secret, minimum, variable = urlsplit(value).password or "", PRODUCTION_MIN_SECRET_LENGTH, \
                f"the password in {variable}"
        else:
            continue
        if secret in shipped:
            yield f"{variable} is a shipped default: set a secret of your own"
        elif len(secret) < minimum:
            yield f"{variable} is shorter than {minimum} characters"


def shipped_secrets() -> frozenset[str]:
    """Every secret this repository ships: the defaults of every settings class's secret
    fields, the passwords inside their default URLs, and ``PUBLISHED_PASSWORDS``."""
    found = set(PUBLISHED_PASSWORDS)
    for cls in _settings_classes(ServiceSettings):
        for name, field in cls.model_fields.items():
            if not isinstance(field.default, str):
                continue
            if name.endswith(SECRET_SUFFIXES):
                found.add(field.default)
            elif name.endswith(URL_SUFFIX) and urlsplit(field.default).password:
                found.add(urlsplit(field.default).password or "")
    return frozenset(found)


def _settings_classes(base: type[ServiceSettings]) -> Iterator[type[ServiceSettings]]:
    yield base
    for sub in base.__subclasses__():
        yield from _settings_classes(sub)


def _variable(name: str, alias: object) -> str:
    return alias if isinstance(alias, str) else f"CTT_{name.upper()}"
