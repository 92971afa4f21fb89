"""The audit chain's head, signed outside the database.

A checkpoint is (id, head id, head hash, signed at) signed with an Ed25519 key
kept in a file (0600) the database never sees. Each checkpoint is appended to an
export file (JSON lines) and copied into ``audit_checkpoints`` for the API.
``ctt audit verify`` reads the file, checks each signature with the public key
and compares each signed head with the row's current hash: an insider who
rewrites rows and recomputes the chain inside the database cannot re-sign.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

_LOCK = 7710003  # one checkpoint writer at a time (7710001 is the chain's, 7710002 alert events')
_HEAD = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"
_NEXT = "SELECT coalesce(max(id), 0) + 1, now() FROM audit_checkpoints"
_RECORD = """
INSERT INTO audit_checkpoints (id, head_id, head_hash, signed_at, signature, key_id) VALUES (%s, %s, %s, %s, %s, %s)
"""


class CheckpointError(ValueError):
    """A key or checkpoint file that cannot be trusted (named, with the line)."""


@dataclass(frozen=True)
class Checkpoint:
    id: int
    head_id: int
    head_hash: str  # hex
    signed_at: str  # ISO 8601, as signed
    signature: str  # hex
    key_id: str

    def message(self) -> bytes:
        """The canonical bytes signed."""
        return f"ctt-audit-checkpoint/1\n{self.id}\n{self.head_id}\n{self.head_hash}\n{self.signed_at}".encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class AnchorFiles:
    """Where the signing key, its public half and the exported checkpoints live."""

    private_key: Path
    public_key: Path
    export: Path


def anchor_files(state_dir: Path) -> AnchorFiles:
    """The local layout: the private key with the other secrets, the rest in ``audit/``."""
    return AnchorFiles(state_dir / "secrets" / "audit-signing.key", state_dir / "audit" / "signing.pub",
                       state_dir / "audit" / "checkpoints.jsonl")


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def signing_key(files: AnchorFiles) -> Ed25519PrivateKey:
    """The signing key, created (0600, with its public half) on first use."""
    if not files.private_key.exists():
        key = Ed25519PrivateKey.generate()
        files.private_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        fd = os.open(files.private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        files.public_key.parent.mkdir(parents=True, exist_ok=True)
        files.public_key.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    loaded = load_pem_private_key(files.private_key.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CheckpointError(f"{files.private_key} is not an Ed25519 private key")
    return loaded


def verifying_key(path: Path) -> Ed25519PublicKey:
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def write_checkpoint(database_url: str, files: AnchorFiles) -> Checkpoint | None:
    """Sign the current head, export it and record it; None when the log is empty.

    Exported before the commit: a checkpoint in the file but not in the table
    (a failed commit) still verifies, since verification reads the file."""
    key = signing_key(files)
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        head = conn.execute(_HEAD).fetchone()
        if head is None:
            return None
        number, now = conn.execute(_NEXT).fetchone() or (1, datetime.now(UTC))
        unsigned = Checkpoint(int(number), int(head[0]), bytes(head[1]).hex(), now.isoformat(), "",
                              key_id(key.public_key()))
        checkpoint = replace(unsigned, signature=key.sign(unsigned.message()).hex())
        conn.execute(_RECORD, (checkpoint.id, checkpoint.head_id, bytes.fromhex(checkpoint.head_hash), now,
                               bytes.fromhex(checkpoint.signature), checkpoint.key_id))
        _append(files.export, checkpoint)
    return checkpoint


def _append(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(checkpoint.to_json() + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_checkpoints(files: AnchorFiles) -> list[Checkpoint]:
    """Every exported checkpoint, each signature checked; none when nothing was exported yet."""
    if not files.export.exists():
        return []
    public = verifying_key(files.public_key)
    expected_key = key_id(public)
    found: list[Checkpoint] = []
    for number, line in enumerate(files.export.read_text().splitlines(), start=1):
        where = f"{files.export}:{number}"
        try:
            checkpoint = Checkpoint(**json.loads(line))
            signature = bytes.fromhex(checkpoint.signature)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{where}: not a checkpoint ({exc})") from None
        if checkpoint.key_id != expected_key:
            raise CheckpointError(f"{where}: checkpoint {checkpoint.id} names key {checkpoint.key_id!r}, "
                                  f"not {expected_key!r}")
        try:
            public.verify(signature, checkpoint.message())
        except InvalidSignature:
            raise CheckpointError(f"{where}: checkpoint {checkpoint.id}'s signature is not valid") from None
        found.append(checkpoint)
    return found
