"""The shipment report: a PDF an officer attaches to a case file, with the
itinerary, the timeline, a map of the track with the route, the office zones,
the countries and the numbered alerts, the alerts, the seal events and the
officers' actions with their audit hashes. Its figures come from the functions
the API's routes use (``report.data``); ``GET /shipments/{id}/report.pdf``
serves it, and a case stores it as evidence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from tracking_api.auth import Principal
from tracking_api.report import data, pdf
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.exports import LANGS, Lang


async def shipment_report(conn: AsyncConnection[Any], caller: Principal, shipment_id: int, lang: str = "en",
                          generated_at: datetime | None = None) -> bytes:
    """The report of ``shipment_id`` as ``caller`` may see it (``NotFoundError`` otherwise), labels
    in ``lang`` (en, fr); ``generated_at`` defaults to now (the only line that changes between two
    reports of the same data)."""
    if lang not in LANGS:
        raise invalid((("query", "lang"), f"lang {lang!r} is not one of {', '.join(LANGS)}"))
    chosen: Lang = "fr" if lang == "fr" else "en"
    gathered = await data.gather(conn, caller, shipment_id)
    # Drawing and laying out take a CPU for a moment: not on the event loop.
    return await asyncio.to_thread(pdf.build, gathered, caller, chosen, generated_at or datetime.now(UTC))
