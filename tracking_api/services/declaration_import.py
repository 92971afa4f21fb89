"""Bulk import of transit declarations (JSON lines): ``ctt declarations import`` and
``POST /declarations/import``.

A line is a declaration (``POST /declarations``'s body) or an amendment (``PUT
/declarations/{mrn}``'s body: ``{"version": n, "document": {...}}``, the MRN being the
document's). Each line runs in a savepoint of its own: a refused line leaves nothing
behind, the lines around it are kept. Lines are committed in chunks (one commit per
``CHUNK`` lines, not per line: the fsync is most of a line's cost) and reported once
committed, so a line reported created is durable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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
    async for report in import_stream(conn, caller, lines):
        reported(report)


async def import_stream(conn: AsyncConnection[DictRow], caller: Principal,
                        lines: Iterable[str]) -> AsyncIterator[LineReport]:
    """``import_lines`` as an iterator of the reports, a chunk at a time once committed."""
    for chunk in _chunks(lines):
        async with conn.transaction():
            reports = await _chunk(conn, caller, chunk)
        for report in reports:
            yield report


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


@dataclass(frozen=True)
class _Line:
    number: int
    mrn: str | None
    parsed: TransitDeclaration | AmendmentIn | LineReport  # a report: refused before any database work


async def _chunk(conn: AsyncConnection[DictRow], caller: Principal, chunk: list[tuple[int, str]]) -> list[LineReport]:
    """The chunk's lines in file order: runs of new declarations (distinct MRNs) set-based,
    amendments one at a time between them."""
    reports: dict[int, LineReport] = {}
    run: list[_Line] = []
    for line in (_parse(number, text) for number, text in chunk):
        if isinstance(line.parsed, LineReport):
            reports[line.number] = line.parsed
        elif isinstance(line.parsed, TransitDeclaration) and line.mrn not in {r.mrn for r in run}:
            run.append(line)
        else:
            reports |= await _run(conn, caller, run)
            run = [line] if isinstance(line.parsed, TransitDeclaration) else []
            if isinstance(line.parsed, AmendmentIn):
                reports[line.number] = await _amend(conn, caller, line.number, line.parsed)
    reports |= await _run(conn, caller, run)
    return [reports[number] for number, _text in chunk]


def _parse(number: int, text: str) -> _Line:
    mrn: str | None = None
    try:
        if len(text) > MAX_LINE_BYTES:
            raise _TooLongError(f"line is {len(text)} characters, at most {MAX_LINE_BYTES}")
        data = json.loads(text)
        mrn = _mrn(data)
        if isinstance(data, dict) and "document" in data:
            return _Line(number, mrn, AmendmentIn.model_validate(data))
        return _Line(number, mrn, TransitDeclaration.model_validate(data))
    except ValidationError as exc:
        return _Line(number, mrn, LineReport(number, mrn, "refused", _fields(exc.errors())))
    except _TooLongError as exc:
        return _Line(number, mrn, LineReport(number, mrn, "refused", str(exc)))
    except json.JSONDecodeError as exc:
        return _Line(number, mrn, LineReport(number, mrn, "refused", f"not JSON: {exc}"))


async def _run(conn: AsyncConnection[DictRow], caller: Principal, run: list[_Line]) -> dict[int, LineReport]:
    """New declarations set-based, in a savepoint; if a concurrent registration wins a race
    in the middle (the savepoint rolled back), one line at a time instead."""
    docs = [line.parsed for line in run if isinstance(line.parsed, TransitDeclaration)]
    if not docs:
        return {}
    results: list[service.Result | Exception]
    try:
        async with conn.transaction():
            results = list(await service.declare_many(conn, caller, docs))
    except (errors.DataError, errors.IntegrityError):
        results = []
        for doc in docs:
            try:
                results.append(await service.declare(conn, caller, doc, at=()))
            except (RequestValidationError, ServiceError) as exc:
                results.append(exc)
            except (errors.DataError, errors.IntegrityError) as exc:
                results.append(ServiceError(f"refused by the database: {exc.diag.message_primary}"))
    return {line.number: _report(line, result) for line, result in zip(run, results, strict=True)}


async def _amend(conn: AsyncConnection[DictRow], caller: Principal, number: int, line: AmendmentIn) -> LineReport:
    mrn = line.document.functionalReferenceId
    try:
        result = await service.amend(conn, caller, mrn, line.version, line.document, at=("document",))
    except (RequestValidationError, ServiceError) as exc:
        return _report(_Line(number, mrn, line), exc)
    except (errors.DataError, errors.IntegrityError) as exc:  # a check of the database's (rolled back)
        return LineReport(number, mrn, "refused", f"refused by the database: {exc.diag.message_primary}")
    return _report(_Line(number, mrn, line), result)


def _report(line: _Line, result: service.Result | Exception) -> LineReport:
    if isinstance(result, RequestValidationError):
        return LineReport(line.number, line.mrn, "refused", _fields(result.errors()))
    if isinstance(result, Exception):
        return LineReport(line.number, line.mrn, "refused", str(result))
    outcome: Outcome = "amended" if result.outcome == "amended" else (
        "unchanged" if result.outcome == "unchanged" else "created")
    return LineReport(line.number, result.mrn, outcome, None, result.version, result.shipment_id)


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
