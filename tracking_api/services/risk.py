"""A shipment's risk score, explainable: each factor adds points with a reason in words.

- goods: the highest ``points`` of the sensitive-goods entries whose HS prefix starts one
  of the declared HS codes; no goods declared at all (a v1 declaration) adds 20.
- operator: 15 per confirmed alert (outcome in ``protocol.alerts.CONFIRMED``) on the
  operator's other shipments within the history window, at most 45. A consolidated truck's
  alert counts once (per incident).
- route: when at least 10 % of the route's other shipments departed within the window had
  a confirmed alert within it, 20.

Level: >= 50 high, >= 20 medium, else low. An override (an operator's, with a reason,
audited) wins over the computed level. The window is ``CTT_RISK_HISTORY_MONTHS`` (12).
Registration (``services.shipments``) and the override call ``assess`` in their own
transaction. Definitions: docs/alerts.md, "Risk-based monitoring".
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.alerts import CONFIRMED, RISK_LEVELS
from tracking_api import audit
from tracking_api.auth import Principal, Role
from tracking_api.schemas.errors import invalid
from tracking_api.schemas.risk import REASON_MAX, Risk, RiskLevel, RiskReason, risk
from tracking_api.services.errors import NotFoundError, ServiceError

Conn = AsyncConnection[DictRow]

UNDECLARED_POINTS = 20
OPERATOR_POINTS = 15
OPERATOR_MAX = 45
ROUTE_SHARE = 0.10
ROUTE_POINTS = 20
HIGH_FROM = 50
MEDIUM_FROM = 20
# Who may force a shipment's level and edit the sensitive goods and the profiles (every role reads).
EDITORS: tuple[Role, ...] = ("admin", "operator")


class RiskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTT_RISK_", extra="ignore")

    # How far back the operator's and the route's record go, months.
    history_months: int = Field(default=12, ge=1, le=120)


class ForbiddenError(ServiceError):
    status_code = 403


# Per goods line, the sensitive entry with the most points whose prefix starts its HS code
# (prefixes are digits only, checked by the database, so LIKE needs no escaping).
_GOODS = """
SELECT g.line, g.hs_code, m.hs_prefix, m.label, m.points
FROM shipment_goods g
LEFT JOIN LATERAL (
    SELECT sg.hs_prefix, sg.label, sg.points FROM sensitive_goods sg
    WHERE g.hs_code LIKE sg.hs_prefix || '%%'
    ORDER BY sg.points DESC, length(sg.hs_prefix) DESC LIMIT 1) m ON true
WHERE g.shipment_id = %(id)s
ORDER BY m.points DESC NULLS LAST, g.line
"""
_CONFIRMED_ALERT = """
a.outcome = ANY(%(confirmed)s) AND NOT (a.detail ? 'withdrawn')
AND a.started_at >= now() - make_interval(months => %(months)s)
"""
_OPERATOR = f"""
SELECT count(DISTINCT coalesce(a.incident, a.id)) AS confirmed
FROM alerts a JOIN shipments o ON o.id = a.shipment_id
WHERE o.operator = %(operator)s AND o.id <> %(id)s AND {_CONFIRMED_ALERT}
"""
_ROUTE = f"""
SELECT count(*) AS shipments,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM alerts a WHERE a.shipment_id = o.id AND {_CONFIRMED_ALERT}))
           AS confirmed
FROM shipments o
WHERE o.route_id = %(route)s AND o.id <> %(id)s AND o.departed_at >= now() - make_interval(months => %(months)s)
"""
_GOODS_MANY = _GOODS.replace("WHERE g.shipment_id = %(id)s", "WHERE g.shipment_id = ANY(%(ids)s)").replace(
    "ORDER BY m.points", "ORDER BY g.shipment_id, m.points").replace("SELECT g.line", "SELECT g.shipment_id, g.line")
_LOCK = "SELECT id, reference, operator, route_id, risk, risk_level FROM shipments WHERE id = %s FOR UPDATE"
_LOCK_MANY = "SELECT id, operator, route_id FROM shipments WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
_STORE = "UPDATE shipments SET risk = %s, risk_level = %s WHERE id = %s"


def level_of(score: int) -> RiskLevel:
    if score >= HIGH_FROM:
        return "high"
    if score >= MEDIUM_FROM:
        return "medium"
    return "low"


async def assess(conn: Conn, shipment_id: int, history_months: int | None = None) -> None:
    """Scores shipment ``shipment_id`` from its goods, its operator's and its route's record,
    and stores ``shipments.risk`` and ``risk_level`` (an override in ``risk`` is kept and wins).
    ``history_months``: default ``CTT_RISK_HISTORY_MONTHS``. ``NotFoundError`` if it does not exist."""
    months = history_months if history_months is not None else RiskSettings().history_months
    async with conn.transaction():
        row = await (await conn.execute(_LOCK, (shipment_id,))).fetchone()
        if row is None:
            raise NotFoundError(f"shipment {shipment_id} does not exist")
        params = {"id": shipment_id, "operator": row["operator"], "route": row["route_id"], "months": months,
                  "confirmed": sorted(CONFIRMED)}
        reasons = [*await _goods(conn, params), *await _operator(conn, params), *await _route(conn, params)]
        await conn.execute(_STORE, _scored(reasons, row["risk"].get("override"), shipment_id))


def _scored(reasons: list[RiskReason], previous: dict[str, Any] | None, shipment_id: int) -> tuple[Any, ...]:
    """``_STORE``'s parameters: the score with its reasons, an override kept (it wins)."""
    score = sum(r.points for r in reasons)
    stored: dict[str, Any] = {"score": score, "computed": level_of(score),
                              "reasons": [r.model_dump() for r in reasons]}
    if previous is not None:
        stored["override"] = previous
    in_force = previous["level"] if previous is not None else stored["computed"]
    return Jsonb(stored), in_force, shipment_id


async def assess_new(conn: Conn, shipment_ids: list[int]) -> None:
    """``assess`` for shipments registered in the caller's transaction, set-based (the bulk
    import): one goods query for all, one record query per distinct operator and route. Only
    for new shipments: they have no alert, no departure and no override of their own, so the
    records "of the others" are everyone's."""
    months = RiskSettings().history_months
    if not shipment_ids:
        return
    rows = await (await conn.execute(_LOCK_MANY, (shipment_ids,))).fetchall()
    goods: dict[int, list[DictRow]] = {}
    for line in await (await conn.execute(_GOODS_MANY, {"ids": shipment_ids})).fetchall():
        goods.setdefault(line["shipment_id"], []).append(line)
    base = {"id": 0, "months": months, "confirmed": sorted(CONFIRMED)}
    operators = {o: await _operator(conn, base | {"operator": o}) for o in {r["operator"] for r in rows}}
    routes = {r: await _route(conn, base | {"route": r}) for r in {r["route_id"] for r in rows}}
    stores = [_scored([*_goods_reasons(goods.get(r["id"], [])), *operators[r["operator"]], *routes[r["route_id"]]],
                      None, r["id"]) for r in rows]
    async with conn.cursor() as cur:
        await cur.executemany(_STORE, stores)


async def _goods(conn: Conn, params: dict[str, Any]) -> list[RiskReason]:
    return _goods_reasons(await (await conn.execute(_GOODS, params)).fetchall())


def _goods_reasons(lines: list[DictRow]) -> list[RiskReason]:
    """From one shipment's goods lines, the best-scoring first."""
    if not lines:
        return [RiskReason(factor="undeclared", points=UNDECLARED_POINTS, detail="goods not declared")]
    best = lines[0]  # ordered by points, highest first
    if best["points"] is None or best["points"] == 0:
        return []
    return [RiskReason(factor="goods", points=best["points"],
                       detail=f"HS {best['hs_code']} (line {best['line']}) matches {best['hs_prefix']} "
                              f"{best['label']}")]


async def _operator(conn: Conn, params: dict[str, Any]) -> list[RiskReason]:
    if params["operator"] is None:
        return []
    row = await (await conn.execute(_OPERATOR, params)).fetchone()
    confirmed = row["confirmed"] if row else 0
    if confirmed == 0:
        return []
    points = min(confirmed * OPERATOR_POINTS, OPERATOR_MAX)
    return [RiskReason(factor="operator", points=points,
                       detail=f"{confirmed} confirmed alert{'s' if confirmed > 1 else ''} on operator "
                              f"{params['operator']}'s shipments in {params['months']} months "
                              f"({OPERATOR_POINTS} each, at most {OPERATOR_MAX})")]


async def _route(conn: Conn, params: dict[str, Any]) -> list[RiskReason]:
    row = await (await conn.execute(_ROUTE, params)).fetchone()
    if row is None or row["shipments"] == 0 or row["confirmed"] / row["shipments"] < ROUTE_SHARE:
        return []
    return [RiskReason(factor="route", points=ROUTE_POINTS,
                       detail=f"{row['confirmed']} of {row['shipments']} shipments departed on route "
                              f"{params['route']} in {params['months']} months had a confirmed alert "
                              f"({100 * row['confirmed'] / row['shipments']:.0f} %, {ROUTE_SHARE:.0%} or more)")]


async def current(conn: Conn, shipment_id: int) -> Risk:
    """Shipment ``shipment_id``'s risk as the API shows it (no visibility check: the caller's)."""
    row = await (await conn.execute("SELECT risk, risk_level FROM shipments WHERE id = %s",
                                    (shipment_id,))).fetchone()
    if row is None:
        raise NotFoundError(f"shipment {shipment_id} does not exist")
    return risk(row["risk"], row["risk_level"])


async def override(conn: Conn, caller: Principal, shipment_id: int, level: RiskLevel | None,
                   reason: str) -> Risk:
    """Forces shipment ``shipment_id``'s level to ``level`` (None: back to the computed one),
    re-scores it and audits ``shipment.risk_overridden`` with the reason, in one transaction.
    403 for a role other than admin or operator, 404 for an unknown shipment, 422 naming
    ``level`` or ``reason``."""
    if caller.role not in EDITORS:
        raise ForbiddenError(f"role {caller.role!r} may not override a shipment's risk "
                             f"(allowed: {', '.join(EDITORS)})")
    if level is not None and level not in RISK_LEVELS:
        raise invalid((("body", "level"), f"level {level!r} is not one of {', '.join(RISK_LEVELS)} or null"))
    if not reason.strip() or len(reason) > REASON_MAX:
        raise invalid((("body", "reason"), f"reason must be 1 to {REASON_MAX} characters, not blank"))
    async with conn.transaction():
        row = await (await conn.execute(_LOCK, (shipment_id,))).fetchone()
        if row is None:
            raise NotFoundError(f"shipment {shipment_id} does not exist")
        now = await (await conn.execute("SELECT now() AS now")).fetchone()
        assert now is not None
        stored = {k: v for k, v in row["risk"].items() if k != "override"}
        if level is not None:
            stored["override"] = {"level": level, "reason": reason, "by": caller.subject,
                                  "at": now["now"].astimezone(UTC).isoformat()}
        await conn.execute("UPDATE shipments SET risk = %s WHERE id = %s", (Jsonb(stored), shipment_id))
        await assess(conn, shipment_id)
        after = await current(conn, shipment_id)
        await audit.record(conn, caller, "shipment.risk_overridden", "shipment", shipment_id,
                           {"reference": row["reference"], "level": level, "reason": reason,
                            "from": row["risk_level"], "to": after.level})
        return after
