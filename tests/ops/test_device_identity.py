"""Device identity: each device's own credential (certificate or random secret),
revocation, TLS, and what device and observer credentials can reach. Attacks on
the tests' real broker (``deploy/services.sh --test-tools``)."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ctt import devices, pki
from ctt.broker_auth import BrokerAuthError, read_password_file, verify_password
from ctt.config import OpsSettings
from firmware_sim.link import Credentials
from protocol.records import Fix, encode
from tests.support import (
    BROKER,
    BROKER_CERT,
    BROKER_SECRET,
    TEST_BROKER,
    Device,
    IngestProcess,
    endpoint,
    provision,
    unique_prefix,
    wait_for,
)

NOT_AUTHORIZED = 0x87


def _fix(seq: int) -> bytes:
    return encode(Fix(seq=seq, ts=int(time.time() * 1000) - 60_000, lat=0.5, lon=34.0))


def _attempt(client_id: str, credentials: Credentials | None, endpoint: tuple[str, int],
             password: str | None = None) -> str:
    """Connect once: ``"connected"``, or why not (refused in the TLS handshake, or by CONNACK)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    if credentials is not None:
        credentials.apply(client, client_id)
    else:
        client.username_pw_set(client_id, password)
    outcome: list[str] = []
    client.on_connect = lambda c, u, f, reason, p: outcome.append("connected" if not reason.is_failure else str(reason))
    client.on_disconnect = lambda c, u, f, reason, p: outcome.append(f"dropped: {reason}")
    try:
        client.connect(*endpoint)
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}"
    client.loop_start()
    try:
        return wait_for(lambda: outcome[0] if outcome else None, 10, f"{client_id}'s connection to end")  # type: ignore[no-any-return]
    finally:
        client.disconnect()
        client.loop_stop()


def _connects(device_id: str, credentials: Credentials) -> bool:
    return _attempt(device_id, credentials, endpoint(credentials)) == "connected"


def _scratch(tmp_path: Path) -> devices.Broker:
    broker = devices.Broker(tmp_path / "broker", pki.Pki(tmp_path / "pki"))
    broker.dir.mkdir(parents=True)
    pki.init(broker.pki)
    return broker


def test_pki_init_is_idempotent_with_private_keys(tmp_path: Path) -> None:
    ca = pki.Pki(tmp_path / "pki")
    assert pki.init(ca) == ["ca", "server", "crl"]
    before = {p.name: p.read_bytes() for p in ca.root.iterdir()}
    assert pki.init(ca) == []
    assert {p.name: p.read_bytes() for p in ca.root.iterdir()} == before
    for key in (ca.ca_key, ca.server_key):
        assert key.stat().st_mode & 0o777 == 0o600
    server = x509.load_pem_x509_certificate(ca.server_cert.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.ca_cert.read_bytes()))


def test_secrets_are_random_per_device_and_stored_only_as_hashes(tmp_path: Path) -> None:
    one, other = _scratch(tmp_path / "a"), _scratch(tmp_path / "b")
    first = devices.provision(one, ["truck-1", "truck-2"], "secret")
    assert all(i.new and i.kind == "secret" for i in first)
    secret = {d: one.secret(d).read_text().strip() for d in ("truck-1", "truck-2")}
    # 24 random bytes: 192 bits; nothing shared between devices or derived from the id.
    assert len(secret["truck-1"]) == 32 and secret["truck-1"] != secret["truck-2"]
    devices.provision(other, ["truck-1"], "secret")
    assert other.secret("truck-1").read_text().strip() != secret["truck-1"]
    assert one.secret("truck-1").stat().st_mode & 0o777 == 0o600
    assert one.device_dir("truck-1").stat().st_mode & 0o777 == 0o700
    stored = one.passwd.read_text()
    assert secret["truck-1"] not in stored
    assert verify_password(secret["truck-1"], read_password_file(one.passwd)["truck-1"])
    # Provisioning again keeps the credential a device holds.
    assert [i.new for i in devices.provision(one, ["truck-1"], "secret")] == [False]
    assert one.secret("truck-1").read_text().strip() == secret["truck-1"]


def test_backend_account_names_are_never_issued(tmp_path: Path) -> None:
    broker = _scratch(tmp_path)
    for name in ("ctt-ingest", "ctt-observer"):
        for kind in ("certificate", "secret"):
            with pytest.raises(BrokerAuthError, match=name):
                devices.provision(broker, [name], kind)
    assert not (broker.dir / "devices").exists() and not broker.passwd.exists()


@pytest.mark.parametrize("kind", ["certificate", "secret"])
def test_revoked_device_is_refused_and_others_still_connect(kind: devices.Kind, tmp_path: Path) -> None:
    victim, bystander = unique_prefix("revA"), unique_prefix("revB")
    provision([victim, bystander], kind)
    # What the device (or a thief who copied it) holds: revocation deletes only the store's copy.
    shutil.copytree(TEST_BROKER.device_dir(victim), tmp_path / victim)
    held = devices.credentials(TEST_BROKER, victim)
    stolen = Credentials(held.ca_file, held.cert_file and tmp_path / victim / held.cert_file.name,
                         held.key_file and tmp_path / victim / held.key_file.name, held.password)
    other = devices.credentials(TEST_BROKER, bystander)
    assert _connects(victim, stolen) and _connects(bystander, other)
    assert devices.revoke(TEST_BROKER, victim) == kind
    time.sleep(0.3)  # the broker re-reads its password file and CRL on SIGHUP
    assert _attempt(victim, stolen, endpoint(stolen)) != "connected"
    assert _connects(bystander, other)
    with pytest.raises(BrokerAuthError, match=victim):
        devices.revoke(TEST_BROKER, victim)


def test_certificate_from_another_ca_is_refused_even_named_ctt_ingest(tmp_path: Path) -> None:
    """An attacker's own CA issuing a certificate with the ingest account's name as CN."""
    rogue = pki.Pki(tmp_path / "rogue")
    pki.init(rogue)
    key = pki.write_key(tmp_path / "ingest.key")
    ca_key = serialization.load_pem_private_key(rogue.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ctt-ingest")]))
            .issuer_name(x509.load_pem_x509_certificate(rogue.ca_cert.read_bytes()).subject)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    (tmp_path / "ingest.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    rogue_creds = Credentials(ca_file=TEST_BROKER.pki.ca_cert, cert_file=tmp_path / "ingest.crt",
                              key_file=tmp_path / "ingest.key")
    assert _attempt("ctt-ingest", rogue_creds, BROKER_CERT).startswith(("refused", "dropped"))


def test_devices_connect_only_over_tls() -> None:
    dev = unique_prefix("plain")
    provision([dev], "secret")
    secret = TEST_BROKER.secret(dev).read_text().strip()
    assert _attempt(dev, devices.credentials(TEST_BROKER, dev), BROKER_SECRET) == "connected"
    for port in (BROKER_SECRET, BROKER_CERT):  # the same secret without TLS
        assert _attempt(dev, None, port, password=secret) != "connected"


class Recorder:
    """A raw MQTT 5 client recording every message topic and PUBACK reason."""

    def __init__(self, client: mqtt.Client) -> None:
        self.topics: list[str] = []
        self.pubacks: dict[int, int] = {}
        self.subscribed = threading.Event()
        client.on_message = lambda c, u, m: self.topics.append(m.topic)
        client.on_publish = self._on_publish
        client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client = client

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.pubacks[mid] = reason.value

    def subscribe(self, *topics: str) -> None:
        self.subscribed.clear()
        self.client.subscribe([(t, 1) for t in topics])
        assert self.subscribed.wait(5)

    def refused_publish(self, topic: str) -> bool:
        info = self.client.publish(topic, b'{"seq": 0}', qos=1)
        info.wait_for_publish(timeout=5)
        return wait_for(lambda: self.pubacks.get(info.mid), 5, f"PUBACK for {topic}") == NOT_AUTHORIZED  # type: ignore[no-any-return]


def test_device_reads_neither_the_fleet_nor_writes_acks(ingest: IngestProcess) -> None:
    spy, other = unique_prefix("spy"), unique_prefix("fleet")
    provision([spy, other])
    with Device(spy) as s, Device(other) as o:
        rec = Recorder(s.client)
        rec.subscribe("#", f"ctt/v1/dev/{other}/pos", "ctt/v1/dev/+/ack", "ctt/v1/alerts/#")
        assert rec.refused_publish(f"ctt/v1/dev/{other}/ack")
        assert rec.refused_publish(f"ctt/v1/dev/{spy}/ack")  # not even its own: acks are the backend's word
        o.publish_all([("pos", _fix(0))])
        wait_for(lambda: 0 in o.acks, 10, "the other device's ack")
        s.publish_all([("pos", _fix(0))])
        # Positive control: the spy's subscriptions deliver what it may read (its own ack).
        wait_for(lambda: f"ctt/v1/dev/{spy}/ack" in rec.topics, 10, "the spy's own ack")
        assert o.acks == [0]  # no forged ack reached the other device
    assert set(rec.topics) == {f"ctt/v1/dev/{spy}/ack"}


def test_observer_reads_only_alerts_and_writes_nothing(ingest: IngestProcess) -> None:
    dev = unique_prefix("obsd")
    provision([dev])
    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ctt-observer", protocol=MQTTProtocolVersion.MQTTv5)
    observer.username_pw_set("ctt-observer", OpsSettings().observer_password)
    rec = Recorder(observer)
    observer.connect(*BROKER)
    observer.loop_start()
    try:
        rec.subscribe("ctt/v1/dev/+/pos", "ctt/v1/dev/+/ack", "ctt/v1/dev/+/status")
        with Device(dev) as d:
            assert rec.refused_publish(f"ctt/v1/dev/{dev}/ack")
            assert rec.refused_publish("ctt/v1/alerts/seal_breach")
            d.publish_all([("pos", _fix(0))])
            wait_for(lambda: 0 in d.acks, 10, "the device's ack")
            time.sleep(0.5)
            assert d.acks == [0]  # the observer's forged ack never arrived
    finally:
        observer.disconnect()
        observer.loop_stop()
    assert rec.topics == []
