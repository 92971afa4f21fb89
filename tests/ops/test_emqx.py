"""The clustered broker (docker-compose.cluster.yml, deploy/emqx/): EMQX is not run here, so its files are
checked as EMQX reads them: the compose overlay validates, the HOCON sets what the cluster relies on, the ACL
gives the answers Mosquitto's gives, and provisioning writes users EMQX can verify."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctt import pki as ca
from ctt.broker_auth import ITERATIONS, SERVICE_ACCOUNTS, read_password_file
from ctt.config import REPO_ROOT
from ctt.devices import Broker, provision, revoke
from tests.ops.test_deployment import COMPOSE_SECRETS, CONTAINER_ENVIRONMENT, _compose

EMQX = REPO_ROOT / "deploy/emqx"
CLUSTER_FILES = ("-f", "docker-compose.yml", "-f", "docker-compose.cluster.yml")
CLUSTER_SECRETS = {*COMPOSE_SECRETS, "CTT_EMQX_COOKIE", "CTT_EMQX_DASHBOARD_PASSWORD"}
NODES = ("emqx1", "emqx2", "emqx3")
WORKERS = ("ingest-1", "ingest-2", "ingest-3")
# What a worker may receive beyond the single ingest's environment: its identity and its group.
WORKER_ENVIRONMENT = CONTAINER_ENVIRONMENT["ingest"] | {"CTT_WORKER_ID", "CTT_SHARE_GROUP"}


# --- compose ------------------------------------------------------------------------------------------------

def _secrets() -> dict[str, str]:
    return {name: f"{name.lower()}-given-0123456789abcdef" for name in CLUSTER_SECRETS}


def _cluster(env: dict[str, str]) -> dict[str, Any]:
    result = _compose(*CLUSTER_FILES, "config", env=env)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def test_both_compose_layouts_are_valid() -> None:
    assert _compose("config", "-q", env=_secrets()).returncode == 0
    result = _compose(*CLUSTER_FILES, "config", "-q", env=_secrets())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["CTT_EMQX_COOKIE", "CTT_EMQX_DASHBOARD_PASSWORD", "CTT_BROKER_PASSWORD",
                                     "CTT_DB_INGEST_PASSWORD"])
def test_a_missing_cluster_secret_stops_compose_naming_it(missing: str) -> None:
    env = _secrets()
    del env[missing]
    result = _compose(*CLUSTER_FILES, "config", "-q", env=env)
    assert result.returncode != 0
    assert f"set {missing} (" in result.stderr


def test_three_pinned_nodes_and_three_workers_replace_mosquitto_and_the_single_ingest() -> None:
    services = _cluster(_secrets())
    parked = {name for name, s in services.items() if s.get("profiles")}
    assert parked == {"mosquitto", "broker-setup", "ingest"}
    assert all(services[n]["profiles"] == ["single-node"] for n in parked)
    names = {services[n]["environment"]["EMQX_NODE__NAME"] for n in NODES}
    assert names == {f"emqx@{n}.ctt" for n in NODES}
    for node in NODES:
        image = services[node]["image"]
        assert re.fullmatch(r"emqx/emqx:5\.\d+\.\d+", image), image
        assert services[node]["networks"]["default"]["aliases"] == [f"{node}.ctt"]
        assert set(services[node]["environment"]) == {"EMQX_NODE__NAME", "EMQX_NODE__COOKIE",
                                                      "EMQX_DASHBOARD__DEFAULT_PASSWORD"}
    conf = _hocon()  # the cookie and the admin password come from the required secrets only
    assert "cookie" not in conf["node"] and "default_password" not in conf["dashboard"]
    assert services["emqx1"]["environment"]["EMQX_NODE__COOKIE"] == _secrets()["CTT_EMQX_COOKIE"]
    published = [_host_port(p) for s in services.values() if not s.get("profiles") for p in s.get("ports", [])]
    assert len(published) == len(set(published))  # nothing started twice on one host port


def _host_port(port: str | dict[str, Any]) -> str:
    if isinstance(port, dict):
        return f"{port.get('host_ip', '')}:{port['published']}"
    return port.rsplit(":", 1)[0]


def test_each_worker_has_its_own_identity_and_only_the_single_ingests_secrets() -> None:
    given = _secrets()
    services = _cluster(given)
    single = services["ingest"]["environment"]
    ids, hosts = set(), set()
    for name in WORKERS:
        env = services[name]["environment"]
        assert set(env) <= WORKER_ENVIRONMENT, f"{name} gets {set(env) - WORKER_ENVIRONMENT}"
        for same in ("CTT_ENV", "CTT_DATABASE_URL", "CTT_BROKER_PASSWORD", "CTT_BROKER_CA_FILE"):
            assert env[same] == single[same], (name, same)
        assert env["CTT_SHARE_GROUP"] == "ctt-ingest"
        assert env["CTT_BROKER_PORT"] == str(_hocon()["listeners"]["ssl"]["backend"]["bind"]).rsplit(":", 1)[1]
        ids.add(env["CTT_WORKER_ID"])
        hosts.add(env["CTT_BROKER_HOST"])
    assert len(ids) == len(WORKERS) and hosts == set(NODES)
    setup = services["emqx-setup"]["environment"]
    assert set(setup) == {"CTT_ENV", "CTT_STATE_DIR", "CTT_BROKER_PASSWORD", "CTT_OBSERVER_PASSWORD"}
    for node in NODES:
        assert given["CTT_BROKER_PASSWORD"] not in str(services[node])


def test_the_nodes_read_the_files_the_config_names() -> None:
    services = _cluster(_secrets())
    conf = _hocon()
    mounts = {target: source for source, target in map(_mount, services["emqx1"]["volumes"])}
    assert Path(mounts["/opt/emqx/etc/emqx.conf"]) == EMQX / "emqx.conf"
    acl_path = conf["authorization"]["sources"][0]["path"]
    assert Path(mounts[acl_path]) == EMQX / "acl.conf"
    # emqx-setup writes the users files and TLS files into the volume the nodes mount at /ctt/emqx.
    setup_mounts = dict(map(_mount, services["emqx-setup"]["volumes"]))
    assert mounts["/ctt/emqx"] == "emqx-etc" and setup_mounts["emqx-etc"] == "/var/lib/ctt/mosquitto"
    assert services["emqx-setup"]["environment"]["CTT_STATE_DIR"] == "/var/lib/ctt"  # local_broker(): .../mosquitto
    script = (EMQX / "setup.sh").read_text()
    for path in _file_paths(conf):
        assert path.startswith(("/ctt/emqx/", "/opt/emqx/etc/")), path
        if path.startswith("/ctt/emqx/"):
            assert f'"$etc/{path.removeprefix("/ctt/emqx/")}"' in script or path.startswith("/ctt/emqx/tls/"), path


def _mount(volume: str) -> tuple[str, str]:
    """(source, target) of a `source:target[:mode]` volume as `docker-compose config` prints it."""
    source, target = volume.split(":")[:2]
    return source, target


def _file_paths(conf: Any) -> Iterator[str]:
    if isinstance(conf, dict):
        for key, value in conf.items():
            if key in ("cacertfile", "certfile", "keyfile", "bootstrap_file", "path"):
                yield str(value)
            else:
                yield from _file_paths(value)
    elif isinstance(conf, list):
        for item in conf:
            yield from _file_paths(item)


# --- HOCON: the subset deploy/emqx/emqx.conf uses -------------------------------------------------------------

TOKEN = re.compile(r'\s*(?:(#|//)[^\n]*|(\n)|([{}\[\]=:,])|"((?:[^"\\]|\\.)*)"|([^\s{}\[\]=:,"#]+))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"HOCON subset: cannot read {text[pos:pos + 30]!r}")
        pos = m.end()
        if m.group(2):
            out.append(("nl", "\n"))
        elif m.group(3):
            out.append(("punct", m.group(3)))
        elif m.group(4) is not None:
            out.append(("str", m.group(4)))
        elif m.group(5):
            out.append(("word", m.group(5)))
    return out


class _Hocon:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        while self.i < len(self.toks) and self.toks[self.i][0] == "nl":
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def object(self, end: str) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        while (tok := self.peek()) != ("punct", end) and tok[0] != "eof":
            if tok == ("punct", ","):
                self.take()
                continue
            kind, key = self.take()
            if kind not in ("word", "str"):
                raise ValueError(f"HOCON subset: key expected, got {key!r}")
            if self.peek() in (("punct", "="), ("punct", ":")):
                self.take()
            value = self.value()
            path = key.split(".") if kind == "word" else [key]
            target = obj
            for part in path[:-1]:
                target = target.setdefault(part, {})
            if isinstance(value, dict) and isinstance(target.get(path[-1]), dict):
                target[path[-1]].update(value)  # repeated objects merge
            else:
                target[path[-1]] = value
        self.take()
        return obj

    def value(self) -> Any:
        kind, text = self.take()
        if (kind, text) == ("punct", "{"):
            return self.object("}")
        if (kind, text) == ("punct", "["):
            items = []
            while self.peek() != ("punct", "]"):
                if self.peek() == ("punct", ","):
                    self.take()
                    continue
                items.append(self.value())
            self.take()
            return items
        if kind == "str":
            return text
        if kind == "word":
            return {"true": True, "false": False}.get(text, int(text) if text.isdigit() else text)
        raise ValueError(f"HOCON subset: value expected, got {text!r}")


def _hocon(path: Path = EMQX / "emqx.conf") -> dict[str, Any]:
    return _Hocon(path.read_text()).object("")


def test_hocon_subset_parser_reads_the_forms_used() -> None:
    conf = _Hocon('a.b = 1\na { c = "x" }\nl = [{k = v}, "s"]  # note\nz: true').object("")
    assert conf == {"a": {"b": 1, "c": "x"}, "l": [{"k": "v"}, "s"], "z": True}


def _mosquitto_setting(name: str) -> str:
    text = (REPO_ROOT / "deploy/mosquitto/mosquitto.conf.in").read_text()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return match.group(1)


def test_the_cluster_dispatches_by_publisher_and_finds_its_three_nodes() -> None:
    conf = _hocon()
    assert conf["mqtt"]["shared_subscription_strategy"] == "hash_clientid"
    assert conf["cluster"]["discovery_strategy"] == "static"
    assert conf["cluster"]["static"]["seeds"] == [f"emqx@{n}.ctt" for n in NODES]


def test_sessions_and_queues_are_sized_as_mosquittos() -> None:
    mqtt = _hocon()["mqtt"]
    assert mqtt["session_expiry_interval"] == _mosquitto_setting("persistent_client_expiration")
    assert mqtt["max_mqueue_len"] == int(_mosquitto_setting("max_queued_messages"))
    assert mqtt["max_inflight"] == int(_mosquitto_setting("max_inflight_messages"))
    assert mqtt["mqueue_store_qos0"] is False
    assert mqtt["use_username_as_clientid"] is True


def _listeners() -> dict[str, dict[str, Any]]:
    listeners = _hocon()["listeners"]
    return {f"{kind}.{name}": conf for kind, named in listeners.items() for name, conf in named.items()}


def test_no_anonymous_client_and_certificates_required_on_the_certificate_listener() -> None:
    conf = _hocon()
    cert = _listeners()["ssl.default"]
    assert cert["ssl_options"]["verify"] == "verify_peer"
    assert cert["ssl_options"]["fail_if_no_peer_cert"] is True
    assert conf["zones"][cert["zone"]]["mqtt"]["peer_cert_as_username"] == "cn"
    for name, listener in _listeners().items():
        if listener.get("enable") is False:
            continue
        if name == "ssl.default":  # the TLS handshake authenticates: a CA-signed certificate, CN = username
            assert listener["enable_authn"] is False
            continue
        assert listener.get("enable_authn", True) is True, name
        assert listener.get("authentication") or conf["authentication"], name
        if name.startswith("tcp."):
            assert listener["bind"].startswith("127.0.0.1:"), "plaintext on loopback only"
    assert {n for n, listener in _listeners().items() if listener.get("enable") is not False} == \
        {"tcp.default", "ssl.default", "ssl.secret", "ssl.backend"}


def test_only_the_ingest_listener_keeps_client_ids_and_only_ingest_logs_in_there() -> None:
    conf = _hocon()
    backend = _listeners()["ssl.backend"]
    assert conf["zones"][backend["zone"]]["mqtt"]["use_username_as_clientid"] is False
    assert [a["bootstrap_file"] for a in backend["authentication"]] == ["/ctt/emqx/emqx-backend-users.csv"]
    script = (EMQX / "setup.sh").read_text()
    written = re.findall(r'--emqx-users "\$etc/emqx-backend-users.csv" (.*)', script)
    assert written == ['"ctt-ingest=${CTT_BROKER_PASSWORD}"']
    assert all(z["mqtt"].get("use_username_as_clientid", True) for n, z in conf["zones"].items() if n != "backend")


def test_passwords_are_checked_with_the_hash_provisioning_writes() -> None:
    conf = _hocon()
    authenticators = [*conf["authentication"], *_listeners()["ssl.backend"]["authentication"]]
    for authn in authenticators:
        assert authn["backend"] == "built_in_database" and authn["user_id_type"] == "username"
        assert authn["password_hash_algorithm"] == {"name": "pbkdf2", "mac_fun": "sha512", "iterations": ITERATIONS}
        assert authn["bootstrap_type"] == "hash"
    assert conf["authentication"][0]["bootstrap_file"] == "/ctt/emqx/" + Broker(Path("x"), ca.Pki(Path("y"))) \
        .emqx_users.name
    assert conf["authorization"]["no_match"] == "deny"


# --- ACL: EMQX's acl.conf against Mosquitto's acl ---------------------------------------------------------------

ERL_TOKEN = re.compile(r'\s*(?:%[^\n]*|([{}\[\],.])|"((?:[^"\\]|\\.)*)"|([a-z_][A-Za-z0-9_@]*))')


def _erlang_terms(text: str) -> list[Any]:
    """The terms of a file:consult/1 file, for the subset acl.conf uses: tuples, lists, strings, atoms.
    Tuples become Python tuples, lists lists, strings str, atoms ('atom', name)."""
    toks: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        m = ERL_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"Erlang subset: cannot read {text[pos:pos + 30]!r}")
        pos = m.end()
        if m.group(1):
            toks.append(("p", m.group(1)))
        elif m.group(2) is not None:
            toks.append(("s", m.group(2)))
        elif m.group(3):
            toks.append(("a", m.group(3)))
    terms: list[Any] = []
    i = 0

    def term() -> Any:
        nonlocal i
        kind, text = toks[i]
        i += 1
        if kind == "s":
            return text
        if kind == "a":
            return ("atom", text)
        close = {"{": "}", "[": "]"}[text]
        items = []
        while toks[i] != ("p", close):
            items.append(term())
            if toks[i] == ("p", ","):
                i += 1
        i += 1
        return tuple(items) if close == "}" else items

    while i < len(toks):
        terms.append(term())
        assert toks[i] == ("p", "."), f"term not ended by '.': {toks[i]}"
        i += 1
    return terms


def _words_match(topic: str, flt: str) -> bool:
    """MQTT matching of a topic (or, for subscriptions, a filter taken literally) against a filter: '+' one
    level, '#' the rest; a first level starting with '$' is not matched by a wildcard (both brokers)."""
    t, f = topic.split("/"), flt.split("/")
    if t[0].startswith("$") and f[0] in ("+", "#"):
        return False
    for n, word in enumerate(f):
        if word == "#":
            return True
        if n >= len(t) or (word != "+" and word != t[n]):
            return False
    return len(t) == len(f)


def _real(flt: str) -> str:
    """The filter a $share/<group>/<filter> subscription is authorised on (both brokers)."""
    return flt.split("/", 2)[2] if flt.startswith("$share/") else flt


class EmqxAcl:
    """EMQX's file authorizer: the first rule matching who, action and topic decides; no match denies."""

    def __init__(self, path: Path) -> None:
        self.rules = _erlang_terms(path.read_text())

    def allows(self, user: str, action: str, topic: str) -> bool:
        topic = _real(topic) if action == "subscribe" else topic
        for rule in self.rules:
            if rule == (("atom", "deny"), ("atom", "all")) or rule == (("atom", "allow"), ("atom", "all")):
                return bool(rule[0][1] == "allow")
            perm, who, act, topics = rule
            if self._who(who, user) and act[1] in (action, "all") and any(
                    _words_match(topic, t.replace("${username}", user)) for t in topics):
                return bool(perm[1] == "allow")
        return False

    @staticmethod
    def _who(who: Any, user: str) -> bool:
        if who == ("atom", "all"):
            return True
        if isinstance(who, tuple) and who[0] in (("atom", "username"), ("atom", "user")) and isinstance(who[1], str):
            return bool(who[1] == user)
        raise ValueError(f"acl.conf: who {who!r} is outside the subset this test reads")


class MosquittoAcl:
    """Mosquitto 2.0's acl_file: `pattern` lines for every user (%u = username), `topic` lines for the user
    of the `user` line above them. It acknowledges every SUBSCRIBE and checks read access on each message
    delivered, so what a subscription gives is the topics it matches that the user may read."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[str | None, str, str]] = []  # (user or None for a pattern, access, filter)
        user: str | None = None
        for line in path.read_text().splitlines():
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "user":
                user = words[1]
            elif words[0] == "pattern":
                self.rules.append((None, words[1], words[2]))
            elif words[0] == "topic" and user is not None:
                self.rules.append((user, words[1], words[2]))
            else:
                raise ValueError(f"acl: {line!r} is outside the subset this test reads")

    def allows(self, user: str, action: str, topic: str) -> bool:
        need = {"publish": "write", "receive": "read"}[action]
        for owner, access, flt in self.rules:
            if owner is None:
                flt = flt.replace("%u", user)
            elif owner != user:
                continue
            if access in (need, "readwrite") and _words_match(topic, flt):
                return True
        return False


DEVICE, OTHER = "truck-1", "truck-2"
KINDS = ("pos", "seal", "status", "ack")
# Every topic a message can be published on, for what a subscription would deliver.
TOPICS = [f"ctt/v1/dev/{d}/{k}" for d in (DEVICE, OTHER, "ctt-ingest") for k in KINDS] + \
    ["ctt/v1/alerts/seal_breach", "ctt/v1/alerts/route_deviation", "$SYS/broker/uptime", "other/topic"]
USERS = (DEVICE, OTHER, "ctt-ingest", "ctt-observer", "not-provisioned")
FILTERS = [f"ctt/v1/dev/{DEVICE}/ack", f"ctt/v1/dev/{OTHER}/ack", "ctt/v1/dev/+/ack", "ctt/v1/dev/+/pos",
           "ctt/v1/dev/+/+", "ctt/v1/dev/#", "ctt/v1/#", "#", "+/#", f"ctt/v1/dev/{DEVICE}/pos", "ctt/v1/alerts/#",
           "ctt/v1/alerts/+", "$SYS/#", *(f"$share/ctt-ingest/ctt/v1/dev/+/{k}" for k in KINDS),
           f"$share/g/ctt/v1/dev/{OTHER}/ack", "$share/g/#"]

EMQX_ACL = EmqxAcl(EMQX / "acl.conf")
MOSQUITTO_ACL = MosquittoAcl(REPO_ROOT / "deploy/mosquitto/acl")


def _received(acl: EmqxAcl | MosquittoAcl, user: str, flt: str) -> set[str]:
    """The topics ``user`` gets messages from through a subscription to ``flt``."""
    matching = {t for t in TOPICS if _words_match(t, _real(flt))}
    if isinstance(acl, EmqxAcl):
        return matching if acl.allows(user, "subscribe", flt) else set()
    return {t for t in matching if acl.allows(user, "receive", t)}


@pytest.mark.parametrize("user", USERS)
def test_publishing_is_allowed_and_refused_alike(user: str) -> None:
    for topic in TOPICS:
        assert EMQX_ACL.allows(user, "publish", topic) == MOSQUITTO_ACL.allows(user, "publish", topic), \
            (user, topic)


@pytest.mark.parametrize("user", USERS)
def test_no_subscription_gets_more_on_emqx_than_on_mosquitto(user: str) -> None:
    # EMQX refuses a SUBSCRIBE its rules do not cover where Mosquitto acknowledges it and filters each
    # message: EMQX may give less (a device's ctt/v1/dev/+/ack), never more.
    for flt in FILTERS:
        assert _received(EMQX_ACL, user, flt) <= _received(MOSQUITTO_ACL, user, flt), (user, flt)


@pytest.mark.parametrize(("user", "flt", "topics"), [
    (DEVICE, f"ctt/v1/dev/{DEVICE}/ack", {f"ctt/v1/dev/{DEVICE}/ack"}),
    *(("ctt-ingest", f"$share/ctt-ingest/ctt/v1/dev/+/{k}", {f"ctt/v1/dev/{d}/{k}" for d in (DEVICE, OTHER,
                                                                                           "ctt-ingest")})
      for k in ("pos", "seal", "status")),
    ("ctt-ingest", "ctt/v1/alerts/#", {"ctt/v1/alerts/seal_breach", "ctt/v1/alerts/route_deviation"}),
    ("ctt-observer", "ctt/v1/alerts/#", {"ctt/v1/alerts/seal_breach", "ctt/v1/alerts/route_deviation"}),
])
def test_the_subscriptions_the_system_uses_get_the_same_on_both(user: str, flt: str, topics: set[str]) -> None:
    assert _received(EMQX_ACL, user, flt) == _received(MOSQUITTO_ACL, user, flt) == topics


@pytest.mark.parametrize(("user", "action", "topic"), [
    (DEVICE, "publish", f"ctt/v1/dev/{OTHER}/pos"),  # injecting another device's records
    (DEVICE, "publish", f"ctt/v1/dev/{OTHER}/seal"),
    (DEVICE, "publish", f"ctt/v1/dev/{DEVICE}/ack"),  # forging its own ack
    (DEVICE, "publish", "ctt/v1/alerts/seal_breach"),
    ("ctt-observer", "publish", "ctt/v1/alerts/seal_breach"),
    ("ctt-observer", "publish", f"ctt/v1/dev/{DEVICE}/ack"),
    ("not-provisioned", "publish", f"ctt/v1/dev/{DEVICE}/pos"),
])
def test_attack_publish_is_refused_on_both(user: str, action: str, topic: str) -> None:
    assert not EMQX_ACL.allows(user, action, topic) and not MOSQUITTO_ACL.allows(user, action, topic)


@pytest.mark.parametrize(("user", "flt"), [
    (DEVICE, "ctt/v1/dev/+/pos"),  # reading the fleet's positions
    (DEVICE, "$share/g/ctt/v1/dev/+/pos"),
    (DEVICE, f"ctt/v1/dev/{OTHER}/ack"),
    (DEVICE, "#"),
    (DEVICE, "ctt/v1/alerts/#"),
    ("ctt-observer", "ctt/v1/dev/+/pos"),
    ("ctt-observer", "$share/ctt-ingest/ctt/v1/dev/+/pos"),
])
def test_attack_subscription_receives_nothing_else_on_both(user: str, flt: str) -> None:
    own = {f"ctt/v1/dev/{user}/ack"}  # Mosquitto delivers a device's own ack through any filter matching it
    assert _received(EMQX_ACL, user, flt) == set() and _received(MOSQUITTO_ACL, user, flt) <= own
    assert not EMQX_ACL.allows(user, "subscribe", flt)


def test_backend_accounts_are_the_acls_named_users() -> None:
    named = {r[1][1] for r in EMQX_ACL.rules if len(r) == 4 and r[1][0] == ("atom", "username")}
    assert named == set(SERVICE_ACCOUNTS) == {u for u, _, _ in MOSQUITTO_ACL.rules if u}


# --- provisioning writes EMQX's users -------------------------------------------------------------------------

def _emqx_hash(secret: str, salt: str) -> str:
    """EMQX's check (emqx_passwd, pbkdf2): lowercase hex of PBKDF2-HMAC-SHA512 over the salt text's bytes,
    dk_length 64; the iterations from deploy/emqx/emqx.conf."""
    iterations = _hocon()["authentication"][0]["password_hash_algorithm"]["iterations"]
    return hashlib.pbkdf2_hmac("sha512", secret.encode(), salt.encode(), iterations, 64).hex()


def _users_file(path: Path) -> dict[str, list[str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "user_id,password_hash,salt,is_superuser"  # EMQX's bootstrap_type = hash header
    return {row[0]: row[1:] for row in (line.split(",") for line in lines[1:])}


def _mosquitto_verifies(secret: str, encoded: str) -> bool:
    _, seven, iterations, salt, digest = encoded.split("$")
    return seven == "7" and base64.b64encode(hashlib.pbkdf2_hmac(
        "sha512", secret.encode(), base64.b64decode(salt), int(iterations))).decode() == digest


def test_provisioning_writes_the_same_secret_for_both_brokers_and_revocation_removes_it(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "mosquitto", ca.Pki(tmp_path / "pki"))
    provision(broker, ["truck-7", "truck-8"], "secret")
    users = _users_file(broker.emqx_users)
    assert broker.emqx_users.stat().st_mode & 0o077 == 0
    for device in ("truck-7", "truck-8"):
        secret = broker.secret(device).read_text().strip()
        password_hash, salt, superuser = users[device]
        assert password_hash == _emqx_hash(secret, salt) and superuser == "false"
        assert _mosquitto_verifies(secret, read_password_file(broker.passwd)[device])
        assert _emqx_hash("not-" + secret, salt) != password_hash
    assert users["truck-7"][1] != users["truck-8"][1]  # a salt per user
    provision(broker, ["truck-7"], "secret")  # kept: same secret, same line
    assert _users_file(broker.emqx_users)["truck-7"] == users["truck-7"]
    revoke(broker, "truck-7")
    assert set(_users_file(broker.emqx_users)) == {"truck-8"}
    assert set(read_password_file(broker.passwd)) == {"truck-8"}


def test_certificate_devices_get_no_password(tmp_path: Path) -> None:
    ca.init(ca.Pki(tmp_path / "pki"))
    broker = Broker(tmp_path / "mosquitto", ca.Pki(tmp_path / "pki"))
    provision(broker, ["seal-1"], "certificate")
    assert not broker.emqx_users.exists() or "seal-1" not in _users_file(broker.emqx_users)


def test_the_setup_writes_the_backend_accounts_for_emqx(tmp_path: Path) -> None:
    users = tmp_path / "emqx-users.csv"
    run = [sys.executable, "-m", "ctt.broker_auth", "--emqx-users", str(users), "ctt-observer=observer-secret-0123"]
    first = subprocess.run(run, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    again = subprocess.run(run, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), again.stdout.strip()) == ("changed", "unchanged")
    password_hash, salt, _ = _users_file(users)["ctt-observer"]
    assert password_hash == _emqx_hash("observer-secret-0123", salt)
