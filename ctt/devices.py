"""Device credentials on one broker instance: ``ctt devices provision`` and ``revoke``.

Each device gets its own credential, derivable from nothing else:

- a client certificate signed by the project CA (``ctt.pki``), CN = device id; the
  broker's certificate listener takes the CN as the username (``use_identity_as_username``);
- or, for a device that cannot hold a certificate, a random secret (192 bits) of
  which the broker's password file keeps only a PBKDF2 hash; the same run writes
  EMQX's own hash of it into ``emqx-users.csv`` beside it (``ctt.emqx_users``: the
  clustered broker's bootstrap users), and revocation removes it there too.

What is handed to the device is written once to ``<broker dir>/devices/<id>/``
(directory 0700; ``device.key`` and ``secret`` 0600), next to the CA certificate
it must trust (``pki/ca.crt``). The backend needs neither the key nor the secret
afterwards: the operator may delete them once the device holds them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ctt import emqx_users
from ctt import pki as ca
from ctt.broker_auth import (
    BrokerAuthError,
    check_device_id,
    new_secret,
    read_password_file,
    reload_broker,
    remove_accounts,
    upsert_accounts,
)
from firmware_sim.link import Credentials

Kind = Literal["certificate", "secret"]


@dataclass(frozen=True)
class Broker:
    """One Mosquitto instance's state directory (``$CTT_STATE_DIR/mosquitto`` or ``mosquitto-test``)."""

    dir: Path
    pki: ca.Pki

    @property
    def passwd(self) -> Path:
        return self.dir / "passwd"

    @property
    def emqx_users(self) -> Path:
        """The same secret accounts for the EMQX cluster (docker-compose.cluster.yml)."""
        return self.dir / "emqx-users.csv"

    @property
    def pid_file(self) -> Path:
        return self.dir / "mosquitto.pid"

    def device_dir(self, device_id: str) -> Path:
        return self.dir / "devices" / device_id

    def cert(self, device_id: str) -> Path:
        return self.device_dir(device_id) / "device.crt"

    def key(self, device_id: str) -> Path:
        return self.device_dir(device_id) / "device.key"

    def secret(self, device_id: str) -> Path:
        return self.device_dir(device_id) / "secret"


def local_broker(state_dir: Path, name: str = "mosquitto") -> Broker:
    """The broker instance ``deploy/services.sh`` runs in ``state_dir/name``, with the CA in ``state_dir/pki``."""
    return Broker(state_dir / name, ca.Pki(state_dir / "pki"))


@dataclass(frozen=True)
class Issued:
    """One device's credential as ``provision`` reports it (``new``: issued by this call)."""

    device_id: str
    kind: Kind
    new: bool
    files: dict[str, str]

    def as_json(self) -> dict[str, object]:
        return {"device": self.device_id, "kind": self.kind, "new": self.new, **self.files}


def kind_of(broker: Broker, device_id: str, accounts: dict[str, str] | None = None) -> Kind | None:
    """The credential ``device_id`` has on ``broker``, or None."""
    if broker.cert(device_id).exists():
        return "certificate"
    users = accounts if accounts is not None else read_password_file(broker.passwd)
    return "secret" if device_id in users else None


def _files(broker: Broker, device_id: str, kind: Kind) -> dict[str, str]:
    if kind == "certificate":
        return {"cert": str(broker.cert(device_id)), "key": str(broker.key(device_id)), "ca": str(broker.pki.ca_cert)}
    return {"secret_file": str(broker.secret(device_id)), "ca": str(broker.pki.ca_cert)}


def _device_dir(broker: Broker, device_id: str) -> Path:
    path = broker.device_dir(device_id)
    path.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.chmod(0o700)
    return path


def _write_secret(path: Path, secret: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")


def provision(broker: Broker, device_ids: Iterable[str], kind: Kind) -> list[Issued]:
    """Issue a ``kind`` credential to each device that has none; keep the one a device has.

    Reloads the broker when its password file changed."""
    ids = [check_device_id(d) for d in dict.fromkeys(device_ids)]
    accounts = read_password_file(broker.passwd)
    issued: list[Issued] = []
    new_secrets: dict[str, str] = {}
    for device_id in ids:
        have = kind_of(broker, device_id, accounts)
        if have is None:
            _device_dir(broker, device_id)
            if kind == "certificate":
                ca.issue_device(broker.pki, device_id, broker.key(device_id), broker.cert(device_id))
            else:
                new_secrets[device_id] = new_secret()
                _write_secret(broker.secret(device_id), new_secrets[device_id])
        issued.append(Issued(device_id, have or kind, have is None, _files(broker, device_id, have or kind)))
    if new_secrets:
        emqx_users.upsert_users(broker.emqx_users, new_secrets)
        if upsert_accounts(broker.passwd, new_secrets):
            reload_broker(broker.pid_file)
    return issued


def revoke(broker: Broker, device_id: str) -> Kind:
    """Cut ``device_id`` off: its certificate onto the CRL, or its password out of the
    password file (and EMQX's users file); its credential files deleted; the broker reloaded
    (new connections refused). A running EMQX cluster needs its REST call too
    (docs/broker-cluster.md)."""
    kind = kind_of(broker, device_id)
    if kind is None:
        raise BrokerAuthError(f"device {device_id!r} has no credential on {broker.dir}")
    if kind == "certificate":
        ca.revoke(broker.pki, ca.certificate_serial(broker.cert(device_id)), device_id)
    else:
        remove_accounts(broker.passwd, [device_id])
        emqx_users.remove_users(broker.emqx_users, [device_id])
    if broker.device_dir(device_id).exists():
        shutil.rmtree(broker.device_dir(device_id))
    reload_broker(broker.pid_file)
    return kind


def credentials(broker: Broker, device_id: str) -> Credentials:
    """What the device holds, read from the store (as the simulated firmware is given it)."""
    kind = kind_of(broker, device_id)
    if kind == "certificate":
        return Credentials(ca_file=broker.pki.ca_cert, cert_file=broker.cert(device_id),
                           key_file=broker.key(device_id))
    if kind == "secret" and broker.secret(device_id).exists():
        return Credentials(ca_file=broker.pki.ca_cert, password=broker.secret(device_id).read_text().strip())
    raise BrokerAuthError(f"device {device_id!r} has no credential in {broker.device_dir(device_id)}")
