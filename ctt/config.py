"""Settings of the operations layer (CLI, provisioning, local services)."""

from __future__ import annotations

from pathlib import Path

from ctt_common.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]


class OpsSettings(ServiceSettings):
    """The operations layer's own fields; database, broker and log level come from the base."""

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
