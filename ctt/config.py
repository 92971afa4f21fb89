"""Settings of the operations layer (CLI, provisioning, local services)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import model_validator

from ctt.broker_auth import BrokerAuthError, service_secret
from ctt_common.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]

# The database roles (deploy/postgres/roles.sql, grants in schema/013_roles.sql).
DB_OWNER = "ctt_owner"  # owns the schema, runs the migrations; the operations CLI
DB_INGEST = "ctt_ingest"
DB_API = "ctt_api"
DB_REPORT = "ctt_report"  # read-only, for Grafana
DB_ADMIN = "ctt_admin"  # superuser for creating the tests' databases; created by services.sh --test-tools only
_LOCAL_SERVER = "postgresql://127.0.0.1:5432/postgres"


class DatabaseRoleError(RuntimeError):
    """A role's password file is missing: deploy/services.sh has not created the role here."""


def with_role(url: str, role: str, password: str, database: str | None = None) -> str:
    """``url`` with its credentials (and, given, its database) replaced.

    Every host of a multi-host URL (``host1:5433,host2:5434``, what libpq tries in
    turn for ``target_session_attrs``) and the query are kept as written:
    ``urlsplit().hostname`` and ``.port`` see only one host and refuse the list."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2] or "127.0.0.1"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{hosts}"
    return urlunsplit((parts.scheme, netloc, f"/{database}" if database else parts.path, parts.query, ""))


class LocalSettings(ServiceSettings):
    """Where the set-up keeps its state and generated secrets (deploy/services.sh).

    Without ``CTT_DATABASE_URL`` it connects as the owner role when the set-up
    has created it here (its password in ``secrets_dir``). Holds no secret of
    its own: commands that need only the database and the state directory
    (``ctt migrate``, ``ctt audit``) use it, in production too."""

    state_dir: Path = REPO_ROOT / ".ctt"
    # A superuser connection that creates test and benchmark databases; default ctt_admin on the local server.
    admin_database_url: str | None = None

    @model_validator(mode="after")
    def _owner_by_default(self) -> Self:
        if "database_url" not in self.model_fields_set and self.password_file(DB_OWNER).is_file():
            self.database_url = self.url_for(DB_OWNER)
        return self

    @property
    def secrets_dir(self) -> Path:
        """Generated secrets, each 0600 in its own file (deploy/services.sh)."""
        return self.state_dir / "secrets"

    def password_file(self, role: str) -> Path:
        return self.secrets_dir / f"db-{role}"

    def url_for(self, role: str, base: str | None = None, database: str | None = None) -> str:
        """``base`` (default ``database_url``) as database role ``role``, with its generated password."""
        path = self.password_file(role)
        try:
            password = path.read_text().strip()
        except FileNotFoundError:
            raise DatabaseRoleError(f"no password for database role {role!r}: {path} is missing "
                                    "(run deploy/services.sh)") from None
        return with_role(base or self.database_url, role, password, database)

    def admin_url(self) -> str:
        return self.admin_database_url or self.url_for(DB_ADMIN, _LOCAL_SERVER)


class OpsSettings(LocalSettings):
    """The operations layer's own fields; database, broker and log level come from the base."""

    # The observer account's secret; by default the one the set-up made ($CTT_STATE_DIR/secrets/broker-ctt-observer).
    observer_password: str = ""

    @model_validator(mode="after")
    def _observer_secret(self) -> Self:
        if not self.observer_password:
            with contextlib.suppress(BrokerAuthError):  # no set-up here yet: the broker will refuse ""
                self.observer_password = service_secret(self.secrets_dir, "ctt-observer")
        return self

    @property
    def broker_password_file(self) -> Path:
        return self.state_dir / "mosquitto" / "passwd"

    @property
    def broker_pid_file(self) -> Path:
        return self.state_dir / "mosquitto" / "mosquitto.pid"
