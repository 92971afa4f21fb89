"""Cases as the API documents them: opened by a confirmed outcome, with the shipment's
evidence (each item's SHA-256), the officers' entries and the closing verdict."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from protocol.alerts import OUTCOMES, Outcome
from tracking_api.schemas.alerts import Alert, UtcDatetime, one_of
from tracking_api.schemas.checks import NO_NUL

CaseStatus = Literal["open", "closed"]
CASE_STATUSES: tuple[str, ...] = ("open", "closed")
EvidenceKind = Literal["track", "timeline", "seal_events", "alerts", "audit", "report"]

_CASE: dict[str, Any] = {
    "id": 3, "shipment": 7, "reference": "26KE4795554000003", "status": "open",
    "opened_at": "2026-11-23T07:02:10Z", "opened_by": "officer-kemba-17", "closed_at": None, "closed_by": None,
    "outcome": None, "summary": None, "alert_ids": [42],
}


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class Case(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CASE]})

    id: int
    shipment: int = Field(description="Shipment id")
    reference: str = Field(description="The shipment's reference")
    status: CaseStatus = Field(description="open, or closed (then read-only)")
    opened_at: UtcDatetime
    opened_by: str = Field(description="Who resolved the alert that opened it (token subject)")
    closed_at: UtcDatetime | None
    closed_by: str | None
    outcome: Outcome | None = Field(description="The closing verdict; null while open")
    summary: str | None = Field(description="The closing summary; null while open")
    alert_ids: list[int] = Field(description="The alerts it holds, by id")


class CasePage(BaseModel):
    """One page of cases, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_CASE], "next_cursor": None}]})

    items: list[Case]
    next_cursor: str | None = Field(description="null on the last page")


class Entry(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 7, "at": "2026-11-23T08:12:40Z", "author": "officer.malaba", "role": "officer",
        "text": "driver interviewed at Malaba; 240 cartons found behind the declared tea", "detail": {}}]})

    id: int
    at: UtcDatetime
    author: str = Field(description="Token subject")
    role: str
    text: str
    detail: dict[str, Any] = Field(description="For the API's own entries (an alert joining): alert, outcome, "
                                               "evidence hashes")


class EvidenceItem(BaseModel):
    id: int
    kind: EvidenceKind = Field(description="track (GeoJSON Feature of the tracker's fixes), timeline, seal_events, "
                                           "alerts (the one alert object), audit (the officers' entries with their "
                                           "hash-chain hashes), report (the shipment report PDF)")
    media_type: str
    bytes: int = Field(description="Size of the content")
    sha256: str = Field(description="SHA-256 of the content (hex), also sent as X-Content-SHA256 with it")
    taken_at: UtcDatetime
    taken_by: str


class CaseDetail(Case):
    model_config = ConfigDict(json_schema_extra={"examples": [{**_CASE, "alerts": [], "entries": [], "evidence": [
        {"id": 11, "kind": "track", "media_type": "application/geo+json", "bytes": 48213,
         "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         "taken_at": "2026-11-23T07:02:10Z", "taken_by": "officer-kemba-17"}]}]})

    alerts: list[Alert] = Field(description="The alerts it holds (the one alert object)")
    entries: list[Entry] = Field(description="In order")
    evidence: list[EvidenceItem] = Field(description="In the order taken (a snapshot at opening and whenever an "
                                                     "alert joins)")


Text = Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(_not_blank), NO_NUL]


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "Driver interviewed at Mariakani weighbridge; seal number differs from the declaration"}]})

    text: Text = Field(description="1 to 10000 characters")


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "goods_seized", "summary": "240 cartons of undeclared cigarettes seized; file sent to KRA-IDU"}]})

    outcome: Annotated[Outcome, one_of("outcome", OUTCOMES)] = Field(description="The verdict: " + ", ".join(OUTCOMES))
    summary: Text = Field(description="1 to 10000 characters")
