"""API settings (``CTT_*`` environment variables)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTT_", extra="ignore")

    database_url: str = "postgresql://ctt:ctt@127.0.0.1:5432/ctt"
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    readiness_timeout_s: float = 2.0
