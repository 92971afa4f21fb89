"""Bulk import of transit declarations (JSON lines), through the API's services.

A line is a declaration (``POST /declarations``'s body) or an amendment (``PUT
/declarations/{mrn}``'s body: ``{"version": n, "document": {...}}``, the MRN being the
document's). Each line runs in a savepoint of its own: a refused line leaves nothing
behind, the lines around it are kept. Lines are committed in chunks (one commit per
``CHUNK`` lines, not per line: the fsync is most of a line's cost) and reported once
committed, so a line reported created is durable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow
from pydantic import ValidationError

from tracking_api.auth import Principal
from tracking_api.schemas.declarations import AmendmentIn, TransitDeclaration
from tracking_api.services import declarations as service
from tracking_api.services.errors import ServiceError

Outcome = Literal["created", "amended", "unchanged", "refused"]
CHUNK = 200  # lines per commit
MAX_LINE_BYTES = 1024 * 1024  # as the API's CTT_MAX_BODY_BYTES default


@dataclass(frozen=True)
class LineReport:
    """What became of one line (1-based), and why when it was refused."""

    line: int
    mrn: str | None
    outcome: Outcome
    reason: str | None = None
    version: int | None = None
    shipment_id: int | None = None

    def json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


async def import_lines(conn: AsyncConnection[DictRow], caller: Principal, lines: Iterable[str],
                       reported: Callable[[LineReport], None]) -> None:
    """Apply each non-blank line of ``lines`` as ``caller``; ``reported`` is called for each,
    in order, once its chunk is committed."""
    for chunk in _chunks(lines):
        async with conn.transaction():
            reports = [await _one(conn, caller, number, text) for number, text in chunk]
        for report in reports:
            reported(report)


def _chunks(lines: Iterable[str]) -> Iterator[list[tuple[int, str]]]:
    """The non-blank lines with their 1-based numbers, ``CHUNK`` at a time."""
    chunk: list[tuple[int, str]] = []
    for number, text in enumerate(lines, start=1):
        if text.strip():
            chunk.append((number, text))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _one(conn: AsyncConnection[DictRow], caller: Principal, number: int, text: str) -> LineReport:
    """One line, in a savepoint (the service's own transaction, nested in the chunk's)."""
    mrn: str | None = None
    try:
        if len(text) > MAX_LINE_BYTES:
            raise _TooLongError(f"line is {len(text)} characters, at most {MAX_LINE_BYTES}")
        data = json.loads(text)
        mrn = _mrn(data)
        if isinstance(data, dict) and "document" in data:
            amendment = AmendmentIn.model_validate(data)
            result = await service.amend(conn, caller, amendment.document.functionalReferenceId,
                                         amendment.version, amendment.document, at=("document",))
        else:
            result = await service.declare(conn, caller, TransitDeclaration.model_validate(data), at=())
    except (ValidationError, RequestValidationError) as exc:
        return LineReport(number, mrn, "refused", _fields(exc.errors()))
    except (ServiceError, _TooLongError) as exc:
        return LineReport(number, mrn, "refused", str(exc))
    except json.JSONDecodeError as exc:
        return LineReport(number, mrn, "refused", f"not JSON: {exc}")
    except (errors.DataError, errors.IntegrityError) as exc:  # a check of the database's (rolled back)
        return LineReport(number, mrn, "refused", f"refused by the database: {exc.diag.message_primary}")
    outcome: Outcome = "unchanged" if result.outcome == "unchanged" else (
        "created" if result.outcome == "created" else "amended")
    return LineReport(number, result.mrn, outcome, None, result.version, result.shipment_id)


class _TooLongError(ValueError):
    pass


def _mrn(data: Any) -> str | None:
    """The MRN a line names, if it names one (for the report of a line refused later)."""
    if isinstance(data, dict):
        document = data.get("document", data)
        if isinstance(document, dict) and isinstance(document.get("functionalReferenceId"), str):
            return str(document["functionalReferenceId"])[:40]
    return None


def _fields(issues: Iterable[Any]) -> str:
    """Every bad field as ``path: message``, ``; ``-separated (a 422's ``loc`` without "body")."""
    parts = []
    for issue in issues:
        loc = [str(p) for p in issue["loc"] if p != "body"]
        parts.append(f"{'.'.join(loc) or '(line)'}: {issue['msg']}")
    return "; ".join(parts)
