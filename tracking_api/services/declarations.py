"""Transit declarations: created (registering their shipment through the one registration
path), amended by version, cancelled; each kept as a version and audited in the change's
transaction.

Idempotent by MRN: the same document again (same canonical SHA-256) is ``unchanged`` and
answers the existing shipment; the same MRN with other content is a ``ConflictError``
telling to amend. The API's routes and ``ctt declarations import`` both come here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.schemas.declarations import (
    Declaration,
    DeclarationVersion,
    DeclarationVersions,
    TransitDeclaration,
    canonical,
    issues,
    to_shipment,
)
from tracking_api.schemas.errors import invalid
from tracking_api.services import shipments
from tracking_api.services.errors import ConflictError, NotFoundError

Conn = AsyncConnection[DictRow]
Outcome = Literal["created", "amended", "unchanged", "cancelled"]
Loc = tuple[str | int, ...]
T = TypeVar("T")
Refused = shipments.Refused

# Two requests for one MRN at once: the second waits, then sees the first's row.
_LOCK = "SELECT pg_advisory_xact_lock(7710028, hashtext(%s))"
_LOCK_MANY = "SELECT pg_advisory_xact_lock(7710028, hashtext(m)) FROM unnest(%s::text[]) m ORDER BY m"
_ROW = "SELECT * FROM declarations WHERE mrn = %s"
_ROWS = "SELECT * FROM declarations WHERE mrn = ANY(%s)"
_INSERT = """
INSERT INTO declarations (mrn, shipment_id, version, document, document_sha256, created_by, updated_by)
VALUES (%s, %s, 1, %s, %s, %s, %s)
"""
_UPDATE = """
UPDATE declarations SET version = %s, status = %s, document = %s, document_sha256 = %s, updated_at = now(),
                        updated_by = %s
WHERE mrn = %s
"""
_VERSION = """
INSERT INTO declaration_versions (mrn, version, document, sha256, by, change, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
_VERSIONS = "SELECT * FROM declaration_versions WHERE mrn = %s ORDER BY version"
# Where a field of the shipment (``ShipmentIn``, whose checks run on the declaration) is in
# the declaration; an index is kept where it means the same item.
_FIELDS: dict[str, tuple[Loc, bool]] = {
    "reference": (("functionalReferenceId",), False), "route_id": (("monitoring", "routeId"), False),
    "tracker_id": (("monitoring", "trackerId"), False), "seal_ids": (("monitoring", "sealIds"), True),
    "containers": (("transportEquipment",), False), "seals": (("transportEquipment",), False),
    "office_of_departure": (("officeOfDeparture",), False), "office_of_destination": (("officeOfDestination",), False),
    "offices_of_transit": (("officesOfTransit",), True), "deadline": (("timeLimit",), False),
    "vehicle": (("borderTransportMeans", "identificationId"), False), "operator": (("declarant", "name"), False),
    "goods": (("goodsItems",), False)}


@dataclass(frozen=True)
class Result:
    """What a declaration request did, and to which shipment."""

    outcome: Outcome
    mrn: str
    version: int
    shipment_id: int


async def declare(conn: Conn, caller: Principal, doc: TransitDeclaration, at: Loc = ("body",)) -> Result:
    """Creates the declaration and registers its shipment (``created``), or finds the same
    document already there (``unchanged``). ``ConflictError`` for the same MRN with other
    content; 422 naming every bad field (locations under ``at``)."""
    result = (await declare_many(conn, caller, [doc], at))[0]
    if isinstance(result, Exception):
        raise result
    return result


async def declare_many(conn: Conn, caller: Principal, docs: Sequence[TransitDeclaration],
                       at: Loc = ()) -> list[Result | Refused]:
    """``declare`` for each of ``docs`` (distinct MRNs), set-based through
    ``shipments.register_many``: for each, its result or what ``declare`` would raise."""
    if len({d.functionalReferenceId for d in docs}) != len(docs):
        raise ValueError("declare_many needs distinct MRNs: a repeated one must follow its first's commit")
    out: list[Result | Refused | None] = [None] * len(docs)
    for i, doc in enumerate(docs):
        found = issues(doc)
        if found:
            out[i] = invalid(*(((*at, *loc), msg) for loc, msg in found))
    async with conn.transaction():
        mrns = sorted(d.functionalReferenceId for d in docs)
        await conn.execute(_LOCK_MANY, (mrns,))
        existing = {r["mrn"]: r for r in await (await conn.execute(_ROWS, (mrns,))).fetchall()}
        new: list[tuple[int, TransitDeclaration, dict[str, Any], str]] = []
        for i, doc in enumerate(docs):
            document, sha = canonical(doc)
            row = existing.get(doc.functionalReferenceId)
            if out[i] is not None:
                continue
            if row is None:
                new.append((i, doc, document, sha))
            elif row["document_sha256"] == sha:
                out[i] = Result("unchanged", row["mrn"], row["version"], row["shipment_id"])
            else:
                out[i] = _other_content(row)
        registered = await shipments.register_many(conn, caller, [to_shipment(d) for _i, d, _doc, _sha in new])
        async with conn.pipeline():
            for (i, doc, document, sha), shipment in zip(new, registered, strict=True):
                if isinstance(shipment, Exception):
                    out[i] = _renamed_exception(shipment, at)
                    continue
                out[i] = await _created(conn, caller, doc.functionalReferenceId, shipment, document, sha)
    return [r for r in out if r is not None]


async def _created(conn: Conn, caller: Principal, mrn: str, shipment_id: int, document: dict[str, Any],
                   sha: str) -> Result:
    await conn.execute(_INSERT, (mrn, shipment_id, Jsonb(document), sha, caller.subject, caller.subject))
    await conn.execute(_VERSION, (mrn, 1, Jsonb(document), sha, caller.subject, "created", None))
    await audit.record(conn, caller, "declaration.created", "declaration", mrn,
                       {"version": 1, "sha256": sha, "shipment": shipment_id})
    return Result("created", mrn, 1, shipment_id)


def _other_content(row: DictRow) -> ConflictError:
    mrn = row["mrn"]
    return ConflictError(f"declaration {mrn} exists (version {row['version']}, {row['status']}) with other "
                         f"content: to amend it, PUT /declarations/{mrn} with "
                         f'{{"version": {row["version"]}, "document": ...}}')


async def amend(conn: Conn, caller: Principal, mrn: str, version: int, doc: TransitDeclaration,
                at: Loc = ("body", "document")) -> Result:
    """Amends declaration ``mrn`` at its current ``version`` to ``doc`` (version + 1) and its
    shipment with it (``shipments.amend``); ``unchanged`` when the document is the current one.
    ``NotFoundError``; ``ConflictError`` on a stale version (naming the current one), a
    cancelled declaration or a shipment past transit; 422 naming every bad field."""
    if doc.functionalReferenceId != mrn:
        raise invalid(((*at, "functionalReferenceId"),
                       f"functionalReferenceId {doc.functionalReferenceId} is not the MRN amended, {mrn}"))
    _check(doc, at)
    document, sha = canonical(doc)
    async with conn.transaction():
        row = await _locked(conn, caller, mrn)
        if row["version"] != version:
            raise ConflictError(f"declaration {mrn} is at version {row['version']}, not {version}: "
                                "read it again and amend that version")
        if row["status"] == "cancelled":
            raise ConflictError(f"declaration {mrn} is cancelled: it cannot be amended")
        if row["document_sha256"] == sha:
            return Result("unchanged", mrn, version, row["shipment_id"])
        changed = await _translated(shipments.amend(conn, caller, row["shipment_id"], to_shipment(doc)), at)
        await conn.execute(_UPDATE, (version + 1, "active", Jsonb(document), sha, caller.subject, mrn))
        await conn.execute(_VERSION, (mrn, version + 1, Jsonb(document), sha, caller.subject, "amended", None))
        await audit.record(conn, caller, "declaration.amended", "declaration", mrn,
                           {"version": version + 1, "sha256": sha, "changed": changed,
                            "shipment": row["shipment_id"]})
        return Result("amended", mrn, version + 1, row["shipment_id"])


async def cancel(conn: Conn, caller: Principal, mrn: str, reason: str) -> Result:
    """Cancels declaration ``mrn`` and its shipment (only before departure: ``ConflictError``
    otherwise, or when already cancelled). The cancellation is a version of its own."""
    async with conn.transaction():
        row = await _locked(conn, caller, mrn)
        if row["status"] == "cancelled":
            raise ConflictError(f"declaration {mrn} is already cancelled (version {row['version']})")
        await shipments.cancel(conn, caller, row["shipment_id"], reason)
        version = row["version"] + 1
        document = Jsonb(row["document"])
        await conn.execute(_UPDATE, (version, "cancelled", document, row["document_sha256"], caller.subject, mrn))
        await conn.execute(_VERSION, (mrn, version, document, row["document_sha256"], caller.subject, "cancelled",
                                      reason))
        await audit.record(conn, caller, "declaration.cancelled", "declaration", mrn,
                           {"version": version, "reason": reason, "shipment": row["shipment_id"]})
        return Result("cancelled", mrn, version, row["shipment_id"])


async def get(conn: Conn, caller: Principal, mrn: str) -> Declaration:
    """The declaration with its shipment (``NotFoundError`` also when the caller may not see it)."""
    row = await (await conn.execute(_ROW, (mrn,))).fetchone()
    if row is None:
        raise NotFoundError(f"declaration {mrn} does not exist")
    shipment = await _visible_shipment(conn, caller, mrn, row["shipment_id"])
    return Declaration(mrn=mrn, version=row["version"], status=row["status"], sha256=row["document_sha256"],
                       document=row["document"], created_at=row["created_at"], created_by=row["created_by"],
                       updated_at=row["updated_at"], updated_by=row["updated_by"], shipment=shipment)


async def versions(conn: Conn, caller: Principal, mrn: str) -> DeclarationVersions:
    """Every version of the declaration, oldest first (404 as ``get``)."""
    await get(conn, caller, mrn)
    rows = await (await conn.execute(_VERSIONS, (mrn,))).fetchall()
    return DeclarationVersions(items=[DeclarationVersion.model_validate(r) for r in rows])


async def _locked(conn: Conn, caller: Principal, mrn: str) -> DictRow:
    await conn.execute(_LOCK, (mrn,))
    row = await (await conn.execute(_ROW + " FOR UPDATE", (mrn,))).fetchone()
    if row is None:
        raise NotFoundError(f"declaration {mrn} does not exist")
    await _visible_shipment(conn, caller, mrn, row["shipment_id"])
    return row


async def _visible_shipment(conn: Conn, caller: Principal, mrn: str, shipment_id: int) -> Any:
    try:
        return await shipments.get(conn, caller, shipment_id)
    except NotFoundError as exc:
        raise NotFoundError(f"declaration {mrn} does not exist") from exc


def _check(doc: TransitDeclaration, at: Loc) -> None:
    found = issues(doc)
    if found:
        raise invalid(*(((*at, *loc), msg) for loc, msg in found))


async def _translated(work: Awaitable[T], at: Loc) -> T:
    """``await work``, a 422 of the shipment's checks renamed to the declaration's fields."""
    try:
        return await work
    except RequestValidationError as exc:
        raise _renamed_exception(exc, at) from exc


def _renamed_exception(exc: Refused, at: Loc) -> Refused:
    if isinstance(exc, RequestValidationError):
        return RequestValidationError([_renamed(e, at) for e in exc.errors()])
    return exc


def _renamed(error: dict[str, Any], at: Loc) -> dict[str, Any]:
    loc: Sequence[str | int] = error["loc"]
    field = str(loc[1]) if len(loc) > 1 else ""
    if field not in _FIELDS:
        return error | {"loc": (*at, *loc[1:])}
    where, keep_index = _FIELDS[field]
    return error | {"loc": (*at, *where, *(loc[2:3] if keep_index else ()))}
