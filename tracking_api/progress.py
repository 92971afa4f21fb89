"""Where a shipment is along its route and when it should arrive.

The engine stores the chainage (metres along the route) of the newest fix
inside the corridor; the route's length is its geodesic length (WGS 84). The
ETA assumes the rest of the trip goes at the trip's average so far, rests and
border waits included: for a truck that is the honest estimate, a speedometer
reading is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from pyproj import Geod

_GEOD = Geod(ellps="WGS84")
# Too little trip behind the truck for its average to mean anything.
MIN_CHAINAGE_M = 1_000.0
MIN_ELAPSED = timedelta(minutes=10)

# Routes never change once defined (no update operation): their lengths are cached for the process.
_lengths: dict[int, float] = {}


async def route_lengths(conn: AsyncConnection[Any], route_ids: set[int]) -> dict[int, float]:
    """Geodesic length (m) of each route in ``route_ids``."""
    missing = [r for r in route_ids if r not in _lengths]
    if missing:
        cur = await conn.execute("SELECT id, geometry FROM routes WHERE id = ANY(%s)", (missing,))
        for row in await cur.fetchall():
            lons, lats = zip(*(c[:2] for c in row["geometry"]["coordinates"]), strict=True)
            _lengths[row["id"]] = float(_GEOD.line_length(lons, lats))
    return {r: _lengths[r] for r in route_ids if r in _lengths}


def estimate(length_m: float | None, chainage_m: float | None, departed_at: datetime | None,
             last_fix_at: datetime | None) -> dict[str, Any]:
    """``remaining_m`` (m), ``average_speed_kmh`` and ``eta`` (null when unknown)."""
    if length_m is None or chainage_m is None:
        return {"remaining_m": None, "average_speed_kmh": None, "eta": None}
    remaining = max(length_m - chainage_m, 0.0)
    if departed_at is None or last_fix_at is None or chainage_m < MIN_CHAINAGE_M \
            or last_fix_at - departed_at < MIN_ELAPSED:
        return {"remaining_m": remaining, "average_speed_kmh": None, "eta": None}
    speed_ms = chainage_m / (last_fix_at - departed_at).total_seconds()
    return {"remaining_m": remaining, "average_speed_kmh": speed_ms * 3.6,
            "eta": last_fix_at + timedelta(seconds=remaining / speed_ms)}
