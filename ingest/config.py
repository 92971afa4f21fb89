"""Ingest settings: one object, read from ``CTT_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """Defaults match the local services started by ``deploy/services.sh``."""

    model_config = SettingsConfigDict(env_prefix="CTT_", extra="ignore")

    database_url: str = "postgresql://ctt:ctt@127.0.0.1:5432/ctt"
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    # Mosquitto uses the username as client id, so this also names the
    # persistent session that holds messages while ingest is down.
    broker_username: str = "ctt-ingest"
    broker_password: str = "ctt-ingest-local"
    keepalive_s: int = Field(default=30, ge=5)
    # Unacknowledged QoS 1 messages the broker may have in flight to us (MQTT 5
    # Receive Maximum). Also the bound on ingest memory while the database is down.
    receive_maximum: int = Field(default=5000, ge=1, le=65535)
    batch_max_messages: int = Field(default=2000, ge=1)
    batch_max_wait_ms: int = Field(default=100, ge=1)
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    max_records_per_message: int = Field(default=1000, ge=1)
    # Fix times further ahead of the server clock are implausible.
    max_future_s: float = Field(default=300.0, ge=0)
    db_retry_max_s: float = Field(default=10.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no metrics endpoint
