"""Simulator settings (``CTT_SIM_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTT_SIM_", extra="ignore")

    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    # Same secret as the broker's provisioning: device password = HMAC(secret, id).
    provisioning_secret: str = Field(
        default="ctt-local-provisioning-secret", validation_alias="CTT_PROVISIONING_SECRET"
    )
    corridor: str = "northern"
