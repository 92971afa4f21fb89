"""Object-level rules: which shipments a caller may see and act on.

Admins, operators and integrators see every shipment; an officer only those
touching their region (``shipment_regions``, filled when a shipment is
registered). The rule is written once (``REGION_SCOPED``) and applied twice:
``visible(caller)`` is a condition for a WHERE clause, ``may_see`` the same
test in Python for the live stream, which holds the shipments' regions in memory.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal, get_args

from psycopg import sql

from tracking_api.auth import REGIONAL, Principal, Role

Capability = Literal["define_geography", "define_regions", "register_shipments", "move_shipments",
                     "act_on_alerts"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
# Who may change what; reading is open to every role (officers: their region only).
GRANTS: dict[Capability, tuple[Role, ...]] = {
    "define_geography": ("admin", "operator"),
    "define_regions": ("admin",),
    "register_shipments": ("admin", "operator", "integrator"),
    "move_shipments": ("admin", "operator", "officer"),
    "act_on_alerts": ("admin", "operator", "officer", "supervisor"),
}


def capabilities(role: Role) -> list[Capability]:
    """What ``role`` may change (for clients that offer only what is allowed)."""
    return [c for c in CAPABILITIES if role in GRANTS[c]]

# The roles that see only the shipments touching their own region; the others see every shipment.
REGION_SCOPED: frozenset[Role] = REGIONAL

SHIPMENT_ID = sql.SQL("s.id")
_IN_REGION = sql.SQL(
    "EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = {} AND sr.region_code = {})")


def visible(caller: Principal, shipment_id: sql.Composable = SHIPMENT_ID) -> sql.Composable:
    """True for the shipments (whose id is the column ``shipment_id``) that ``caller`` may see."""
    if caller.role not in REGION_SCOPED:
        return sql.SQL("true")
    return _IN_REGION.format(shipment_id, sql.Literal(caller.region))


def may_see(caller: Principal, shipment_regions: Collection[str]) -> bool:
    """``visible`` in Python: True if ``caller`` may see a shipment touching ``shipment_regions``
    (region codes)."""
    return caller.role not in REGION_SCOPED or caller.region in shipment_regions
