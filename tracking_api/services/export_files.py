"""The files of an export, written a chunk of records at a time: CSV (RFC 4180)
and GeoJSON (RFC 7946, a FeatureCollection streamed feature by feature).

CSV cells: times RFC 3339 in UTC, booleans ``true``/``false``, null empty, a
list of plain values joined by ``;``, anything nested as JSON. A text cell that
a spreadsheet would run as a formula (it starts with ``= + - @``, a tab or a
carriage return) gets a leading ``'``: device ids, notes and references come
from devices and people, and an exported file is opened by others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import msgspec

from tracking_api.services.exports import Kind, rfc3339

# What spreadsheets read as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard(text: str) -> str:
    """``text`` as a cell no spreadsheet runs: a leading ``'`` before a formula start."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return guard(";".join(map(str, value)))
    if isinstance(value, dict | list):
        return guard(msgspec.json.encode(value).decode())
    return guard(str(value))


async def csv_file(columns: Sequence[str], records: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    """A header row, then one row per record; one piece per chunk."""
    yield _rows([list(columns)])
    async for chunk in records:
        yield _rows([[cell(r.get(c)) for c in columns] for r in chunk])


def _rows(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)  # RFC 4180: CRLF, quotes doubled
    return out.getvalue().encode()


def feature(kind: Kind, record: dict[str, Any]) -> dict[str, Any]:
    """The GeoJSON Feature of one record: alerts and fixes a Point (null where an alert has no
    position), shipments no geometry (the whole shipment object in its properties)."""
    if kind == "shipments":
        return {"type": "Feature", "id": record["id"], "geometry": None, "properties": record}
    point = None if record.get("lon") is None or record.get("lat") is None else {
        "type": "Point", "coordinates": [record["lon"], record["lat"]]}
    identity = {"id": record["id"]} if kind == "alerts" else {}
    return {"type": "Feature", **identity, "geometry": point, "properties": record}


async def geojson_file(kind: Kind, records: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    """``{"type":"FeatureCollection","features":[...]}`` written one chunk of features at a time."""
    yield b'{"type":"FeatureCollection","features":['
    first = True
    async for chunk in records:
        if not chunk:
            continue
        body = b",".join(msgspec.json.encode(feature(kind, r)) for r in chunk)
        yield body if first else b"," + body
        first = False
    yield b"]}\n"
