"""EMQX built-in database users: the bootstrap file the clustered broker reads.

EMQX 5 checks a password against ``hex(PBKDF2-HMAC-SHA512(password, salt, iterations))``
with the salt taken as the bytes of a text column, so it cannot read Mosquitto's
``$7$`` lines (binary salt, base64 digest). Each secret is hashed a second time for it
when it is known: by ``ctt devices provision`` in the same run that writes Mosquitto's
password file, and by the set-up for the backend's accounts. The file is CSV with the
header EMQX's ``bootstrap_type = hash`` import reads (``user_id,password_hash,salt,
is_superuser``); the iterations are Mosquitto's (``ctt.broker_auth.ITERATIONS``, also in
``deploy/emqx/emqx.conf``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ctt.broker_auth import ITERATIONS, AccountFile, BrokerAuthError, check_username

HEADER = ("user_id", "password_hash", "salt", "is_superuser")
SALT_HEX_CHARS = 32  # 16 random bytes, written as hex text: EMQX uses the text's bytes as the salt


@dataclass(frozen=True)
class EmqxUser:
    """One user's stored hash (lowercase hex of the 64-byte PBKDF2-SHA512 digest) and salt (text)."""

    password_hash: str
    salt: str


def hash_password(password: str, salt: str | None = None) -> EmqxUser:
    """EMQX's PBKDF2-SHA512 hash of ``password`` (random hex salt unless given)."""
    salt = salt if salt is not None else secrets.token_hex(SALT_HEX_CHARS // 2)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt.encode(), ITERATIONS)
    return EmqxUser(digest.hex(), salt)


def verify_password(password: str, user: EmqxUser) -> bool:
    """True when ``user``'s hash is the hash of ``password`` (compared as EMQX does: case-insensitive)."""
    return hmac.compare_digest(hash_password(password, user.salt).password_hash, user.password_hash.lower())


def read_users(path: Path) -> dict[str, EmqxUser]:
    """Username -> stored hash, in file order (empty when the file does not exist)."""
    if not path.exists():
        return {}
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or tuple(rows[0]) != HEADER:
        raise BrokerAuthError(f"{path}: first line is not the header {','.join(HEADER)}")
    users: dict[str, EmqxUser] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADER):
            raise BrokerAuthError(f"{path}:{number}: {len(row)} fields, expected {len(HEADER)}")
        users[check_username(row[0])] = EmqxUser(row[1], row[2])
    return users


def _render(users: Mapping[str, EmqxUser]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    # No superuser: a superuser skips the ACL, and nobody here needs to.
    writer.writerows((name, u.password_hash, u.salt, "false") for name, u in users.items())
    return out.getvalue()


EMQX = AccountFile(read_users, _render, hash_password, verify_password)


def upsert_users(path: Path, accounts: Mapping[str, str]) -> bool:
    """Add or update EMQX users (username -> password); return True if the file changed."""
    return EMQX.upsert(path, accounts)


def remove_users(path: Path, names: Iterable[str]) -> bool:
    """Remove EMQX users; return True if the file changed."""
    return EMQX.remove(path, names)
