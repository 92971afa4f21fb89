"""Object-level rules: which shipments a caller may see and act on.

Admins, operators and integrators see every shipment; an officer only those
touching their region (``shipment_regions``, filled when a shipment is
registered). ``visible(caller)`` is a condition for a WHERE clause.
"""

from __future__ import annotations

from psycopg import sql

from tracking_api.auth import Principal

SHIPMENT_ID = sql.SQL("s.id")
_IN_REGION = sql.SQL(
    "EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = {} AND sr.region_code = {})")


def visible(caller: Principal, shipment_id: sql.Composable = SHIPMENT_ID) -> sql.Composable:
    """True for the shipments (whose id is the column ``shipment_id``) that ``caller`` may see."""
    if caller.role != "officer":
        return sql.SQL("true")
    return _IN_REGION.format(shipment_id, sql.Literal(caller.region))
