"""The project's certificate authority: the broker's server certificate, device
client certificates and the revocation list (CRL) the broker checks.

Layout of ``$CTT_STATE_DIR/pki`` (keys mode 0600)::

    ca.key ca.crt          the CA (EC P-256); ca.crt is what devices and ingest trust
    server.key server.crt  the broker's TLS certificate (subjectAltName: the hosts given to ``init``)
    crl.pem                revoked device certificates, signed by the CA
    revoked.txt            ``<serial hex> <device id>`` per revoked certificate (the CRL's source)

``python -m ctt.pki init [--dir DIR] [--host NAME ...]`` creates what is missing
and touches nothing that exists (idempotent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
DEVICE_DAYS = 3650  # a tracker's service life; revocation, not expiry, ends it earlier
# The broker refuses every client certificate once the CRL is past its next update:
# it is re-signed on every revocation and by ``init`` when less than a year is left.
CRL_DAYS = 3650
CRL_RENEW_DAYS = 365
DEFAULT_HOSTS = ("localhost", "127.0.0.1")


class PkiError(ValueError):
    """A CA file that is missing or not what it should be."""


@dataclass(frozen=True)
class Pki:
    """The CA's files under ``root``."""

    root: Path

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.crt"

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    @property
    def revoked(self) -> Path:
        return self.root / "revoked.txt"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the start (a key is never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    _write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()), 0o600)
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ctt"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _load_ca(pki: Pki) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    except FileNotFoundError as exc:
        raise PkiError(f"{exc.filename} is missing: run `python -m ctt.pki init`") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{pki.ca_key} is not an EC private key")
    return key, cert


def _create_ca(pki: Pki) -> None:
    key = write_key(pki.ca_key)
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(_name("ctt device CA")).issuer_name(_name("ctt device CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _leaf(pki: Pki, common_name: str, key_path: Path, days: int, usage: x509.ObjectIdentifier,
          hosts: Sequence[str] = ()) -> x509.Certificate:
    ca_key, ca_cert = _load_ca(pki)
    key = write_key(key_path)
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                                        critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_device(pki: Pki, device_id: str, key_path: Path, cert_path: Path) -> int:
    """A client certificate with CN = ``device_id`` (the broker's username); returns its serial."""
    cert = _leaf(pki, device_id, key_path, DEVICE_DAYS, ExtendedKeyUsageOID.CLIENT_AUTH)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return int(cert.serial_number)


def certificate_serial(cert_path: Path) -> int:
    return int(x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number)


def revoked_serials(pki: Pki) -> dict[int, str]:
    """Serial -> device id of every revoked certificate."""
    if not pki.revoked.exists():
        return {}
    entries = (line.split(maxsplit=1) for line in pki.revoked.read_text().splitlines() if line.strip())
    return {int(serial, 16): device for serial, device in entries}


def revoke(pki: Pki, serial: int, device_id: str) -> None:
    """Add ``serial`` to the revocation list and re-sign the CRL."""
    serials = revoked_serials(pki)
    serials[serial] = device_id
    _write(pki.revoked, "".join(f"{s:x} {d}\n" for s, d in serials.items()).encode(), 0o644)
    write_crl(pki)


def write_crl(pki: Pki) -> None:
    ca_key, ca_cert = _load_ca(pki)
    now = _now()
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=CRL_DAYS)))
    for serial in revoked_serials(pki):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    _write(pki.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)


def _crl_due(pki: Pki) -> bool:
    if not pki.crl.exists():
        return True
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    next_update = crl.next_update_utc
    return next_update is None or next_update - _now() < dt.timedelta(days=CRL_RENEW_DAYS)


def init(pki: Pki, hosts: Sequence[str] = DEFAULT_HOSTS) -> list[str]:
    """Create the CA, the broker's certificate and the CRL where missing; return what was created."""
    pki.root.mkdir(parents=True, exist_ok=True)
    pki.root.chmod(0o755)
    created: list[str] = []
    if not pki.ca_key.exists():
        _create_ca(pki)
        created.append("ca")
    if not pki.server_cert.exists():
        cert = _leaf(pki, hosts[0], pki.server_key, SERVER_DAYS, ExtendedKeyUsageOID.SERVER_AUTH, hosts)
        _write(pki.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        created.append("server")
    if _crl_due(pki):
        write_crl(pki)
        created.append("crl")
    return created


def main() -> None:
    parser = argparse.ArgumentParser(description="The project's certificate authority.")
    sub = parser.add_subparsers(dest="command", required=True)
    init_p = sub.add_parser("init", help="create the CA, the broker's certificate and the CRL (idempotent)")
    init_p.add_argument("--dir", type=Path, required=True, help="the CA's directory, e.g. $CTT_STATE_DIR/pki")
    init_p.add_argument("--host", action="append", default=[],
                        help="a name or address devices use for the broker (repeatable)")
    args = parser.parse_args()
    created = init(Pki(args.dir), tuple(dict.fromkeys([*DEFAULT_HOSTS, *args.host])))
    print(" ".join(created) if created else "unchanged")


if __name__ == "__main__":
    main()
