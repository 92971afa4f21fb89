"""``/risk``: what the risk scoring and the thresholds read, edited by the administration.

The sensitive-goods list (HS prefixes and the points they add to a shipment's score) and
the risk profiles (each level's thresholds: corridor factor, stop minimum, reporting
interval, border dwell factor, severity shift). Every role reads; admins and operators
edit; every change is audited with the values before and after. A profile change reaches
the geofence engine through ``geofence_version`` (the table's trigger). Rules and
defaults: docs/alerts.md, "Risk-based monitoring".
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from pydantic import BeforeValidator

from tracking_api import audit
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn, require
from tracking_api.schemas.alerts import one_of
from tracking_api.schemas.errors import UNAUTHORIZED, error, forbidden, validation
from tracking_api.schemas.risk import (
    GOODS_EXAMPLE,
    HS_PREFIX,
    PROFILE_EXAMPLE,
    RISK_LEVELS,
    Profile,
    ProfileIn,
    RiskLevel,
    SensitiveGoods,
    SensitiveGoodsIn,
)
from tracking_api.services.risk import EDITORS

router = APIRouter(prefix="/risk", tags=["risk"])

Editor = Annotated[Principal, Depends(require(*EDITORS))]


def _hs_prefix(value: object) -> object:
    if not isinstance(value, str) or not re.fullmatch(HS_PREFIX, value):
        raise ValueError(f"hs_prefix {value!r} is not an HS code prefix of 2 to 10 digits")
    return value


HsPrefix = Annotated[str, BeforeValidator(_hs_prefix), Path(description="HS code prefix, 2 to 10 digits")]
Level = Annotated[RiskLevel, one_of("level", RISK_LEVELS), Path(description="low, medium or high")]

_GOODS = "SELECT hs_prefix, label, points, updated_at, updated_by FROM sensitive_goods"
_UPSERT_GOODS = """
INSERT INTO sensitive_goods (hs_prefix, label, points, updated_by) VALUES (%s, %s, %s, %s)
ON CONFLICT (hs_prefix) DO UPDATE
SET label = excluded.label, points = excluded.points, updated_at = now(), updated_by = excluded.updated_by
RETURNING hs_prefix, label, points, updated_at, updated_by
"""
# Advisory lock namespace of sensitive-goods edits (the other key is the prefix's hash).
_GOODS_LOCK = 7710026
_PROFILES = ("SELECT level, corridor_factor, stop_min_s, report_interval_s, border_dwell_factor, severity_shift, "
             "updated_at, updated_by FROM risk_profiles")
_UPDATE_PROFILE = """
UPDATE risk_profiles SET corridor_factor = %(corridor_factor)s, stop_min_s = %(stop_min_s)s,
    report_interval_s = %(report_interval_s)s, border_dwell_factor = %(border_dwell_factor)s,
    severity_shift = %(severity_shift)s, updated_at = now(), updated_by = %(by)s
WHERE level = %(level)s
"""
# The history the audit entry keeps: what the values were (None: created).
_EDITABLE_GOODS = ("label", "points")
_EDITABLE_PROFILE = tuple(ProfileIn.model_fields)

_EDIT_ERRORS: dict[int | str, dict[str, Any]] = {**UNAUTHORIZED, **forbidden(*EDITORS)}
_GOODS_NOT_FOUND = error(404, "No entry for this HS prefix", "no sensitive goods entry for hs_prefix '2710'")


# Sensitive goods

@router.get("/sensitive-goods", response_model=list[SensitiveGoods], summary="The sensitive-goods list",
            responses={**UNAUTHORIZED, 200: {"content": {"application/json": {"example": [GOODS_EXAMPLE]}}}})
async def list_goods(conn: Conn, caller: Caller) -> list[SensitiveGoods]:
    """Every entry, by HS prefix. A shipment declaring an HS code that starts with a prefix
    scores that entry's points (the highest of its matches)."""
    rows = await (await conn.execute(f"{_GOODS} ORDER BY hs_prefix")).fetchall()
    return [SensitiveGoods.model_validate(r) for r in rows]


@router.get("/sensitive-goods/{hs_prefix}", response_model=SensitiveGoods, summary="One sensitive-goods entry",
            responses={**UNAUTHORIZED, **_GOODS_NOT_FOUND})
async def get_goods(conn: Conn, caller: Caller, hs_prefix: HsPrefix) -> SensitiveGoods:
    return await _goods(conn, hs_prefix)


@router.put("/sensitive-goods/{hs_prefix}", response_model=SensitiveGoods,
            summary="Add or change a sensitive-goods entry",
            responses={**_EDIT_ERRORS, 201: {"model": SensitiveGoods, "description": "Added"},
                       **validation("Bad prefix or body", ["body", "points"],
                                    "Input should be less than or equal to 100")})
async def put_goods(conn: Conn, caller: Editor, hs_prefix: HsPrefix, body: SensitiveGoodsIn,
                    response: Response) -> SensitiveGoods:
    """Adds the entry (201) or replaces its label and points (200); audited
    (``risk.sensitive_goods.put``, with the values before). Shipments registered from
    then on score it; registered ones keep their score until re-assessed."""
    async with conn.transaction():
        # Two PUTs of a new prefix at once: the second waits, then sees the first's row (201 once).
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_GOODS_LOCK, hs_prefix))
        before = await _goods_or_none(conn, hs_prefix)
        row = await (await conn.execute(_UPSERT_GOODS, (hs_prefix, body.label, body.points,
                                                        caller.subject))).fetchone()
        assert row is not None
        await audit.record(conn, caller, "risk.sensitive_goods.put", "sensitive_goods", hs_prefix,
                           {"before": _values(before, _EDITABLE_GOODS), "after": body.model_dump()})
    if before is None:
        response.status_code = status.HTTP_201_CREATED
    return SensitiveGoods.model_validate(row)


@router.delete("/sensitive-goods/{hs_prefix}", response_model=SensitiveGoods,
               summary="Remove a sensitive-goods entry", responses={**_EDIT_ERRORS, **_GOODS_NOT_FOUND})
async def delete_goods(conn: Conn, caller: Editor, hs_prefix: HsPrefix) -> SensitiveGoods:
    """Removes the entry and answers with what it was; audited
    (``risk.sensitive_goods.deleted``, with the values)."""
    async with conn.transaction():
        before = await _goods(conn, hs_prefix, lock=True)
        await conn.execute("DELETE FROM sensitive_goods WHERE hs_prefix = %s", (hs_prefix,))
        await audit.record(conn, caller, "risk.sensitive_goods.deleted", "sensitive_goods", hs_prefix,
                           {"before": _values(before, _EDITABLE_GOODS)})
    return before


async def _goods_or_none(conn: Conn, hs_prefix: str, lock: bool = False) -> SensitiveGoods | None:
    query = f"{_GOODS} WHERE hs_prefix = %s{' FOR UPDATE' if lock else ''}"
    row = await (await conn.execute(query, (hs_prefix,))).fetchone()
    return None if row is None else SensitiveGoods.model_validate(row)


async def _goods(conn: Conn, hs_prefix: str, lock: bool = False) -> SensitiveGoods:
    found = await _goods_or_none(conn, hs_prefix, lock)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sensitive goods entry for hs_prefix {hs_prefix!r}")
    return found


# Profiles

@router.get("/profiles", response_model=list[Profile], summary="The risk profiles (thresholds per level)",
            responses={**UNAUTHORIZED, 200: {"content": {"application/json": {"example": [PROFILE_EXAMPLE]}}}})
async def list_profiles(conn: Conn, caller: Caller) -> list[Profile]:
    """The three levels' thresholds, low, medium, high."""
    rows = await (await conn.execute(f"{_PROFILES} ORDER BY array_position(%s, level)",
                                     (list(RISK_LEVELS),))).fetchall()
    return [Profile.model_validate(r) for r in rows]


@router.get("/profiles/{level}", response_model=Profile, summary="One risk profile", responses=UNAUTHORIZED)
async def get_profile(conn: Conn, caller: Caller, level: Level) -> Profile:
    return await _profile(conn, level)


@router.put("/profiles/{level}", response_model=Profile, summary="Change a risk profile",
            responses={**_EDIT_ERRORS, **validation("Bad level or body; the message names the field",
                                                    ["body", "corridor_factor"],
                                                    "Input should be less than or equal to 1")})
async def put_profile(conn: Conn, caller: Editor, level: Level, body: ProfileIn) -> Profile:
    """Replaces the level's thresholds (every field); audited (``risk.profile.put``, with
    the values before). The engine reloads them with the geometry's next version: the
    thresholds apply to shipments of that level from their next fixes."""
    async with conn.transaction():
        before = await _profile(conn, level, lock=True)
        await conn.execute(_UPDATE_PROFILE, body.model_dump() | {"level": level, "by": caller.subject})
        await audit.record(conn, caller, "risk.profile.put", "risk_profile", level,
                           {"before": _values(before, _EDITABLE_PROFILE), "after": body.model_dump()})
        return await _profile(conn, level)


async def _profile(conn: Conn, level: str, lock: bool = False) -> Profile:
    query = f"{_PROFILES} WHERE level = %s{' FOR UPDATE' if lock else ''}"
    row = await (await conn.execute(query, (level,))).fetchone()
    if row is None:  # the migration inserts all three; only a hand-edited database lacks one
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no risk profile for level {level!r}")
    return Profile.model_validate(row)


def _values(current: SensitiveGoods | Profile | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    return None if current is None else current.model_dump(include=set(fields))
