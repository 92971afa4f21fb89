"""The bench-only broker account that publishes positions for many trackers. It exists only
in the bench's own broker (``bench/broker.py``), never in ``deploy/mosquitto/acl`` nor in
the demo's or the tests' broker.

Why not each tracker's own credentials: 20,000 trackers at one fix every 10 s is 2,000
msg/s from 20,000 device ids, so 20,000 TLS connections; a broker of this project may hold
20,000 open files in all (``ulimit -n``) and Python would spend the run in handshakes. A few
hundred device connections would give a few hundred distinct trackers, not the thousands
whose per-tracker cost in ingest the bench is there to measure. Ingest knows a device by
its topic only (the broker's ACL is what ties a topic to a credential), so one account
allowed to write every tracker's position topic gives ingest and PostgreSQL the real
fleet's load. What it leaves out is the broker's per-connection cost (20,000 TLS sessions
and their keep-alives): the broker's CPU figure is a lower bound. The account connects
over TLS with a secret (the secrets listener, as a secret device does), so the broker
still decrypts every message. Seal breaches come from seal devices with their own
certificates, as in production.

Guards: written only into a broker directory that is not one of the project's instances;
refused when a device holds the account's name; the secret is random per run, the
broker's file keeps only its hash and the load generator gets it in its environment; the
ACL grants writing positions only (no seal or status topic, no reading).
"""

from __future__ import annotations

from pathlib import Path

from ctt.broker_auth import new_secret, upsert_accounts
from protocol.topics import PREFIX

ACCOUNT = "ctt-bench-fleet"
PASSWORD_ENV = "CTT_BENCH_FLEET_PASSWORD"
PROJECT_BROKERS = ("mosquitto", "mosquitto-test")  # $CTT_STATE_DIR/<name>: the demo's and the tests'
ACL_BLOCK = f"\n# bench/account.py: the scale bench's load generator\nuser {ACCOUNT}\ntopic write {PREFIX}+/pos\n"


class BenchAccountError(RuntimeError):
    """The bench account may not be added to this broker; the message says why."""


def add_account(broker_dir: Path, devices_dir: Path) -> str:
    """Give the broker in ``broker_dir`` the account (its ``acl`` and ``passwd`` files); return
    its fresh secret. ``devices_dir`` holds the credentials of the devices that may connect."""
    if broker_dir.name in PROJECT_BROKERS:
        raise BenchAccountError(f"the bench account is for the bench's own broker only, not {broker_dir}")
    if (devices_dir / ACCOUNT).exists():
        raise BenchAccountError(f"a device named {ACCOUNT!r} has credentials in {devices_dir}: "
                                "it would gain the bench account's rights")
    password = new_secret()
    acl = broker_dir / "acl"
    acl.write_text(acl.read_text() + ACL_BLOCK)
    upsert_accounts(broker_dir / "passwd", {ACCOUNT: password})
    return password
