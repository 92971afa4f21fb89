"""Cases: what a confirmed outcome opens (``POST /alerts/{id}/resolve``), with the shipment's
evidence frozen at that moment, the officers' entries, and a closing verdict. Read-only once
closed: the API answers 409, and the database's trigger (schema/030) refuses any change even
from the API's role.

Every evidence item is stored as the exact bytes served back, with their SHA-256 (the table
checks the hash); every step is audited in the step's own transaction.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from psycopg import sql
from psycopg.types.json import Jsonb

from protocol.alerts import alert
from tracking_api import audit
from tracking_api.access import visible
from tracking_api.auth import Principal
from tracking_api.services import shipments
from tracking_api.services.errors import ConflictError, NotFoundError
from tracking_api.services.shipments import Conn

EvidenceKind = Literal["track", "timeline", "seal_events", "alerts", "audit", "report"]
JSON = "application/json"
GEOJSON = "application/geo+json"
PDF = "application/pdf"
# A track longer than this is cut (newest dropped) in the evidence: a month at 15 s per fix.
TRACK_MAX_FIXES = 200_000

# The PDF report (tracking_api.report, issue 14's H3): stored when that module exists.
ReportMaker = Callable[[Conn, Principal, int, str], Awaitable[bytes]]


def report_maker() -> ReportMaker | None:
    """``tracking_api.report.shipment_report`` if it is installed, else None (no report evidence)."""
    try:
        module = importlib.import_module("tracking_api.report")
    except ImportError:
        return None
    maker: ReportMaker | None = getattr(module, "shipment_report", None)
    return maker


_OPEN = """
INSERT INTO cases (shipment_id, opened_by) VALUES (%s, %s)
ON CONFLICT (shipment_id) WHERE status = 'open' DO NOTHING RETURNING id
"""
_OPEN_CASE = "SELECT id FROM cases WHERE shipment_id = %s AND status = 'open' FOR UPDATE"
_ADD_ALERT = "INSERT INTO case_alerts (case_id, alert_id, added_by) VALUES (%s, %s, %s)"
_ADD_EVIDENCE = """
INSERT INTO case_evidence (case_id, kind, media_type, content, sha256, taken_by) VALUES (%s, %s, %s, %s, %s, %s)
RETURNING id
"""
_ADD_ENTRY = """
INSERT INTO case_entries (case_id, author, role, text, detail) VALUES (%s, %s, %s, %s, %s) RETURNING id, at
"""
_TRACK = """
SELECT json_build_object('type', 'Feature', 'properties', json_build_object(
           'shipment', s.id, 'reference', s.reference, 'device', s.tracker_id,
           'times', coalesce(json_agg(f.ts ORDER BY f.ts, f.seq), '[]')),
       'geometry', json_build_object('type', 'LineString',
           'coordinates', coalesce(json_agg(json_build_array(f.lon, f.lat) ORDER BY f.ts, f.seq), '[]')))::text
FROM shipments s
LEFT JOIN LATERAL (
    SELECT ts, seq, lon, lat FROM fixes
    WHERE device_id = s.tracker_id AND s.departed_at IS NOT NULL AND ts >= s.departed_at
      AND ts < coalesce(s.arrived_at, s.closed_at, 'infinity')
    ORDER BY ts, seq LIMIT %s
) f ON true
WHERE s.id = %s
GROUP BY s.id
"""
_SEAL_EVENTS = """
SELECT e.device_id, e.seq, e.ts, e.seal_id, e.event, e.lat, e.lon, e.bat, e.received_at
FROM seal_events e JOIN shipments s ON s.id = %s
WHERE e.seal_id IN (SELECT seal_id FROM shipment_seals WHERE shipment_id = s.id)
  AND e.ts >= least(s.created_at, s.departed_at)
ORDER BY e.ts, e.device_id, e.seq
"""
_ALERTS = "SELECT * FROM alert_view WHERE shipment = %s ORDER BY id"
# The officers' own entries (not the engine's 'system' ones) on the shipment and its alerts, with
# their place in the hash chain: anyone can check them against GET /audit/checkpoints.
_AUDIT = """
SELECT id, at, actor, role, action, object_type, object_id, detail, encode(hash, 'hex') AS hash
FROM audit_log
WHERE role <> 'system'
  AND ((object_type = 'shipment' AND object_id = %(shipment)s::text)
       OR (object_type = 'alert' AND object_id IN (SELECT id::text FROM alerts WHERE shipment_id = %(shipment)s)))
ORDER BY id
"""


@dataclass(frozen=True)
class Evidence:
    kind: EvidenceKind
    media_type: str
    content: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.content).digest()


def _json(value: object) -> bytes:
    # Sorted keys: the same facts always give the same bytes, hence the same hash.
    return msgspec.json.encode(value, order="sorted")


async def snapshot(conn: Conn, caller: Principal, shipment_id: int) -> list[Evidence]:
    """The shipment's evidence as of now: its track (GeoJSON), timeline, seal events, alerts,
    the officers' audit entries and, when ``tracking_api.report`` exists, the PDF report."""
    track = await (await conn.execute(_TRACK, (TRACK_MAX_FIXES, shipment_id))).fetchone()
    assert track is not None
    timeline = await shipments.timeline(conn, caller, shipment_id)
    seals = await (await conn.execute(_SEAL_EVENTS, (shipment_id,))).fetchall()
    alerts = await (await conn.execute(_ALERTS, (shipment_id,))).fetchall()
    entries = await (await conn.execute(_AUDIT, {"shipment": shipment_id})).fetchall()
    found = [Evidence("track", GEOJSON, str(next(iter(track.values()))).encode()),
             Evidence("timeline", JSON, _json(timeline.model_dump(mode="json")["items"])),
             Evidence("seal_events", JSON, _json(seals)),
             Evidence("alerts", JSON, _json([alert(r) for r in alerts])),
             Evidence("audit", JSON, _json(entries))]
    maker = report_maker()
    if maker is not None:
        found.append(Evidence("report", PDF, await maker(conn, caller, shipment_id, "en")))
    return found


async def _store(conn: Conn, caller: Principal, case_id: int, items: list[Evidence]) -> dict[str, str]:
    """The evidence stored; its hashes by kind (hex), for the audit entry."""
    hashes: dict[str, str] = {}
    for item in items:
        await conn.execute(_ADD_EVIDENCE, (case_id, item.kind, item.media_type, item.content, item.sha256,
                                           caller.subject))
        hashes[item.kind] = item.sha256.hex()
    return hashes


async def open_or_join(conn: Conn, caller: Principal, alert_id: int, shipment_id: int, outcome: str) -> int:
    """Opens a case on the shipment for a confirmed alert, or adds the alert to the shipment's
    open case, with a fresh evidence snapshot; the case id. Runs in the caller's transaction."""
    row = await (await conn.execute(_OPEN, (shipment_id, caller.subject))).fetchone()
    opened = row is not None
    if row is None:  # the shipment already has an open case (the unique index keeps it to one)
        row = await (await conn.execute(_OPEN_CASE, (shipment_id,))).fetchone()
        assert row is not None, f"shipment {shipment_id} has neither a new nor an open case"
    case_id = int(row["id"])
    await conn.execute(_ADD_ALERT, (case_id, alert_id, caller.subject))
    hashes = await _store(conn, caller, case_id, await snapshot(conn, caller, shipment_id))
    detail = {"shipment": shipment_id, "alert": alert_id, "outcome": outcome, "evidence": hashes}
    if opened:
        await audit.record(conn, caller, "case.opened", "case", case_id, detail)
    else:
        text = f"alert {alert_id} added ({outcome}); evidence taken again"
        entry = await (await conn.execute(_ADD_ENTRY, (case_id, caller.subject, caller.role, text,
                                                       Jsonb(detail)))).fetchone()
        assert entry is not None
        await audit.record(conn, caller, "case.entry_added", "case", case_id, {**detail, "entry": entry["id"]})
    return case_id


# Reading and the officers' steps.

# The ids of a case's alerts, for every row that describes a case.
_ALERT_IDS = "(SELECT array_agg(ca.alert_id ORDER BY ca.alert_id) FROM case_alerts ca WHERE ca.case_id = c.id)"
_CASE = sql.SQL(f"""
SELECT c.*, s.reference, {_ALERT_IDS} AS alert_ids
FROM cases c JOIN shipments s ON s.id = c.shipment_id WHERE c.id = %s AND {{}}
""")
_CASE_ALERTS = ("SELECT a.* FROM case_alerts ca JOIN alert_view a ON a.id = ca.alert_id WHERE ca.case_id = %s "
                "ORDER BY a.id")
_CASE_ENTRIES = "SELECT id, at, author, role, text, detail FROM case_entries WHERE case_id = %s ORDER BY id"
_CASE_EVIDENCE = """
SELECT id, kind, media_type, length(content) AS bytes, encode(sha256, 'hex') AS sha256, taken_at, taken_by
FROM case_evidence WHERE case_id = %s ORDER BY id
"""
_EVIDENCE_CONTENT = "SELECT kind, media_type, content, encode(sha256, 'hex') AS sha256 FROM case_evidence " \
                    "WHERE case_id = %s AND id = %s"
_CLOSE = """
UPDATE cases SET status = 'closed', closed_at = now(), closed_by = %s, outcome = %s, summary = %s WHERE id = %s
"""
_LIST = sql.SQL(f"""
SELECT c.*, s.reference, {_ALERT_IDS} AS alert_ids
FROM cases c JOIN shipments s ON s.id = c.shipment_id
WHERE {{}} ORDER BY c.id DESC LIMIT %s
""")


async def get(conn: Conn, caller: Principal, case_id: int, lock: bool = False) -> dict[str, Any]:
    """The case row (404 if it does not exist or the caller may not see its shipment)."""
    query = _CASE.format(visible(caller, sql.SQL("c.shipment_id")))
    if lock:
        query = sql.SQL("{} FOR UPDATE OF c").format(query)
    row = await (await conn.execute(query, (case_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"case {case_id} not found")
    return dict(row)


async def detail(conn: Conn, caller: Principal, case_id: int) -> dict[str, Any]:
    """The case with its alerts (the one alert object), entries and evidence list (hashes)."""
    case = await get(conn, caller, case_id)
    alerts = await (await conn.execute(_CASE_ALERTS, (case_id,))).fetchall()
    entries = await (await conn.execute(_CASE_ENTRIES, (case_id,))).fetchall()
    evidence = await (await conn.execute(_CASE_EVIDENCE, (case_id,))).fetchall()
    return {**case, "alerts": [msgspec.to_builtins(alert(a)) for a in alerts], "entries": entries,
            "evidence": evidence}


async def listing(conn: Conn, caller: Principal, limit: int, below: int | None, status: str | None,
                  region: str | None, alert_id: int | None, shipment_id: int | None = None) -> list[dict[str, Any]]:
    """Cases newest first, ``limit`` of them with ids below ``below``."""
    conditions: list[sql.Composable] = [visible(caller, sql.SQL("c.shipment_id"))]
    params: list[Any] = []
    for column, value in (("c.status", status), ("c.shipment_id", shipment_id)):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.SQL(column)))
            params.append(value)
    if region is not None:
        conditions.append(sql.SQL("EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = c.shipment_id "
                                  "AND sr.region_code = %s)"))
        params.append(region)
    if alert_id is not None:
        conditions.append(sql.SQL("EXISTS (SELECT 1 FROM case_alerts ca WHERE ca.case_id = c.id AND ca.alert_id = %s)"))
        params.append(alert_id)
    if below is not None:
        conditions.append(sql.SQL("c.id < %s"))
        params.append(below)
    query = _LIST.format(sql.SQL(" AND ").join(conditions))
    return [dict(r) for r in await (await conn.execute(query, [*params, limit])).fetchall()]


def writable(case: dict[str, Any]) -> None:
    if case["status"] == "closed":
        raise ConflictError(f"case {case['id']} is closed: read-only")


async def add_entry(conn: Conn, caller: Principal, case_id: int, text: str) -> dict[str, Any]:
    """An officer's entry on an open case (409 once closed), audited ``case.entry_added``."""
    async with conn.transaction():
        writable(await get(conn, caller, case_id, lock=True))
        row = await (await conn.execute(_ADD_ENTRY, (case_id, caller.subject, caller.role, text, Jsonb({})))).fetchone()
        assert row is not None
        await audit.record(conn, caller, "case.entry_added", "case", case_id, {"entry": row["id"], "text": text})
    return {"id": row["id"], "at": row["at"], "author": caller.subject, "role": caller.role, "text": text,
            "detail": {}}


async def close(conn: Conn, caller: Principal, case_id: int, outcome: str, summary: str) -> None:
    """Closes an open case with its verdict (409 if already closed), audited ``case.closed``."""
    async with conn.transaction():
        writable(await get(conn, caller, case_id, lock=True))
        await conn.execute(_CLOSE, (caller.subject, outcome, summary, case_id))
        await audit.record(conn, caller, "case.closed", "case", case_id, {"outcome": outcome, "summary": summary})


async def evidence(conn: Conn, caller: Principal, case_id: int, evidence_id: int) -> dict[str, Any]:
    """One evidence item's bytes, media type and hash (404 as the case, or no such item)."""
    await get(conn, caller, case_id)
    row = await (await conn.execute(_EVIDENCE_CONTENT, (case_id, evidence_id))).fetchone()
    if row is None:
        raise NotFoundError(f"case {case_id} has no evidence {evidence_id}")
    return dict(row)
