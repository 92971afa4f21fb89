"""Object-level rules: which shipments a caller may see and act on.

Admins, operators and integrators see every shipment; an officer only those
touching their region (``shipment_regions``, filled when a shipment is
registered). ``visible(caller)`` is a condition for a WHERE clause.
"""

from __future__ import annotations

from typing import Literal, get_args

from psycopg import sql

from tracking_api.auth import Principal, Role

Capability = Literal["define_geography", "define_regions", "register_shipments", "move_shipments",
                     "act_on_alerts"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
# Who may change what; reading is open to every role (officers: their region only).
GRANTS: dict[Capability, tuple[Role, ...]] = {
    "define_geography": ("admin", "operator"),
    "define_regions": ("admin",),
    "register_shipments": ("admin", "operator", "integrator"),
    "move_shipments": ("admin", "operator", "officer"),
    "act_on_alerts": ("admin", "operator", "officer"),
}


def capabilities(role: Role) -> list[Capability]:
    """What ``role`` may change (for clients that offer only what is allowed)."""
    return [c for c in CAPABILITIES if role in GRANTS[c]]

SHIPMENT_ID = sql.SQL("s.id")
_IN_REGION = sql.SQL(
    "EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = {} AND sr.region_code = {})")


def visible(caller: Principal, shipment_id: sql.Composable = SHIPMENT_ID) -> sql.Composable:
    """True for the shipments (whose id is the column ``shipment_id``) that ``caller`` may see."""
    if caller.role != "officer":
        return sql.SQL("true")
    return _IN_REGION.format(shipment_id, sql.Literal(caller.region))
