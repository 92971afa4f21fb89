"""Records refused after parsing (a missing or wrong signature, a replay): out of the
batch's rows into its dead letters with the reason, and noted for ``device_tamper``.
Their seqs still count for the device's ack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.batch import Batch
from ingest.messages import refused_record
from protocol.topics import RecordKind

# Where each kind's received time is in its row (batch.py's column order).
_RECEIVED = {"pos": 9, "seal": 8, "status": 6}


@dataclass(frozen=True)
class Refusal:
    kind: RecordKind
    index: int  # row of the batch's fixes, seals or statuses
    reason: str
    check: str  # "signature", "replay" or "seal number": part of the dead letter's digest
    # A refusal that may be an attack on a watched device (device_tamper); an unknown
    # seal number is not: its device serves no shipment.
    tamper: bool = True


def refuse(batch: Batch, refusals: list[Refusal]) -> None:
    """Move the refused rows of ``batch`` to its dead letters (one call per check)."""
    if not refusals:
        return
    tables: dict[str, tuple[list[Any], list[Any]]] = {
        "pos": (batch.fixes, batch.fix_records), "seal": (batch.seals, batch.seal_records),
        "status": (batch.statuses, batch.status_records)}
    dropped: dict[str, set[int]] = {"pos": set(), "seal": set(), "status": set()}
    for r in refusals:
        rows, records = tables[r.kind]
        row, record = rows[r.index], records[r.index]
        device_id, received_ms = str(row[0]), int(row[_RECEIVED[r.kind]])
        batch.rejects.append((refused_record(device_id, r.kind, record, r.reason, r.check), received_ms))
        if r.tamper:
            batch.tampered.append((device_id, record.ts, r.reason))
        dropped[r.kind].add(r.index)
    batch.drop(dropped["pos"], dropped["seal"], dropped["status"])
