"""Signature checks at the batch boundary (docs/protocol.md, "Signed records").

A device with a key in ``device_keys`` has every signed record verified; one that
must sign has its unsigned fixes and seal events refused too (statuses may go
unsigned: they carry no seq and decide no alert). A device without a key is a v1
device: a ``sig`` it sends is not checked. Keys are loaded set-based, for the
devices of a batch not in the cache, and cached for ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.batch import Batch
from ingest.refusals import Refusal
from protocol.records import Fix, SealEvent, Status
from protocol.signing import verify
from protocol.topics import RecordKind

_LOAD = "SELECT device_id, key, must_sign FROM device_keys WHERE device_id = ANY(%s)"


@dataclass(frozen=True)
class DeviceKey:
    key: bytes
    must_sign: bool


class KeyCache:
    """Devices' keys as ingest last read them, each for ``ttl_s`` (a device provisioned to sign
    is held to it within that time)."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, DeviceKey | None]] = {}

    def keys(self, cur: psycopg.Cursor[Any], device_ids: Iterable[str]) -> dict[str, DeviceKey]:
        """The keys of ``device_ids`` that have one; one query for those not cached."""
        ids = list(device_ids)
        now = self._clock()
        stale = [d for d in ids if d not in self._entries or self._entries[d][0] <= now]
        if stale:
            found = {d: DeviceKey(bytes(k), must) for d, k, must in cur.execute(_LOAD, (stale,)).fetchall()}
            for device_id in stale:
                self._entries[device_id] = (now + self._ttl_s, found.get(device_id))
        out: dict[str, DeviceKey] = {}
        for device_id in ids:
            entry = self._entries[device_id][1]
            if entry is not None:
                out[device_id] = entry
        return out


def check(batch: Batch, keys: dict[str, DeviceKey]) -> list[Refusal]:
    """The records of ``batch`` whose signature is missing where required, or wrong."""
    if not keys:
        return []  # the common path: no device of the batch signs
    out: list[Refusal] = []
    tables: tuple[tuple[RecordKind, list[Any], list[Any]], ...] = (
        ("pos", batch.fixes, batch.fix_records), ("seal", batch.seals, batch.seal_records),
        ("status", batch.statuses, batch.status_records))
    for kind, rows, records in tables:
        for index, record in enumerate(records):
            device_id = rows[index][0]
            entry = keys.get(device_id)
            reason = None if entry is None else refusal(entry, device_id, kind, record)
            if reason is not None:
                out.append(Refusal(kind, index, reason, "signature"))
    return out


def refusal(entry: DeviceKey, device_id: str, kind: RecordKind, record: Fix | SealEvent | Status) -> str | None:
    """Why ``record`` is refused, or None when its signature is acceptable."""
    where = f"{kind} seq {getattr(record, 'seq', '-')} ts {record.ts}"
    if record.sig is None:
        if entry.must_sign and kind != "status":
            return f"unsigned record: {where}; device {device_id} must sign its records"
        return None
    if not verify(entry.key, device_id, kind, record):
        return f"signature does not verify: {where}; forged or altered record of device {device_id}"
    return None
