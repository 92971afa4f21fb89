"""Devices (trackers and e-seals): the inventory's responses and the custody requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from tracking_api.schemas.geography import OFFICE_CODE

Kind = Literal["tracker", "seal", "unknown"]
State = Literal["online", "offline", "lost"]
Flag = Literal["assigned_to_closed", "missing_after_arrival"]
Sort = Literal["last_seen", "battery", "id"]
CustodyState = Literal["issued", "returned", "never_issued"]
FLAGS: tuple[Flag, ...] = get_args(Flag)


class BatteryPoint(BaseModel):
    at: datetime = Field(description="Start of the hour")
    bat: float = Field(description="Mean battery level that hour, %")


class Battery(BaseModel):
    level: float | None = Field(description="Newest reported level, % (devices.bat)")
    at: datetime | None = Field(description="Time of the newest reading in the trend window")
    points: int = Field(description="Readings in the trend window (fixes, seal events, statuses)")
    drain_per_h: float | None = Field(description="Least-squares loss over the window, % per hour (negative: "
                                                  "charging); null with fewer than 3 readings or under 15 min")
    empty_at: datetime | None = Field(description="When the fitted line reaches 0 %; null when not draining")
    hours_left: float | None = Field(description="Hours from now to empty_at (0 when past)")
    lasts_until_deadline: bool | None = Field(
        description="Whether it lasts to the current shipment's deadline at this drain; null with no "
                    "shipment or no trend")
    series: list[BatteryPoint] = Field(description="Hourly means over the trend window, oldest first")


class Fix(BaseModel):
    ts: datetime
    lat: float
    lon: float
    spd: float | None = Field(description="km/h")
    country: str | None = Field(description="ISO 3166-1 alpha-3 where it was, when known")


class Location(BaseModel):
    lat: float
    lon: float
    at: datetime = Field(description="Fix time")
    source: Literal["device", "tracker"] = Field(
        description="The device's own last fix, or (an e-seal) its current shipment's tracker's")


class ShipmentRef(BaseModel):
    id: int
    reference: str
    status: str
    deadline: datetime


class Assignment(BaseModel):
    id: int
    shipment: int
    reference: str
    shipment_status: str
    issued_at: datetime
    issued_by: str
    issued_office: str
    returned_at: datetime | None
    returned_by: str | None
    returned_office: str | None
    note: str | None


class Custody(BaseModel):
    state: CustodyState = Field(description="issued: out to a shipment; returned; never_issued")
    assignment: Assignment | None = Field(description="The latest assignment")


class Credentials(BaseModel):
    signing_key: bool = Field(description="A record-signing key was issued (`ctt devices provision --sign`)")
    must_sign: bool | None = Field(description="Unsigned records are refused")
    provisioned_as: Literal["eseal", "tracker"] | None
    since: datetime | None = Field(description="When the key was last issued or changed")


class Device(BaseModel):
    id: str
    kind: Kind = Field(description="tracker (some shipment's tracker), seal (in some shipment's seals), "
                                   "else what provisioning said, else unknown")
    firmware: str | None
    state: State | None = Field(description="Connection state from its last status or Last Will")
    state_at: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None = Field(description="Last message of any kind; null: never heard from")
    battery: Battery
    last_fix: Fix | None
    location: Location | None
    shipment: ShipmentRef | None = Field(description="The active (registered or in transit) shipment it serves")
    credentials: Credentials
    custody: Custody
    flags: list[Flag] = Field(description="assigned_to_closed: still out to a closed or cancelled shipment; "
                                          "missing_after_arrival: not returned CTT_DEVICE_RETURN_GRACE_S after "
                                          "its shipment arrived")


_ASSIGNMENT: dict[str, Any] = {
    "id": 310, "shipment": 42, "reference": "26KE1000000000042", "shipment_status": "in_transit",
    "issued_at": "2026-11-23T05:40:00Z", "issued_by": "officer.mombasa", "issued_office": "KEMBA",
    "returned_at": None, "returned_by": None, "returned_office": None, "note": None}
_DEVICE: dict[str, Any] = {
    "id": "trk-0042", "kind": "tracker", "firmware": "2.4.1", "state": "online", "state_at": "2026-11-23T09:58:00Z",
    "first_seen": "2026-11-20T07:00:00Z", "last_seen": "2026-11-23T10:00:15Z",
    "battery": {"level": 64.0, "at": "2026-11-23T10:00:15Z", "points": 412, "drain_per_h": 1.2,
                "empty_at": "2026-11-25T15:20:00Z", "hours_left": 53.3, "lasts_until_deadline": True,
                "series": [{"at": "2026-11-23T09:00:00Z", "bat": 65.1}, {"at": "2026-11-23T10:00:00Z", "bat": 64.0}]},
    "last_fix": {"ts": "2026-11-23T10:00:15Z", "lat": -3.3961, "lon": 38.5561, "spd": 62.0, "country": "KEN"},
    "location": {"lat": -3.3961, "lon": 38.5561, "at": "2026-11-23T10:00:15Z", "source": "device"},
    "shipment": {"id": 42, "reference": "26KE1000000000042", "status": "in_transit",
                 "deadline": "2026-11-25T06:00:00Z"},
    "credentials": {"signing_key": True, "must_sign": False, "provisioned_as": "tracker",
                    "since": "2026-11-20T06:55:00Z"},
    "custody": {"state": "issued", "assignment": _ASSIGNMENT}, "flags": [],
    "assignments": [_ASSIGNMENT]}


class DeviceDetail(Device):
    model_config = ConfigDict(json_schema_extra={"examples": [_DEVICE]})

    assignments: list[Assignment] = Field(description="Custody history, newest first (at most 50)")


class DevicePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": "a2V5Olsi..."}]})

    items: list[Device]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"shipment": 42, "office": "KEMBA"}]})

    shipment: int = Field(ge=1, le=2**63 - 1, description="A registered shipment it is the tracker or a seal of")
    office: str = Field(pattern=OFFICE_CODE, description="The shipment's office of departure")


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"office": "UGMAL", "note": None}, {"office": "KEMBA", "note": "truck turned back at the border"}]})

    office: str = Field(pattern=OFFICE_CODE, description="Where it is handed back")
    note: str | None = Field(default=None, min_length=1, max_length=2000,
                             description="Required when the office is not the shipment's destination")
