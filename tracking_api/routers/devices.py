"""``/devices``: the trackers and e-seals, their battery forecast and custody, and the
custody workflow (issue at the office of departure, return at destination)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from tracking_api.access import GRANTS
from tracking_api.auth import Principal
from tracking_api.config import ApiSettings
from tracking_api.deps import Caller, Conn, Settings, require
from tracking_api.pagination import KeyPaging
from tracking_api.schemas.devices import DeviceDetail, DevicePage, IssueIn, Kind, ReturnIn, Sort, State
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, validation
from tracking_api.schemas.shipments import DEVICE_ID
from tracking_api.services import devices as service

router = APIRouter(prefix="/devices", tags=["devices"])

CUSTODIANS = GRANTS["move_shipments"]
Custodian = Annotated[Principal, Depends(require(*CUSTODIANS))]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID, description="Tracker or e-seal id")]
_NOT_FOUND = error(404, "No such device, or not on a shipment of the officer's region",
                   "device 'trk-0042' is not known, or on no shipment of your region")
_INVALID_QUERY = validation("A filter, sort, limit or cursor is invalid", ["query", "sort"],
                            "Input should be 'last_seen', 'battery' or 'id'")


def settings_of(settings: ApiSettings) -> service.Settings:
    return service.Settings(trend_window=timedelta(hours=settings.battery_trend_h),
                            return_grace=timedelta(seconds=settings.device_return_grace_s))


@router.get("", response_model=DevicePage, summary="Devices, filtered and sorted",
            responses={**UNAUTHORIZED, **_INVALID_QUERY})
async def list_devices(
    conn: Conn, caller: Caller, settings: Settings, page: KeyPaging,
    kind: Annotated[Kind | None, Query(description="tracker, seal or unknown")] = None,
    state: Annotated[State | None, Query(description="Connection state")] = None,
    battery_below: Annotated[float | None, Query(ge=0, le=100, description="Only batteries below this %")] = None,
    flagged: Annotated[bool | None, Query(description="Only devices with (true) or without (false) a flag")] = None,
    shipment: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only the devices of this shipment")]
    = None,
    q: Annotated[str | None, Query(pattern=DEVICE_ID, description="Only ids starting with this")] = None,
    sort: Annotated[Sort, Query(description="last_seen, battery (current level) or id")] = "last_seen",
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="asc or desc")] = "desc",
) -> DevicePage:
    """Every device heard from or issued to a shipment, matching every given filter, sorted
    (ties by id), a page at a time: follow `next_cursor` until it is null. A device never
    heard from sorts as the oldest last_seen; one without a battery reading after every reading.
    An officer sees only the devices of shipments touching their region."""
    query = service.Query(kind=kind, state=state, battery_below=battery_below, flagged=flagged, shipment=shipment,
                          q=q, sort=sort, descending=order == "desc", after=page.after(2), limit=page.limit)
    items, keys, fetched = await service.listing(conn, caller, settings_of(settings), query)
    return DevicePage(items=items, next_cursor=page.next_cursor(keys, fetched))


@router.get("/{device_id}", response_model=DeviceDetail, summary="One device",
            responses={**UNAUTHORIZED, **_NOT_FOUND})
async def get_device(conn: Conn, caller: Caller, settings: Settings, device_id: DeviceId) -> DeviceDetail:
    """The device as listed, with its custody history. 404 also when an officer may not see
    it, so that other regions' devices are not confirmed."""
    return await service.get(conn, caller, settings_of(settings), device_id)


@router.post("/{device_id}/issue", response_model=DeviceDetail, summary="Issue a device to a shipment",
             responses={**UNAUTHORIZED, **forbidden(*CUSTODIANS),
                        **error(404, "No such shipment, or not in the officer's region", "shipment 42 does not exist"),
                        **error(409, "The device is out already, the shipment is not registered, or the device "
                                     "is not its tracker or one of its seals",
                                "device 'seal-0042a' is already issued to shipment 26KE1000000000041 (arrived): "
                                "return it first"),
                        **validation("The office is not the shipment's office of departure", ["body", "office"],
                                     "office 'UGMAL' is not the office of departure 'KEMBA' of 26KE1000000000042")})
async def issue_device(conn: Conn, caller: Custodian, settings: Settings, device_id: DeviceId,
                       body: IssueIn) -> DeviceDetail:
    """Hands the device out to a registered shipment at its office of departure (registration
    does this for the shipment's tracker and seals: this is for a device returned since, or
    a shipment registered before custody was recorded). Audited as `device.issued`."""
    return await service.issue(conn, caller, settings_of(settings), device_id, body)


@router.post("/{device_id}/return", response_model=DeviceDetail, summary="Return a device",
             responses={**UNAUTHORIZED, **forbidden(*CUSTODIANS), **_NOT_FOUND,
                        **error(409, "The device is not issued", "device 'trk-0042' is not issued to any shipment"),
                        **validation("No such office, or another office than the destination without a note",
                                     ["body", "note"], "a note is required to return device 'trk-0042' at 'KEMBA'")})
async def return_device(conn: Conn, caller: Custodian, settings: Settings, device_id: DeviceId,
                        body: ReturnIn) -> DeviceDetail:
    """Takes the device back at an office: its shipment's destination, or any other with a
    note saying why (a truck turned back). Audited as `device.returned`."""
    return await service.return_(conn, caller, settings_of(settings), device_id, body)
