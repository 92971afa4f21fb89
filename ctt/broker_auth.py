"""Mosquitto password-file accounts for devices and backend services (EMQX's: ``ctt.emqx_users``).

Mosquitto 2 reads ``user:$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>`` lines.
Writing them here (instead of running ``mosquitto_passwd`` once per device)
provisions thousands of devices in a second. Every password is random (see
``new_secret``): the file holds only hashes, and no password can be derived
from a device id or from any other secret.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from protocol.topics import is_device_id

ITERATIONS = 101  # mosquitto_passwd's default for $7$; the secrets are random, not guessable words
SALT_BYTES = 12
SECRET_BYTES = 24  # 192 random bits per device secret
# The backend's own accounts: never a device id (a device named ctt-ingest would read the fleet).
SERVICE_ACCOUNTS = ("ctt-ingest", "ctt-observer")


H = TypeVar("H")  # a stored hash, in one broker's form


class BrokerAuthError(ValueError):
    """A username, password line or password file the broker would not accept."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Mosquitto ``$7$`` hash of ``password`` (random 12-byte salt unless given)."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``encoded`` (a ``$7$`` hash) is the hash of ``password``."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(base64.b64encode(digest).decode(), parts[4])


def new_secret(nbytes: int = SECRET_BYTES) -> str:
    """A random password (URL-safe base64 of ``nbytes`` bytes from the OS's CSPRNG)."""
    return secrets.token_urlsafe(nbytes)


def service_secret(secrets_dir: Path, name: str) -> str:
    """The backend account ``name``'s secret, made at set-up (``deploy/services.sh``: ``secrets_dir/broker-<name>``)."""
    path = secrets_dir / f"broker-{check_username(name)}"
    try:
        return path.read_text().strip()
    except FileNotFoundError as exc:
        raise BrokerAuthError(f"{path} is missing: run `ctt services` (deploy/services.sh) to create it") from exc


def check_username(name: str) -> str:
    if not is_device_id(name):
        raise BrokerAuthError(f"username {name!r} does not match [A-Za-z0-9_-]{{1,64}}")
    return name


def check_device_id(device_id: str) -> str:
    """A device id that may be given a credential: valid, and not one of the backend's accounts."""
    if check_username(device_id) in SERVICE_ACCOUNTS:
        raise BrokerAuthError(f"device id {device_id!r} is a backend account name")
    return device_id


def read_password_file(path: Path) -> dict[str, str]:
    """Username -> encoded hash, in file order."""
    users: dict[str, str] = {}
    if not path.exists():
        return users
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        user, sep, encoded = line.partition(":")
        if not sep:
            raise BrokerAuthError(f"{path}:{number}: line has no ':' separator")
        users[user] = encoded
    return users


@dataclass(frozen=True)
class AccountFile(Generic[H]):
    """A broker's file of hashed accounts: how it is parsed and written, how a secret is
    hashed and checked. Mosquitto's password file here, EMQX's users file in ``ctt.emqx_users``."""

    read: Callable[[Path], dict[str, H]]
    render: Callable[[Mapping[str, H]], str]
    hash: Callable[[str], H]
    verify: Callable[[str, H], bool]

    def upsert(self, path: Path, accounts: Mapping[str, str]) -> bool:
        """Add or update ``accounts`` (username -> password); return True if the file changed."""
        users = self.read(path)
        changed = False
        for user, password in accounts.items():
            check_username(user)
            if user in users and self.verify(password, users[user]):
                continue
            users[user] = self.hash(password)
            changed = True
        if changed:
            write_private(path, self.render(users))
        return changed

    def remove(self, path: Path, names: Iterable[str]) -> bool:
        """Remove accounts; return True if the file changed."""
        users = self.read(path)
        gone = [n for n in names if users.pop(n, None) is not None]
        if gone:
            write_private(path, self.render(users))
        return bool(gone)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _render_password_file(users: Mapping[str, str]) -> str:
    return "".join(f"{u}:{h}\n" for u, h in users.items())


MOSQUITTO = AccountFile(read_password_file, _render_password_file, hash_password, verify_password)


def upsert_accounts(path: Path, accounts: Mapping[str, str]) -> bool:
    """Add or update Mosquitto accounts (username -> password); return True if the file changed."""
    return MOSQUITTO.upsert(path, accounts)


def remove_accounts(path: Path, names: Iterable[str]) -> bool:
    """Remove Mosquitto accounts; return True if the file changed."""
    return MOSQUITTO.remove(path, names)


def reload_broker(pid_file: Path) -> bool:
    """Ask the running broker to re-read its password file, ACL and CRL (SIGHUP).

    Mosquitto 2.0 reloads the listeners' certificates and CRL on SIGHUP (measured on
    2.0.11 by tests/ops/test_device_identity.py); established connections stay up."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="Add or update the backend's broker accounts.")
    parser.add_argument("--file", type=Path, help="Mosquitto password file")
    parser.add_argument("--emqx-users", type=Path, help="EMQX built-in database bootstrap file (ctt.emqx_users)")
    parser.add_argument("accounts", nargs="+", help="user=password")
    args = parser.parse_args()
    if args.file is None and args.emqx_users is None:
        parser.error("give --file, --emqx-users or both")
    accounts: dict[str, str] = {}
    for item in args.accounts:
        user, _, password = item.partition("=")
        if not password:
            parser.error(f"account {user!r} has no password")
        accounts[user] = password
    changed = args.file is not None and upsert_accounts(args.file, accounts)
    if args.emqx_users is not None:
        from ctt.emqx_users import upsert_users  # it imports this module

        changed = upsert_users(args.emqx_users, accounts) or changed
    print("changed" if changed else "unchanged")


if __name__ == "__main__":
    main()

