"""Settings of the operations layer (CLI, provisioning, local services)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class OpsSettings(BaseSettings):
    """``CTT_*`` environment variables; defaults fit ``deploy/services.sh``."""

    model_config = SettingsConfigDict(env_prefix="CTT_", extra="ignore")

    database_url: str = "postgresql://ctt:ctt@127.0.0.1:5432/ctt"
    state_dir: Path = REPO_ROOT / ".ctt"
    # Device passwords are HMAC(secret, device id). Replace in production.
    provisioning_secret: str = "ctt-local-provisioning-secret"
    observer_password: str = "ctt-observer-local"

    @property
    def broker_password_file(self) -> Path:
        return self.state_dir / "mosquitto" / "passwd"

    @property
    def broker_pid_file(self) -> Path:
        return self.state_dir / "mosquitto" / "mosquitto.pid"
