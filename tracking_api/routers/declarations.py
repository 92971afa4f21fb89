"""Transit declarations from a declaration-processing system: created (idempotent by MRN),
amended by version, cancelled before departure, read with their versions.

Registrars (admin, operator, integrator) change them; whoever may see the shipment reads
them (an officer: one touching their region, any other is 404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, cast

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import StreamingResponse

from tracking_api.access import GRANTS
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, Pool, require
from tracking_api.schemas.declarations import (
    AmendmentIn,
    CancelIn,
    Declaration,
    DeclarationVersions,
    TransitDeclaration,
)
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, validation
from tracking_api.schemas.shipments import REFERENCE
from tracking_api.services import declarations as service
from tracking_api.services.declaration_import import import_stream
from tracking_api.services.errors import ServiceError

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow

router = APIRouter(tags=["declarations"])

REGISTRARS = GRANTS["register_shipments"]
Registrar = Annotated[Principal, Depends(require(*REGISTRARS))]
MrnPath = Annotated[str, Path(description="The declaration's MRN (functionalReferenceId)", pattern=REFERENCE)]
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")


class UnsupportedMediaError(ServiceError):
    status_code = 415


_NOT_FOUND = error(404, "No such declaration, or its shipment is not in the officer's region",
                   "declaration 26KE1000000000099 does not exist")
_BAD = validation("Bad document: every bad field named (form, limits, ISO 6346 check digit, HS code, unknown route "
                  "or office, a seal listed twice, control characters, unknown field)",
                  ["body", "transportEquipment", 0, "id"],
                  "Value error, container CSQU3054384: check digit 4 is wrong, expected 3")


@router.post(
    "/declarations", status_code=status.HTTP_201_CREATED, response_model=Declaration,
    summary="Send a transit declaration (registers its shipment)",
    responses={200: {"model": Declaration, "description": "The same document was already sent: nothing changed"},
               **UNAUTHORIZED, **forbidden(*REGISTRARS), **_BAD,
               **error(409, "The MRN exists with other content (amend it with PUT), or a device, seal number "
                            "or reference is taken",
                       "declaration 26KE1000000000042 exists (version 1, active) with other content: to amend "
                       "it, PUT /declarations/26KE1000000000042 with {\"version\": 1, \"document\": ...}")})
async def create_declaration(body: TransitDeclaration, conn: Conn, caller: Registrar, request: Request,
                             response: Response) -> Declaration:
    """Registers the declaration's shipment through the same checks as ``POST /shipments``
    (201). Idempotent by MRN: the same document again (same content, whatever the key order)
    answers 200 with the existing declaration and shipment, never a second one."""
    result = await service.declare(conn, caller, body)
    if result.outcome == "unchanged":
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = str(request.url_for("get_declaration", mrn=result.mrn))
    return await service.get(conn, caller, result.mrn)


_IMPORT_EXAMPLE = ('{"line":1,"mrn":"26KE1000000000042","outcome":"created","reason":null,"version":1,'
                   '"shipment_id":42}\n{"line":2,"mrn":"26KE1000000000043","outcome":"refused","reason":'
                   '"transportEquipment.0.id: Value error, container CSQU3054384: check digit 4 is wrong, expected 3",'
                   '"version":null,"shipment_id":null}\n')


@router.post(
    "/declarations/import", summary="Import declarations in bulk (JSON lines in, a report line per line out)",
    response_class=StreamingResponse,
    responses={200: {"description": "One JSON line per non-blank input line, in order, each sent once its chunk "
                                    "(200 lines) is committed: line, mrn, outcome (created, amended, unchanged, "
                                    "refused), reason naming every bad field, version, shipment_id",
                     "content": {"application/x-ndjson": {"example": _IMPORT_EXAMPLE}}},
               **UNAUTHORIZED, **forbidden(*REGISTRARS),
               **error(415, "The body is not JSON lines (Content-Type application/x-ndjson or application/jsonl)",
                       "Content-Type text/plain is not JSON lines")},
    openapi_extra={"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {
        "type": "string", "description": "One declaration per line, or {\"version\": n, \"document\": ...} to "
                                         "amend one; at most CTT_MAX_BODY_BYTES in all (split larger files)"}}}}})
async def import_declarations(request: Request, pool: Pool, caller: Registrar) -> StreamingResponse:
    """As ``ctt declarations import``: each line in a savepoint of its own (nothing of a refused
    line applied), new declarations set-based, amendments in file order between them."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in JSON_LINES:
        raise UnsupportedMediaError(f"Content-Type {kind or 'none'} is not JSON lines")
    lines = (await request.body()).decode("utf-8", errors="replace").splitlines()

    async def reports() -> AsyncIterator[str]:
        async with pool.connection() as conn:  # the pool makes dict-row connections (main.lifespan)
            async for report in import_stream(cast("AsyncConnection[DictRow]", conn), caller, lines):
                yield report.json() + "\n"

    return StreamingResponse(reports(), media_type="application/x-ndjson")


@router.put(
    "/declarations/{mrn}", response_model=Declaration, summary="Amend a declaration (by version)",
    responses={**UNAUTHORIZED, **forbidden(*REGISTRARS), **_NOT_FOUND, **_BAD,
               **error(409, "Stale version (the current one is named), cancelled declaration, shipment arrived or "
                            "closed, or tracker/e-seals/route/departure changed after departure",
                       "declaration 26KE1000000000042 is at version 3, not 2: read it again and amend that "
                       "version")})
async def amend_declaration(mrn: MrnPath, body: AmendmentIn, conn: Conn, caller: Registrar) -> Declaration:
    """Replaces the document (``version`` must be the current one; the new one is version + 1)
    and the shipment's itinerary, seal numbers, containers, goods, deadline, vehicle and, before
    departure, tracker, e-seals and route; the engine reloads it and the risk is re-assessed.
    The current document again changes nothing."""
    await service.amend(conn, caller, mrn, body.version, body.document)
    return await service.get(conn, caller, mrn)


@router.post(
    "/declarations/{mrn}/cancel", response_model=Declaration, summary="Cancel a declaration before departure",
    responses={**UNAUTHORIZED, **forbidden(*REGISTRARS), **_NOT_FOUND,
               **error(409, "Already cancelled, or the shipment has departed",
                       "cannot cancel shipment 7: its status is 'in_transit', only a 'registered' shipment can "
                       "be cancelled"),
               **validation("Bad body: reason missing, empty, over 1000 characters", ["body", "reason"],
                            "Field required")})
async def cancel_declaration(mrn: MrnPath, body: CancelIn, conn: Conn, caller: Registrar) -> Declaration:
    """The shipment becomes ``cancelled``: its tracker, e-seals and seal numbers are free again."""
    await service.cancel(conn, caller, mrn, body.reason)
    return await service.get(conn, caller, mrn)


@router.get("/declarations/{mrn}", response_model=Declaration, summary="One declaration, current version",
            responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_declaration(mrn: MrnPath, conn: Conn, caller: Caller) -> Declaration:
    return await service.get(conn, caller, mrn)


@router.get("/declarations/{mrn}/versions", response_model=DeclarationVersions,
            summary="Every version of a declaration", responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_versions(mrn: MrnPath, conn: Conn, caller: Caller) -> DeclarationVersions:
    return await service.versions(conn, caller, mrn)
