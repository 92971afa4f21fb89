"""API settings (``CTT_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTT_", extra="ignore")

    database_url: str = "postgresql://ctt:ctt@127.0.0.1:5432/ctt"
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    readiness_timeout_s: float = 2.0
    # Bearer tokens: HS256 with this secret; exp, iss and aud are required. Change the secret in production.
    jwt_secret: str = Field(default="ctt-local-jwt-secret-change-me-in-production", min_length=32)
    jwt_issuer: str = "ctt"
    jwt_audience: str = "ctt-api"
    token_ttl_s: int = Field(default=12 * 3600, gt=0)
    # A comment line this often keeps proxies from closing an idle event stream.
    stream_keepalive_s: float = Field(default=15.0, gt=0)
