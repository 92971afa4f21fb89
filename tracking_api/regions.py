"""Which regions a shipment touches: its route line or the zone of any office of
its itinerary (departure, transit, destination) intersects the region's polygon(s). This decides which officers see it
(``shipment_regions``, read by ``tracking_api.access``).

Computed in lon/lat degrees, as the geometry is stored: fine for intersection
at the scale of customs districts (a geometry crossing the antimeridian is
not handled). A shipment registered after a region gets it at registration;
a region created later is applied to every shipment not yet closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import shapely
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from shapely.geometry import shape

# A shipment's footprint: its route line and the zones of every office of its itinerary
# (departure, transit, destination: every administration on the way). Callers add a WHERE clause.
FOOTPRINTS = """
SELECT s.id, r.geometry AS route,
       (SELECT json_agg(z.geometry) FROM shipment_offices o JOIN zones z ON z.office_code = o.office_code
        WHERE o.shipment_id = s.id) AS offices
FROM shipments s
JOIN routes r ON r.id = s.route_id
"""
REGIONS = "SELECT code, geometry FROM regions ORDER BY code"
_LINK = """
INSERT INTO shipment_regions (shipment_id, region_code) SELECT unnest(%s::bigint[]), %s ON CONFLICT DO NOTHING
"""


async def regions_touching(conn: AsyncConnection[DictRow], parts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Codes of every region the geometry ``parts`` (GeoJSON dicts) intersects, sorted."""
    rows = await (await conn.execute(REGIONS)).fetchall()
    return RegionIndex([(row["code"], row["geometry"]) for row in rows]).touching(parts)


class RegionIndex:
    """The regions ((code, GeoJSON geometry) pairs) in a spatial index, built once for many shipments."""

    def __init__(self, regions: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self._codes = [code for code, _ in regions]
        self._tree = shapely.STRtree([shape(geometry) for _, geometry in regions])

    def touching(self, parts: Iterable[Mapping[str, Any]]) -> list[str]:
        """Codes of the regions that any of ``parts`` (GeoJSON dicts) intersects, sorted."""
        if not self._codes:
            return []
        # (part index, region index) pairs: each part is tested on its own, no union needed.
        hits = self._tree.query([shape(p) for p in parts], predicate="intersects")
        return sorted({self._codes[int(i)] for i in hits[1]})


async def link_new_region(conn: AsyncConnection[DictRow], code: str, geometry: Mapping[str, Any]) -> list[int]:
    """Add region ``code`` to every shipment not yet closed that it touches; their ids, sorted."""
    region = shape(geometry)
    shapely.prepare(region)
    rows = await (await conn.execute(FOOTPRINTS + "WHERE s.status <> 'closed'")).fetchall()
    ids = sorted(row["id"] for row in rows
                 if any(region.intersects(shape(part)) for part in [row["route"], *(row["offices"] or [])]))
    if ids:
        await conn.execute(_LINK, (ids, code))
    return ids

