# ruff: noqa: N815 (the attributes are the wire names, WCO camelCase; aliases would hide them from readers)
"""Transit declarations as a customs declaration-processing system sends them.

Field names are the WCO Data Model's (its class and attribute names, in lower camelCase as
its JSON/XML derivatives write them) wherever the model has the element, so that a system
exporting WCO-aligned messages maps them one to one. The names are camelCase throughout,
including the ``monitoring`` extension (which is NOT in the WCO Data Model: the electronic
cargo tracking devices and the route are this backend's own). docs/integration.md has the
mapping table. Every string, list and number is bounded; an unknown field is refused.

A declaration becomes a shipment through ``ShipmentIn`` (``to_shipment``): one way to
register, with the same checks as ``POST /shipments``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PositiveInt,
    StringConstraints,
)

from tracking_api.schemas.checks import no_repeats
from tracking_api.schemas.shipments import (
    CURRENCY,
    HS_CODE,
    MAX_GOODS,
    MAX_SEALS,
    MAX_TRANSIT_OFFICES,
    REFERENCE,
    SEAL_NUMBER,
    VEHICLE,
    Container,
    DeviceId,
    GoodsIn,
    OfficeCode,
    SealIn,
    Shipment,
    ShipmentIn,
)

MAX_EQUIPMENT = 100  # containers on one declaration
MAX_SEALS_PER_EQUIPMENT = 20
MAX_DEVICE_SEALS = 100
# Printable text without control characters (a NUL byte is refused here, before PostgreSQL would).
_TEXT = r"^[^\x00-\x1f\x7f]*$"
Mrn = Annotated[str, Field(pattern=REFERENCE, description=(
    "Movement Reference Number: 2-digit year, 2-letter country code, then 13 or 14 upper-case letters or "
    "digits (e.g. 26KE1000000000042); its check character, when there is one, is not verified"))]
DeclarationStatus = Literal["active", "cancelled"]
Change = Literal["created", "amended", "cancelled"]
Item = TypeVar("Item", bound="_Identified")


Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_TEXT)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=35, pattern=_TEXT)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_TEXT)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_TEXT)]


def _written(value: Any) -> Any:
    # pydantic reads a number as seconds since 1970: a time limit of 12 would be 1970-01-01.
    if not isinstance(value, str | datetime):
        raise ValueError(f"expected an ISO 8601 date and time with a time zone, got {type(value).__name__}")
    return value


TimeLimit = Annotated[AwareDatetime, BeforeValidator(_written)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Identified(Protocol):
    id: str


def _unique_ids(what: str) -> AfterValidator:
    """Refuses a list of objects naming the same ``id`` twice (the second occurrence is named)."""

    def check(values: list[Item]) -> list[Item]:
        seen: set[str] = set()
        for value in values:
            if value.id in seen:
                raise ValueError(f"{what} {value.id} is listed twice")
            seen.add(value.id)
        return values

    return AfterValidator(check)


class Party(_Strict):
    """WCO ``Declarant`` / ``Carrier``: a name and an identifier (TIN, EORI or national trader number)."""

    name: Name = Field(description="Name (the declarant's is the operator whose record the risk scoring reads)")
    id: Identifier | None = Field(default=None, description="Identification number (TIN, EORI)")


class Seal(_Strict):
    id: str = Field(pattern=SEAL_NUMBER, description="Seal number (WCO Seal.ID); an e-seal reports it in its "
                                                      "events' seal_id")


class TransportEquipment(_Strict):
    id: Container = Field(description="ISO 6346 container number, check digit verified (WCO TransportEquipment.ID)")
    seals: Annotated[list[Seal], _unique_ids("seal")] = Field(default_factory=list, max_length=MAX_SEALS_PER_EQUIPMENT)


class BorderTransportMeans(_Strict):
    identificationId: str = Field(pattern=VEHICLE, description=(
        "The truck's registration plate, upper case (WCO BorderTransportMeans.IdentificationID)"))


class Classification(_Strict):
    id: str = Field(pattern=HS_CODE, description="Harmonized System code, 4 to 10 digits (WCO Classification.ID)")


class Commodity(_Strict):
    description: Description | None = None
    classification: Classification


class Amount(_Strict):
    value: float = Field(ge=0, le=1e13, allow_inf_nan=False)
    currencyId: str = Field(pattern=CURRENCY, description="ISO 4217")


class GoodsItem(_Strict):
    sequenceNumeric: int = Field(ge=1, le=MAX_GOODS, description="Item number, unique in the declaration")
    commodity: Commodity
    grossMassMeasure: float | None = Field(default=None, ge=0, le=1e7, allow_inf_nan=False, description="Kilograms")
    valueAmount: Amount | None = None


class Guarantee(_Strict):
    referenceId: Identifier = Field(description="Guarantee reference number (GRN)")


class Monitoring(_Strict):
    """NOT in the WCO Data Model: what this backend needs to monitor the movement."""

    trackerId: DeviceId = Field(description="The tracker's device id")
    sealIds: Annotated[list[DeviceId], no_repeats("seal")] = Field(
        default_factory=list, max_length=MAX_DEVICE_SEALS, description="E-seal device ids")
    routeId: PositiveInt = Field(description=(
        "The approved route (required: an office pair may be served by several routes, and a guess would "
        "raise deviation alerts against the wrong line)"))


_EXAMPLE: dict[str, JsonValue] = {
    "functionalReferenceId": "26KE1000000000042",
    "declarant": {"name": "Acme Freight Ltd", "id": "P051234567X"},
    "carrier": {"name": "Rift Valley Haulage", "id": "P059876543Z"},
    "borderTransportMeans": {"identificationId": "KCB 123A"},
    "transportEquipment": [{"id": "CSQU3054383", "seals": [{"id": "KRA-0012345"}]}],
    "goodsItems": [{"sequenceNumeric": 1, "commodity": {"description": "diesel fuel",
                                                        "classification": {"id": "271019"}},
                    "grossMassMeasure": 28000.0, "valueAmount": {"value": 21500.0, "currencyId": "USD"}}],
    "officeOfDeparture": "KEMBA", "officesOfTransit": ["KEMAL", "UGMAL"], "officeOfDestination": "UGKLA",
    "timeLimit": "2026-11-25T18:00:00+03:00",
    "guarantee": {"referenceId": "26KE0000000012345"},
    "monitoring": {"trackerId": "trk-0042", "sealIds": ["seal-0042a"], "routeId": 1}}


class TransitDeclaration(_Strict):
    """A transit declaration (WCO Data Model names; ``monitoring`` is this backend's extension)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    functionalReferenceId: Mrn
    declarant: Party
    carrier: Party | None = None
    borderTransportMeans: BorderTransportMeans | None = None
    transportEquipment: Annotated[list[TransportEquipment], _unique_ids("container")] = Field(
        default_factory=list, max_length=MAX_EQUIPMENT, description="Containers with their seals")
    goodsItems: list[GoodsItem] = Field(default_factory=list, max_length=MAX_GOODS)
    officeOfDeparture: OfficeCode
    officesOfTransit: list[OfficeCode] = Field(default_factory=list, max_length=MAX_TRANSIT_OFFICES,
                                               description="In the order the truck passes them")
    officeOfDestination: OfficeCode
    timeLimit: TimeLimit = Field(description="Time limit for presenting the goods at destination (the deadline)")
    guarantee: Guarantee | None = None
    monitoring: Monitoring


class AmendmentIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1, "document": _EXAMPLE}]})

    version: int = Field(ge=1, le=1_000_000, description="The declaration's current version (optimistic locking)")
    document: TransitDeclaration


class CancelIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "declaration invalidated"}]})

    reason: Reason


class Declaration(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "mrn": _EXAMPLE["functionalReferenceId"], "version": 1, "status": "active",
        "sha256": "9d1c0e0f4a2b6c8e7f3a5b1d2c4e6f8091a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0", "document": _EXAMPLE,
        "created_at": "2026-11-23T05:58:12Z", "created_by": "asycuda-ke", "updated_at": "2026-11-23T05:58:12Z",
        "updated_by": "asycuda-ke",
        "shipment": Shipment.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
    }]})

    mrn: str
    version: int = Field(description="1 at creation, +1 per amendment and at cancellation")
    status: DeclarationStatus
    sha256: str = Field(description="Of the document's canonical JSON (sorted keys, no spaces)")
    document: dict[str, Any]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    shipment: Shipment


class DeclarationVersion(BaseModel):
    version: int
    change: Change
    at: datetime
    by: str
    sha256: str
    document: dict[str, Any]
    reason: str | None = Field(default=None, description="Why it was cancelled")


class DeclarationVersions(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [
        {"version": 1, "change": "created", "at": "2026-11-23T05:58:12Z", "by": "asycuda-ke",
         "sha256": "9d1c0e0f4a2b6c8e7f3a5b1d2c4e6f8091a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0", "document": _EXAMPLE,
         "reason": None},
        {"version": 2, "change": "cancelled", "at": "2026-11-23T07:10:40Z", "by": "asycuda-ke",
         "sha256": "9d1c0e0f4a2b6c8e7f3a5b1d2c4e6f8091a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0", "document": _EXAMPLE,
         "reason": "declaration invalidated by the office of departure"}]}]})

    items: list[DeclarationVersion] = Field(description="Oldest first")


def canonical(doc: TransitDeclaration) -> tuple[dict[str, Any], str]:
    """The document as stored (JSON form, defaults filled) and the SHA-256 of its canonical JSON:
    the same declaration sent twice, whatever its key order or spacing, hashes the same."""
    data = doc.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return data, hashlib.sha256(text.encode()).hexdigest()


def to_shipment(doc: TransitDeclaration) -> ShipmentIn:
    """The ``ShipmentIn`` the declaration registers (or amends the shipment to)."""
    items = sorted(doc.goodsItems, key=lambda g: g.sequenceNumeric)
    return ShipmentIn.model_construct(
        reference=doc.functionalReferenceId, route_id=doc.monitoring.routeId, tracker_id=doc.monitoring.trackerId,
        seal_ids=list(doc.monitoring.sealIds), containers=[e.id for e in doc.transportEquipment],
        office_of_departure=doc.officeOfDeparture, office_of_destination=doc.officeOfDestination,
        deadline=doc.timeLimit, offices_of_transit=list(doc.officesOfTransit),
        seals=[SealIn.model_construct(number=s.id, container=e.id) for e in doc.transportEquipment for s in e.seals],
        vehicle=doc.borderTransportMeans.identificationId if doc.borderTransportMeans else None,
        operator=doc.declarant.name,
        goods=[GoodsIn.model_construct(
            hs_code=g.commodity.classification.id, description=g.commodity.description,
            gross_mass_kg=g.grossMassMeasure, value=g.valueAmount.value if g.valueAmount else None,
            currency=g.valueAmount.currencyId if g.valueAmount else None) for g in items])


def issues(doc: TransitDeclaration) -> list[tuple[tuple[str | int, ...], str]]:
    """What contradicts itself in the declaration (beyond ``ShipmentIn``'s checks), as (loc in the
    document, msg)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(doc.goodsItems):
        if item.sequenceNumeric in seen:
            found.append((("goodsItems", i, "sequenceNumeric"),
                          f"sequenceNumeric {item.sequenceNumeric} is also item {seen[item.sequenceNumeric]}'s"))
        seen.setdefault(item.sequenceNumeric, i)
    numbers: dict[str, tuple[int, int]] = {}
    for i, equipment in enumerate(doc.transportEquipment):
        for j, seal in enumerate(equipment.seals):
            if seal.id in numbers and numbers[seal.id][0] != i:
                found.append((("transportEquipment", i, "seals", j, "id"),
                              f"seal {seal.id} is also on transportEquipment {numbers[seal.id][0]}"))
            numbers.setdefault(seal.id, (i, j))
    if len(numbers) > MAX_SEALS:
        found.append((("transportEquipment",), f"{len(numbers)} seals in all, at most {MAX_SEALS}"))
    if doc.monitoring.trackerId in doc.monitoring.sealIds:
        found.append((("monitoring", "sealIds"),
                      f"trackerId {doc.monitoring.trackerId!r} is also listed in sealIds"))
    return found
