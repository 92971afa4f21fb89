"""Officers' and the risk unit's decisions on a shipment in transit: an inspection
authorised at an office of its itinerary (one seal opening there is then recorded,
not raised), and an override of its risk level. Each is audited and, for the
inspection, written to the shipment's timeline, in the transaction of the change."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg.types.json import Jsonb

from protocol.alerts import RiskLevel
from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.shipments import Inspection, Shipment
from tracking_api.services.errors import ConflictError
from tracking_api.services.shipments import Conn, checked_time, get, locked, record_event

INSPECTABLE = ("registered", "in_transit", "arrived")
# An itinerary office is a zone with an office code, so of kind office or border_post (schema/022):
# being on the itinerary is the whole check.
_OFFICE = "SELECT position FROM shipment_offices WHERE shipment_id = %s AND office_code = %s"
_ITINERARY = "SELECT array_agg(office_code ORDER BY position) AS codes FROM shipment_offices WHERE shipment_id = %s"
_INSERT = """
INSERT INTO inspections (shipment_id, office_code, authorised_at, authorised_by, note) VALUES (%s, %s, %s, %s, %s)
RETURNING id, shipment_id, office_code, authorised_at, authorised_by, note, used_at
"""
_SET_OVERRIDE = """
UPDATE shipments SET risk = risk || jsonb_build_object('override', %s::jsonb), risk_level = %s WHERE id = %s
"""
# Without an override the computed level applies; a shipment never scored stays medium (v1 behaviour).
_CLEAR_OVERRIDE = """
UPDATE shipments SET risk = risk - 'override', risk_level = coalesce(risk->>'computed', 'medium') WHERE id = %s
"""


async def authorise_inspection(conn: Conn, caller: Principal, shipment_id: int, office_code: str,
                               note: str | None = None, at: datetime | None = None) -> Inspection:
    """An inspection at ``office_code`` (an office of the shipment's itinerary: its zone is an
    office or a border post), authorised at ``at`` (default now; a scenario registers past
    ones); 422 naming office_code otherwise or ``at`` in the future, ``ConflictError`` once
    the shipment is closed."""
    async with conn.transaction():
        row = await locked(conn, caller, shipment_id)
        if row["status"] not in INSPECTABLE:
            raise ConflictError(f"cannot authorise an inspection of shipment {shipment_id}: its status is "
                                f"{row['status']!r}")
        office = await (await conn.execute(_OFFICE, (shipment_id, office_code))).fetchone()
        if office is None:
            codes = await (await conn.execute(_ITINERARY, (shipment_id,))).fetchone()
            itinerary = ", ".join((codes or {}).get("codes") or [])
            raise invalid((("body", "office_code"),
                           f"office_code {office_code!r} is not on the itinerary of shipment {shipment_id} "
                           f"({itinerary})"))
        when = checked_time(row, at, None)
        created = await (await conn.execute(_INSERT, (shipment_id, office_code, when, caller.subject,
                                                      note))).fetchone()
        assert created is not None
        await record_event(conn, shipment_id, "inspection_authorised", office_code, created["authorised_at"],
                           {"inspection": created["id"], "by": caller.subject} | ({"note": note} if note else {}))
        await audit.record(conn, caller, "shipment.inspection_authorised", "shipment", shipment_id,
                           {"reference": row["reference"], "inspection": created["id"], "office_code": office_code,
                            "note": note})
        return Inspection.model_validate(created)


# LEAD: the risk helper's services/risk.override does this (and re-scores): on merge the router
# calls `await risk.override(conn, caller, shipment_id, level, reason)` then `get`, and this goes.
async def override_risk(conn: Conn, caller: Principal, shipment_id: int, level: RiskLevel | None,
                        reason: str) -> Shipment:
    """Impose ``level`` on the shipment (stored as ``risk.override`` with who, when and why), or
    with None clear the override so that the computed level applies again. Audited as
    ``shipment.risk_overridden`` with the level before and after."""
    async with conn.transaction():
        row = await locked(conn, caller, shipment_id)
        if level is None:
            await conn.execute(_CLEAR_OVERRIDE, (shipment_id,))
            # LEAD: once tracking_api/services/risk.py is merged: `await risk.assess(conn, shipment_id)`
        else:
            override = {"level": level, "reason": reason, "by": caller.subject,
                        "at": row["now"].astimezone(UTC).isoformat()}
            await conn.execute(_SET_OVERRIDE, (Jsonb(override), level, shipment_id))
        after = await get(conn, caller, shipment_id)
        await audit.record(conn, caller, "shipment.risk_overridden", "shipment", shipment_id,
                           {"reference": row["reference"], "level": level, "reason": reason,
                            "from": row["risk_level"], "to": after.risk.level})
        return after
