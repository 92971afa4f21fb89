"""Shipments (transit declarations): request bodies and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

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

# Like a Movement Reference Number (EU NCTS, ASYCUDA): 2-digit year, ISO 3166-1
# alpha-2 country, then 13 or 14 upper-case letters or digits (17 or 18 in all).
# Its check character, when there is one, is not verified.
REFERENCE = r"^[0-9]{2}[A-Z]{2}[A-Z0-9]{13,14}$"
DEVICE_ID = f"^{topics.DEVICE_ID}$"  # as on MQTT: client id = username = device id
Status = Literal["registered", "in_transit", "arrived", "closed"]
Action = Literal["depart", "arrive", "close"]

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
    "containers": ["CSQU3054383"], "office_of_departure": "KEMBA", "office_of_destination": "KENBO",
    "deadline": "2026-11-25T18:00:00+03:00"}


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


class Shipment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_IN | {
        "id": 42, "status": "in_transit", "deadline": "2026-11-25T15:00:00Z", "departed_at": "2026-11-23T06:00:00Z",
        "arrived_at": None, "closed_at": None, "regions": ["KE-MSA"], "created_at": "2026-11-23T05:40:12Z",
        "created_by": "integrator-acme",
        "progress": {"chainage_m": 41250.0, "distance_m": 12.5, "last_fix_at": "2026-11-23T07:00:05Z",
                     "route_length_m": 1523400.0, "remaining_m": 1482150.0, "average_speed_kmh": 41.2,
                     "eta": "2026-11-24T19:00:00Z"}}]})

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
    regions: list[str] = Field(description="Codes of the regions its route or offices touch (officers' visibility)")
    created_at: datetime
    created_by: str | None
    progress: Progress | None = Field(description="From the geofence engine; null before the tracker's first fix "
                                                  "in transit")


class ShipmentPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": Shipment.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        "next_cursor": "aWQ6NDI"}]})

    items: list[Shipment] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"at": "2026-11-23T06:00:00Z"}]})

    at: AwareDatetime | None = Field(default=None, description="When it happened (ISO 8601 with a time zone); "
                                                               "default now. Not before the previous step, not "
                                                               "in the future")
