"""An officer's inspection authorised at an office of a shipment's itinerary: one
seal opening there is then recorded, not raised. Audited and written to the
shipment's timeline in the transaction of the change. (A risk override is
``tracking_api.services.risk.override``.)"""

from __future__ import annotations

from datetime import datetime

from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.shipments import Inspection
from tracking_api.services.errors import ConflictError
from tracking_api.services.shipments import Conn, checked_time, locked, record_event

INSPECTABLE = ("registered", "in_transit", "arrived")
# An itinerary office is a zone with an office code, so of kind office or border_post (schema/022):
# being on the itinerary is the whole check.
_OFFICE = "SELECT position FROM shipment_offices WHERE shipment_id = %s AND office_code = %s"
_ITINERARY = "SELECT array_agg(office_code ORDER BY position) AS codes FROM shipment_offices WHERE shipment_id = %s"
_INSERT = """
INSERT INTO inspections (shipment_id, office_code, authorised_at, authorised_by, note) VALUES (%s, %s, %s, %s, %s)
RETURNING id, shipment_id, office_code, authorised_at, authorised_by, note, used_at
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
