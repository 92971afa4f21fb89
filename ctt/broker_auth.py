"""Mosquitto password-file accounts for devices and backend services.

Mosquitto 2 reads ``user:$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>`` lines.
Writing them here (instead of running ``mosquitto_passwd`` once per device)
provisions thousands of devices in a second.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path

from protocol.topics import is_device_id

ITERATIONS = 101  # mosquitto_passwd's default for $7$
SALT_BYTES = 12


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


def device_password(secret: str, device_id: str) -> str:
    """Per-device password derived from the provisioning secret.

    The factory writes it into the device; the backend can re-derive it, so
    provisioning needs no password database of its own.
    """
    check_username(device_id)
    return hmac.new(secret.encode(), device_id.encode(), hashlib.sha256).hexdigest()[:32]


def check_username(name: str) -> str:
    if not is_device_id(name):
        raise BrokerAuthError(f"username {name!r} does not match [A-Za-z0-9_-]{{1,64}}")
    return name


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


def upsert_accounts(path: Path, accounts: Mapping[str, str]) -> bool:
    """Add or update ``accounts`` (username -> password); return True if the file changed."""
    users = read_password_file(path)
    changed = False
    for user, password in accounts.items():
        check_username(user)
        if user in users and verify_password(password, users[user]):
            continue
        users[user] = hash_password(password)
        changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in users.items()))
        tmp.chmod(0o600)
        tmp.replace(path)
    return changed


def provision_devices(path: Path, secret: str, device_ids: Iterable[str]) -> bool:
    """Give each device its derived password; True if the password file changed."""
    return upsert_accounts(path, {d: device_password(secret, d) for d in device_ids})


def reload_broker(pid_file: Path) -> bool:
    """Ask the running broker to re-read its password and ACL files (SIGHUP)."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="Add or update Mosquitto accounts.")
    parser.add_argument("--file", type=Path, required=True, help="Mosquitto password file")
    parser.add_argument("accounts", nargs="+", help="user=password")
    args = parser.parse_args()
    accounts = dict(a.split("=", 1) for a in args.accounts)
    print("changed" if upsert_accounts(args.file, accounts) else "unchanged")


if __name__ == "__main__":
    main()
