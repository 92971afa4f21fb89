"""The shipment report: a PDF an officer attaches to a case file, with the
itinerary, the timeline, a map of the track with the route, the office zones,
the countries and the numbered alerts, the alerts, the seal events and the
officers' actions with their audit hashes. Its figures come from the functions
the API's routes use (``report.data``); ``GET /shipments/{id}/report.pdf``
serves it, and a case stores it as evidence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from tracking_api.auth import Principal
from tracking_api.config import ApiSettings
from tracking_api.i18n import Messages, available
from tracking_api.report import data, pdf
from tracking_api.schemas.errors import invalid


@cache
def _dashboards_dir() -> Path:
    # Where the catalogues are (CTT_DASHBOARDS_DIR): read once, as every API process starts with one.
    return ApiSettings().dashboards_dir


async def shipment_report(conn: AsyncConnection[Any], caller: Principal, shipment_id: int, lang: str = "en",
                          generated_at: datetime | None = None) -> bytes:
    """The report of ``shipment_id`` as ``caller`` may see it (``NotFoundError`` otherwise), labels
    in ``lang`` (any language with a catalogue: ``report.*`` keys); ``generated_at`` defaults to now
    (the only line that changes between two reports of the same data)."""
    codes = [code for code, _ in available(_dashboards_dir())]
    if lang not in codes:
        raise invalid((("query", "lang"), f"lang {lang!r} is not one of {', '.join(codes)}"))
    messages = Messages(_dashboards_dir(), lang)
    gathered = await data.gather(conn, caller, shipment_id)
    # Drawing and laying out take a CPU for a moment: not on the event loop.
    return await asyncio.to_thread(pdf.build, gathered, caller, messages, generated_at or datetime.now(UTC))
