"""Shipments (transit declarations): request bodies and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PositiveInt,
    model_validator,
)

from protocol import topics
from tracking_api import iso6346
from tracking_api.schemas.checks import no_repeats
from tracking_api.schemas.geography import OFFICE_CODE
from tracking_api.schemas.risk import Risk

# Like a Movement Reference Number (EU NCTS, ASYCUDA): 2-digit year, ISO 3166-1
# alpha-2 country, then 13 or 14 upper-case letters or digits (17 or 18 in all).
# Its check character, when there is one, is not verified.
REFERENCE = r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{13,14}$"
DEVICE_ID = f"^{topics.DEVICE_ID}$"  # as on MQTT: client id = username = device id
Status = Literal["registered", "in_transit", "arrived", "closed", "cancelled"]
Action = Literal["depart", "arrive", "close"]
Role = Literal["departure", "transit", "destination"]
EventKind = Literal["arrived", "departed", "border_crossed", "released", "inspection_authorised",
                    "inspection_opening", "seal_armed"]
# As schema/022 checks them: a seal number, a plate, an HS code, a currency (ISO 4217), a country (alpha-3).
SEAL_NUMBER = r"^[A-Za-z0-9._-]{1,64}$"
VEHICLE = r"^[A-Z0-9][A-Z0-9 -]{0,14}$"
HS_CODE = r"^[0-9]{4,10}$"
CURRENCY = r"^[A-Z]{3}$"
MAX_TRANSIT_OFFICES = 20
MAX_SEALS = 100
MAX_GOODS = 100

DeviceId = Annotated[str, Field(pattern=DEVICE_ID)]
OfficeCode = Annotated[str, Field(pattern=OFFICE_CODE, description="Code of an office zone")]


def _container(number: str) -> str:
    problem = iso6346.problem(number)
    if problem is not None:
        raise ValueError(problem)
    return number


Container = Annotated[str, AfterValidator(_container), Field(
    json_schema_extra={"pattern": iso6346.PATTERN},
    description="ISO 6346: owner code, category U/J/Z, 6-digit serial, check digit (verified); no spaces")]

_EXAMPLE_IN: dict[str, JsonValue] = {
    "reference": "26KE1000000000042", "route_id": 1, "tracker_id": "trk-0042", "seal_ids": ["seal-0042a"],
    "containers": ["CSQU3054383"], "office_of_departure": "KEMBA", "office_of_destination": "UGKLA",
    "deadline": "2026-11-25T18:00:00+03:00", "offices_of_transit": ["KEMAL", "UGMAL"],
    "seals": [{"number": "KRA-0012345", "container": "CSQU3054383"}], "vehicle": "KCB 123A",
    "operator": "Acme Freight Ltd",
    "goods": [{"hs_code": "271019", "description": "diesel fuel", "gross_mass_kg": 28000.0, "value": 21500.0,
               "currency": "USD"}]}


class SealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=SEAL_NUMBER, description="Seal number as on the declaration (and in the e-seal's "
                                                         "events' seal_id)")
    container: str | None = Field(default=None, description="The declared container it seals (one of "
                                                            "containers); omitted for a sealed truck body")


class GoodsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hs_code: str = Field(pattern=HS_CODE, description="Harmonized System code, 4 to 10 digits (the risk "
                                                      "scoring matches it against the sensitive goods)")
    description: str | None = Field(default=None, min_length=1, max_length=200)
    gross_mass_kg: float | None = Field(default=None, ge=0, le=1e7, allow_inf_nan=False, description="Kilograms")
    value: float | None = Field(default=None, ge=0, le=1e13, allow_inf_nan=False,
                                description="Customs value, in currency")
    currency: str | None = Field(default=None, pattern=CURRENCY, description="ISO 4217 code of value")


class ShipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE_IN]})

    reference: str = Field(pattern=REFERENCE, description=(
        "MRN-like transit declaration reference, unique: 2-digit year, 2-letter country code, then 13 or 14 "
        "upper-case letters or digits (e.g. 26KE1000000000042)"))
    route_id: PositiveInt = Field(description="An existing route")
    tracker_id: DeviceId = Field(description="The tracker's device id; free of any other active shipment")
    seal_ids: Annotated[list[DeviceId], no_repeats("seal")] = Field(
        default_factory=list, max_length=100, description="E-seal device ids; free of any other active shipment")
    containers: Annotated[list[Container], no_repeats("container")] = Field(default_factory=list, max_length=100)
    office_of_departure: OfficeCode
    office_of_destination: OfficeCode
    deadline: AwareDatetime = Field(description="Arrival deadline, ISO 8601 with a time zone")
    offices_of_transit: list[OfficeCode] = Field(
        default_factory=list, max_length=MAX_TRANSIT_OFFICES, description=(
            "Offices of transit in the order the truck passes them (usually border posts): codes of office or "
            "border_post zones, neither the departure nor the destination"))
    seals: list[SealIn] = Field(default_factory=list, max_length=MAX_SEALS, description=(
        "Declared seal numbers, unique, each on a declared container; free of any other shipment not closed"))
    vehicle: str | None = Field(default=None, pattern=VEHICLE, description=(
        "The truck's plate, upper case. Several shipments may share a tracker only on the same vehicle, route "
        "and itinerary (a consolidated truck)"))
    operator: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="Declarant or carrier, whose record the risk scoring reads")
    goods: list[GoodsIn] = Field(default_factory=list, max_length=MAX_GOODS, description="Goods items")

    @model_validator(mode="after")
    def _tracker_is_not_a_seal(self) -> ShipmentIn:
        if self.tracker_id in self.seal_ids:
            raise ValueError(f"tracker_id {self.tracker_id!r} is also listed in seal_ids")
        return self


class Progress(BaseModel):
    chainage_m: float | None = Field(description="Metres along the route at the newest fix inside the corridor")
    distance_m: float | None = Field(description="Distance from the route line at the newest fix, metres")
    last_fix_at: datetime | None = Field(description="Fix time of the newest position")
    route_length_m: float | None = Field(default=None, description="Geodesic length of the route, metres")
    remaining_m: float | None = Field(default=None, description="Route length minus chainage, metres")
    average_speed_kmh: float | None = Field(default=None, description=(
        "Chainage over the time since departure, stops included; null in the first 10 min or 1 km"))
    eta: datetime | None = Field(default=None, description=(
        "Estimated arrival: the newest fix's time plus the remaining distance at the average speed so far"))


class ItineraryOffice(BaseModel):
    position: int = Field(description="0: office of departure; then the offices of transit; last: destination")
    role: Role
    office_code: str
    zone_id: int
    country: str | None = Field(description="ISO 3166-1 alpha-3 of the office's zone, when given")
    arrived_at: datetime | None = Field(description="First 'arrived' milestone there (fix time), from the engine")
    departed_at: datetime | None = Field(description="Last 'departed' milestone there (fix time), from the engine")


class Seal(BaseModel):
    number: str
    container: str | None


class Goods(BaseModel):
    line: int = Field(description="1-based, in the order declared")
    hs_code: str
    description: str | None
    gross_mass_kg: float | None
    value: float | None
    currency: str | None


_ITINERARY_EXAMPLE: list[JsonValue] = [
    {"position": 0, "role": "departure", "office_code": "KEMBA", "zone_id": 3, "country": "KEN",
     "arrived_at": None, "departed_at": "2026-11-23T06:02:10Z"},
    {"position": 1, "role": "transit", "office_code": "KEMAL", "zone_id": 7, "country": "KEN",
     "arrived_at": "2026-11-24T02:10:00Z", "departed_at": "2026-11-24T05:40:30Z"},
    {"position": 2, "role": "transit", "office_code": "UGMAL", "zone_id": 8, "country": "UGA",
     "arrived_at": "2026-11-24T05:44:00Z", "departed_at": None},
    {"position": 3, "role": "destination", "office_code": "UGKLA", "zone_id": 9, "country": "UGA",
     "arrived_at": None, "departed_at": None}]
_SHIPMENT_EXAMPLE: dict[str, JsonValue] = _EXAMPLE_IN | {
    "id": 42, "status": "in_transit", "deadline": "2026-11-25T15:00:00Z", "departed_at": "2026-11-23T06:00:00Z",
    "arrived_at": None, "closed_at": None, "regions": ["KE-MSA", "UG-MAL"], "created_at": "2026-11-23T05:40:12Z",
    "created_by": "integrator-acme",
    "progress": {"chainage_m": 41250.0, "distance_m": 12.5, "last_fix_at": "2026-11-23T07:00:05Z",
                 "route_length_m": 1523400.0, "remaining_m": 1482150.0, "average_speed_kmh": 41.2,
                 "eta": "2026-11-24T19:00:00Z"},
    "itinerary": _ITINERARY_EXAMPLE,
    "goods": [{"line": 1, "hs_code": "271019", "description": "diesel fuel", "gross_mass_kg": 28000.0,
               "value": 21500.0, "currency": "USD"}],
    "risk": {"level": "high", "score": 60, "computed": "high", "reasons": [
        {"factor": "goods", "points": 40, "detail": "271019: fuel (petroleum oils, not crude)"},
        {"factor": "operator", "points": 20, "detail": "2 confirmed alerts in 6 months"}], "override": None},
    "released_at": None, "country": "UGA"}


class Shipment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SHIPMENT_EXAMPLE]})

    id: int
    reference: str
    status: Status
    route_id: int
    tracker_id: str
    seal_ids: list[str] = Field(description="Sorted")
    containers: list[str]
    office_of_departure: str
    office_of_destination: str
    deadline: datetime
    departed_at: datetime | None
    arrived_at: datetime | None
    closed_at: datetime | None
    regions: list[str] = Field(description="Codes of the regions its route or any office of its itinerary touches "
                                           "(officers' visibility: every administration on the itinerary)")
    created_at: datetime
    created_by: str | None
    progress: Progress | None = Field(description="From the geofence engine; null before the tracker's first fix "
                                                  "in transit")
    offices_of_transit: list[str] = Field(description="In itinerary order")
    itinerary: list[ItineraryOffice] = Field(description="Departure, the offices of transit, destination")
    seals: list[Seal] = Field(description="Declared seal numbers, sorted")
    vehicle: str | None
    operator: str | None
    goods: list[Goods]
    risk: Risk = Field(description="Score, computed level with its reasons, override, and the level in force")
    released_at: datetime | None = Field(description="When an officer released the goods at destination")
    country: str | None = Field(description="Alpha-3 country where its tracker was last seen (null: unknown)")


class ShipmentPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": Shipment.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        "next_cursor": "aWQ6NDI"}]})

    items: list[Shipment] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


_AT = Field(default=None, description="When it happened (ISO 8601 with a time zone); default now. Not before "
                                      "the previous step, not in the future")


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"at": "2026-11-23T06:00:00Z"}]})

    at: AwareDatetime | None = _AT


class ArriveIn(TransitionIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"at": "2026-11-25T09:00:00Z", "release": True}]})

    release: bool = Field(default=False, description="Release the goods at the same time (as POST .../release)")


Note = Annotated[str, Field(min_length=1, max_length=1000)]


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"at": "2026-11-25T09:30:00Z", "note": "goods cleared, seals KRA-0012345 intact"}]})

    at: AwareDatetime | None = Field(default=None, description=(
        "When the goods were released (ISO 8601 with a time zone); default now. Not before departure, not in "
        "the future. A seal opening inside the destination zone from then on is normal"))
    note: Note | None = None


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"office_code": "UGMAL", "note": "scanner alert, open container CSQU3054383"}]})

    office_code: OfficeCode = Field(description="An office of the shipment's itinerary")
    note: Note | None = None


class Inspection(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 5, "shipment_id": 42, "office_code": "UGMAL", "authorised_at": "2026-11-24T05:50:00Z",
        "authorised_by": "officer-ug-17", "note": "scanner alert, open container CSQU3054383", "used_at": None}]})

    id: int
    shipment_id: int
    office_code: str
    authorised_at: datetime
    authorised_by: str
    note: str | None
    used_at: datetime | None = Field(description="Fix time of the seal opening it covered; null while unused")


class TimelineItem(BaseModel):
    kind: EventKind
    office_code: str | None
    position: int | None = Field(description="Itinerary position (arrived, departed)")
    country: str | None
    at: datetime = Field(description="Fix time (engine milestones) or the officer's time")
    lon: float | None
    lat: float | None
    late: bool = Field(description="Decided on records that arrived late (a backlog)")
    detail: dict[str, Any]


class Timeline(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [
        {"kind": "departed", "office_code": "KEMBA", "position": 0, "country": "KEN", "at": "2026-11-23T06:02:10Z",
         "lon": 39.67, "lat": -4.04, "late": False,
         "detail": {"position": 0, "inside_s": 1250.0, "stationary_s": 1100.0}},
        {"kind": "border_crossed", "office_code": None, "position": None, "country": "UGA",
         "at": "2026-11-24T05:42:00Z", "lon": 34.09, "lat": 0.63, "late": False,
         "detail": {"from": "KEN", "to": "UGA"}}]}]})

    items: list[TimelineItem] = Field(description="In time order")
