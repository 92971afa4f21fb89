"""Which shipment a seal event belongs to: the shipment its device is bound to
(``shipment_seals``), else the one that declares its seal number
(``shipment_seal_numbers``), of shipments not yet closed.

Looked up per batch, one query for the batch's devices and seal numbers: seal
events are few next to fixes, and a seal is armed while its shipment is still
``registered``, which the engine's registry (in-transit shipments only) does not hold.
An event that belongs to no shipment is dead-lettered (``unclaimed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.batch import Batch
from ingest.refusals import Refusal

# Active here means not closed: an arrived shipment's seals are still opened at the
# destination (after release) and those events must be kept and checked.
_CLAIMS = """
SELECT 0 AS how, ss.seal_id, s.id, s.status FROM shipment_seals ss JOIN shipments s ON s.id = ss.shipment_id
WHERE ss.seal_id = ANY(%(devices)s) AND s.status NOT IN ('closed', 'cancelled')
UNION ALL
SELECT 1, n.seal_number, s.id, s.status FROM shipment_seal_numbers n JOIN shipments s ON s.id = n.shipment_id
WHERE n.seal_number = ANY(%(numbers)s) AND s.status NOT IN ('closed', 'cancelled')
"""
# A shipment without itinerary rows (registered before schema 022 or by a v1 body)
# has its two offices from the shipment's own columns.
_SHIPMENTS = """
SELECT s.id, s.status, s.tracker_id, (extract(epoch FROM s.departed_at) * 1000)::int8,
       (extract(epoch FROM s.released_at) * 1000)::int8,
       coalesce((SELECT array_agg(n.seal_number) FROM shipment_seal_numbers n WHERE n.shipment_id = s.id), '{}'),
       coalesce(
           (SELECT jsonb_agg(jsonb_build_array(o.position, o.role, o.office_code, z.id) ORDER BY o.position)
            FROM shipment_offices o LEFT JOIN zones z ON z.office_code = o.office_code WHERE o.shipment_id = s.id),
           jsonb_build_array(
               jsonb_build_array(0, 'departure', s.office_of_departure,
                                 (SELECT id FROM zones WHERE office_code = s.office_of_departure)),
               jsonb_build_array(1, 'destination', s.office_of_destination,
                                 (SELECT id FROM zones WHERE office_code = s.office_of_destination))))
FROM shipments s WHERE s.id = ANY(%s)
"""
# Of several claims, the shipment under way wins, then the one about to leave.
_STATUS_ORDER = {"in_transit": 0, "registered": 1, "arrived": 2}


@dataclass(frozen=True)
class Office:
    """One office of an itinerary; ``zone_id`` None when its zone is missing."""

    position: int
    role: str
    code: str
    zone_id: int | None


@dataclass(frozen=True)
class SealShipment:
    """What the seal rules need of a shipment. Times are epoch milliseconds (fix time)."""

    id: int
    status: str
    tracker_id: str
    departed_ms: int | None
    released_ms: int | None
    declared: frozenset[str]  # declared seal numbers; empty for a v1 shipment
    offices: tuple[Office, ...]  # the itinerary, departure first

    @property
    def departure(self) -> Office:
        return self.offices[0]

    @property
    def destination(self) -> Office:
        return self.offices[-1]


@dataclass(frozen=True)
class Claims:
    """The shipment of each device (by binding) and of each seal number (by declaration)."""

    by_device: dict[str, int]
    by_number: dict[str, int]

    def shipment_of(self, device_id: str, seal_number: str) -> int | None:
        """The device's shipment, else the seal number's, else None."""
        found = self.by_device.get(device_id)
        return found if found is not None else self.by_number.get(seal_number)


def claims(cur: psycopg.Cursor[Any], devices: Iterable[str], numbers: Iterable[str]) -> Claims:
    """Who claims these devices and seal numbers (shipments not closed), in one query."""
    rows = cur.execute(_CLAIMS, {"devices": sorted(set(devices)), "numbers": sorted(set(numbers))}).fetchall()
    best: list[dict[str, tuple[int, int]]] = [{}, {}]
    for how, key, shipment_id, status in rows:
        rank = (_STATUS_ORDER.get(status, 3), -shipment_id)  # the newest registration among equals
        held = best[how].get(key)
        if held is None or rank < held:
            best[how][key] = rank
    return Claims({k: -r[1] for k, r in best[0].items()}, {k: -r[1] for k, r in best[1].items()})


def shipments(cur: psycopg.Cursor[Any], ids: Iterable[int]) -> dict[int, SealShipment]:
    """The claimed shipments with their itineraries and declared seal numbers."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    out = {}
    for sid, status, tracker, departed, released, declared, offices in cur.execute(_SHIPMENTS, (wanted,)):
        out[sid] = SealShipment(sid, status, tracker, departed, released, frozenset(declared),
                                tuple(Office(int(p), str(r), str(c), z) for p, r, c, z in offices))
    return out


def unclaimed(cur: psycopg.Cursor[Any], batch: Batch) -> list[Refusal]:
    """Seal events whose device is bound to no shipment and whose seal number none declares."""
    if not batch.seals:
        return []
    found = claims(cur, (row[0] for row in batch.seals), (row[3] for row in batch.seals))
    return [Refusal("seal", i, f"seal number {seal_id} is not on any active shipment", "seal number", tamper=False)
            for i, (device_id, _seq, _ts, seal_id, *_rest) in enumerate(batch.seals)
            if found.shipment_of(device_id, seal_id) is None]
