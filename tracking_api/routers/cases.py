"""``/cases``: opened by a confirmed outcome (``POST /alerts/{id}/resolve``), holding the
shipment's evidence and the officers' entries, read-only once closed. The roles that act on
alerts read and work them (officers and supervisors in their region); integrators do not."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from tracking_api.access import GRANTS
from tracking_api.auth import Principal
from tracking_api.deps import Conn, require
from tracking_api.pagination import Paging
from tracking_api.schemas.alerts import one_of
from tracking_api.schemas.cases import (
    CASE_STATUSES,
    CaseDetail,
    CasePage,
    CaseStatus,
    CloseIn,
    Entry,
    EntryIn,
)
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, validation
from tracking_api.schemas.geography import REGION_CODE
from tracking_api.services import cases

router = APIRouter(prefix="/cases", tags=["cases"])

_BIGINT_MAX = 2**63 - 1
Worker = Annotated[Principal, Depends(require(*GRANTS["act_on_alerts"]))]
CaseId = Annotated[int, Path(ge=1, le=_BIGINT_MAX, description="Case id")]
_READ = {**UNAUTHORIZED, **forbidden(*GRANTS["act_on_alerts"]),
         **error(404, "No such case, or one the caller may not see", "case 3 not found")}
_WRITE = {**_READ, **error(409, "The case is closed: read-only", "case 3 is closed: read-only"),
          **validation("The body is invalid", ["body", "text"], "Field required")}
_EXTENSIONS = {"application/json": "json", "application/geo+json": "geojson", "application/pdf": "pdf"}


def _case(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "shipment": row["shipment_id"], "alert_ids": row["alert_ids"] or []}


@router.get("", summary="List cases, newest first", response_model=CasePage,
            responses={**_READ, **validation("A filter or cursor is invalid", ["query", "status"],
                                             "Value error, status 'done' is not one of open, closed")})
async def list_cases(
    conn: Conn, caller: Worker, page: Paging,
    status_: Annotated[CaseStatus | None, one_of("status", CASE_STATUSES),
                       Query(alias="status", description="open or closed")] = None,
    region: Annotated[str | None, Query(pattern=REGION_CODE, description="Only cases of shipments touching "
                                                                         "this region")] = None,
    alert: Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Only the case holding this alert")] = None,
    shipment: Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Only this shipment's cases")] = None,
) -> CasePage:
    """Cases matching every filter, in pages (follow `next_cursor`). An officer or supervisor
    sees the cases of shipments touching their region only."""
    rows = await cases.listing(conn, caller, page.fetch, page.below, status_, region, alert, shipment)
    items = rows[:page.limit]
    return CasePage.model_validate({"items": [_case(r) for r in items],
                                    "next_cursor": page.next_cursor([r["id"] for r in items], len(rows))})


@router.get("/{case_id}", summary="One case with its alerts, entries and evidence list", response_model=CaseDetail,
            responses=_READ)
async def get_case(conn: Conn, caller: Worker, case_id: CaseId) -> CaseDetail:
    """The case, the alerts it holds (the one alert object), the officers' entries in order and
    the evidence taken (kind, size, SHA-256; the content at `/cases/{id}/evidence/{eid}`)."""
    return CaseDetail.model_validate(_case(await cases.detail(conn, caller, case_id)))


@router.post("/{case_id}/entries", summary="Add an officer's entry to an open case", response_model=Entry,
             status_code=status.HTTP_201_CREATED, responses=_WRITE)
async def add_entry(conn: Conn, caller: Worker, case_id: CaseId, body: EntryIn) -> Entry:
    """Appends the entry (author and role from the token), audited `case.entry_added`. A closed
    case is a 409: read-only."""
    return Entry.model_validate(await cases.add_entry(conn, caller, case_id, body.text))


@router.post("/{case_id}/close", summary="Close a case with its verdict (then read-only)", response_model=CaseDetail,
             responses={**_WRITE, **validation("The body is invalid", ["body", "outcome"], "Field required")})
async def close_case(conn: Conn, caller: Worker, case_id: CaseId, body: CloseIn) -> CaseDetail:
    """Closes the case with an outcome and a summary, audited `case.closed`. From then on
    nothing about it changes (409 here; the database refuses it too)."""
    await cases.close(conn, caller, case_id, body.outcome, body.summary)
    return CaseDetail.model_validate(_case(await cases.detail(conn, caller, case_id)))


@router.get("/{case_id}/evidence/{evidence_id}", summary="One evidence item's content",
            response_class=Response, responses={
                **_READ, 200: {"description": "The exact bytes stored; X-Content-SHA256 is their hash (hex)",
                               "content": {"application/json": {"example": [
                                               {"at": "2026-11-23T06:40:02Z", "kind": "departed", "office": "KEMBA"}]},
                                           "application/geo+json": {"example": {
                                               "type": "Feature", "properties": {"device": "trk-0042"},
                                               "geometry": {"type": "LineString",
                                                            "coordinates": [[39.66, -4.05], [39.60, -3.98]]}}},
                                           "application/pdf": {"schema": {"type": "string", "format": "binary"},
                                                               "example": "%PDF-1.7 ..."}}}})
async def get_evidence(conn: Conn, caller: Worker, case_id: CaseId,
                       evidence_id: Annotated[int, Path(ge=1, le=_BIGINT_MAX)]) -> Response:
    """The content as taken, byte for byte: its SHA-256 is the one listed and audited."""
    item = await cases.evidence(conn, caller, case_id, evidence_id)
    name = f"case-{case_id}-{item['kind']}-{evidence_id}.{_EXTENSIONS.get(item['media_type'], 'bin')}"
    return Response(bytes(item["content"]), media_type=item["media_type"],
                    headers={"X-Content-SHA256": item["sha256"],
                             "Content-Disposition": f'attachment; filename="{name}"'})
