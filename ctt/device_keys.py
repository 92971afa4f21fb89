"""Signing keys of devices (docs/protocol.md, "Signed records"): 32 random bytes
per device, issued once at provisioning and kept in ``device_keys`` for ingest,
with whether the device must sign. E-seals must by default; trackers may."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from protocol.signing import KEY_BYTES
from protocol.topics import is_device_id

if TYPE_CHECKING:
    from firmware_sim.devices import Device

DeviceKind = Literal["eseal", "tracker"]

_ISSUE = """
INSERT INTO device_keys (device_id, key, must_sign, kind)
SELECT * FROM unnest(%s::text[], %s::bytea[], %s::bool[], %s::text[])
ON CONFLICT (device_id) DO UPDATE SET must_sign = excluded.must_sign,
    kind = coalesce(excluded.kind, device_keys.kind), updated_at = now()
RETURNING device_id, key, xmax = 0
"""
_RELAX = "UPDATE device_keys SET must_sign = false, updated_at = now() WHERE device_id = ANY(%s)"
_KEYS = "SELECT device_id, key FROM device_keys WHERE device_id = ANY(%s)"
# What the backend has from each device: its counter resumes above it.
_USED_SEQ = """
SELECT d.device_id, greatest(d.acked_seq, f.seq, e.seq) FROM devices d
LEFT JOIN LATERAL (SELECT max(seq) AS seq FROM fixes WHERE device_id = d.device_id) f ON true
LEFT JOIN LATERAL (SELECT max(seq) AS seq FROM seal_events WHERE device_id = d.device_id) e ON true
WHERE d.device_id = ANY(%s)
"""


class DeviceKeyError(ValueError):
    """A device id or option combination provisioning cannot act on."""


def must_sign(kind: DeviceKind | None, sign: bool | None) -> bool | None:
    """Whether devices must sign: ``sign`` when given, else required for e-seals and not for
    trackers; None (no key issued, nothing changed) when neither is given."""
    if sign is not None:
        return sign
    return None if kind is None else kind == "eseal"


def provision_keys(conn: psycopg.Connection[Any], device_ids: Sequence[str], kind: DeviceKind | None,
                   sign: bool | None) -> dict[str, bytes]:
    """Give ``device_ids`` a signing key (kept when they have one) and set whether they must
    sign; return the keys issued now, to hand to the devices once. ``--no-sign`` alone
    only lifts the obligation of devices that have a key. Commits."""
    for device_id in device_ids:
        if not is_device_id(device_id):
            raise DeviceKeyError(f"{device_id!r} is not a device id (protocol.topics.is_device_id)")
    required = must_sign(kind, sign)
    issued: dict[str, bytes] = {}
    with conn.transaction():
        if required is None:
            return issued
        if kind is None and not required:
            conn.execute(_RELAX, (list(device_ids),))
            return issued
        ids = sorted(set(device_ids))
        fresh = [os.urandom(KEY_BYTES) for _ in ids]
        rows = conn.execute(_ISSUE, (ids, fresh, [required] * len(ids), [kind] * len(ids))).fetchall()
        issued = {device_id: bytes(key) for device_id, key, inserted in rows if inserted}
    return issued


def keys_of(conn: psycopg.Connection[Any], device_ids: Sequence[str]) -> dict[str, bytes]:
    """The stored keys of ``device_ids`` (the factory's copy: the simulator's devices read theirs)."""
    return {d: bytes(k) for d, k in conn.execute(_KEYS, (list(device_ids),)).fetchall()}


def provision_simulated(conn: psycopg.Connection[Any], devices: Sequence[Device]) -> None:
    """The simulator's factory step: each device gets its signing key (e-seals must sign,
    trackers may) and resumes its seq counter above what the backend has from it, as a real
    device keeps both in flash (a re-run of a scenario is not a replay)."""
    ids = [d.device_id for d in devices]
    provision_keys(conn, [d.device_id for d in devices if d.firmware.kind == "seal"], "eseal", None)
    provision_keys(conn, [d.device_id for d in devices if d.firmware.kind == "pos"], "tracker", None)
    keys = keys_of(conn, ids)
    used = dict(conn.execute(_USED_SEQ, (ids,)).fetchall())
    for device in devices:
        device.firmware.key = keys.get(device.device_id)
        device.firmware.next_seq = max(device.firmware.next_seq, used.get(device.device_id, -1) + 1)
