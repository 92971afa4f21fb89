"""``/kpi``: performance figures over a time window, per route and alert type.

One SQL statement per figure group, aggregated by PostgreSQL (``percentile_cont``
interpolates linearly, so the p90 of 10, 20 and 30 h is 28 h). Readable by every
role; an officer's figures cover only shipments touching their region.
Definitions of every figure: docs/kpi.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from psycopg import sql
from pydantic import AfterValidator, AwareDatetime

from protocol.alerts import CONFIRMED, OUTCOMES, RISK_LEVELS, SEVERITIES
from tracking_api.access import REGION_SCOPED, visible
from tracking_api.auth import Principal
from tracking_api.deps import Caller, Conn
from tracking_api.schemas.alerts import one_of
from tracking_api.schemas.errors import UNAUTHORIZED, invalid, validation
from tracking_api.schemas.geography import REGION_CODE
from tracking_api.schemas.kpi import (
    AlertCount,
    AnswerKpi,
    CountryKpi,
    Kpi,
    LevelKpi,
    OutcomeKpi,
    Period,
    PostKpi,
    ResponseFigures,
    ResponseKpi,
    RiskKpi,
    RouteKpi,
    SegmentKpi,
    SeverityRegionResponse,
    StopKpi,
    TimeRelease,
    TypeOutcomes,
    TypeResponse,
    Window,
)

router = APIRouter(tags=["kpi"])

DEFAULT_WINDOW = timedelta(days=30)
_BIGINT_MAX = 2**63 - 1

# Each statement is formatted with {where}: the caller's visibility and the route filter, on ``s``.
# %(from)s/%(to)s bound the window, %(now)s is the database clock read once per request.
_ROUTES = sql.SQL("""
SELECT r.id, r.name,
       count(*) FILTER (WHERE x.departed) AS departed,
       count(*) FILTER (WHERE x.arrived) AS arrived,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.transit_h) FILTER (WHERE x.arrived) AS transit_median_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.transit_h) FILTER (WHERE x.arrived) AS transit_p90_h,
       avg(x.transit_h) FILTER (WHERE x.arrived) AS transit_mean_h,
       avg((s.arrived_at <= s.deadline)::int::float8) FILTER (WHERE x.arrived) AS on_time_share,
       count(*) FILTER (WHERE s.status = 'in_transit') AS in_transit_now,
       count(*) FILTER (WHERE s.status = 'in_transit' AND s.deadline < %(now)s) AS overdue_now
FROM shipments s
JOIN routes r ON r.id = s.route_id
CROSS JOIN LATERAL (SELECT
    s.departed_at >= %(from)s AND s.departed_at < %(to)s AS departed,
    s.arrived_at >= %(from)s AND s.arrived_at < %(to)s AS arrived,
    extract(epoch FROM s.arrived_at - s.departed_at)::float8 / 3600 AS transit_h) x
WHERE {where} AND (x.departed OR x.arrived OR s.status = 'in_transit')
GROUP BY r.id, r.name
ORDER BY r.id
""")
# Stops still lasting count up to now: a truck parked for hours is the figure that matters.
_STOPS = sql.SQL("""
SELECT r.id AS route_id, r.name AS route_name, count(*) AS stops,
       count(*) FILTER (WHERE a.ended_at IS NULL) AS ongoing,
       sum(x.minutes) AS total_min,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.minutes) AS median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.minutes) AS p90_min
FROM alerts a
JOIN shipments s ON s.id = a.shipment_id
JOIN routes r ON r.id = s.route_id
CROSS JOIN LATERAL (SELECT
    greatest(extract(epoch FROM coalesce(a.ended_at, %(now)s) - a.started_at)::float8, 0) / 60 AS minutes) x
WHERE {where} AND a.type = 'unscheduled_stop' AND NOT (a.detail ? 'withdrawn')
  AND a.started_at >= %(from)s AND a.started_at < %(to)s
GROUP BY r.id, r.name
ORDER BY r.id
""")
_ALERTS = sql.SQL("""
SELECT r.id AS route_id, r.name AS route_name, a.type, a.severity, count(*) AS count
FROM alerts a
JOIN shipments s ON s.id = a.shipment_id
JOIN routes r ON r.id = s.route_id
WHERE {where} AND NOT (a.detail ? 'withdrawn') AND a.started_at >= %(from)s AND a.started_at < %(to)s
GROUP BY r.id, r.name, a.type, a.severity
ORDER BY r.id, a.type, a.severity
""")
# created_at, not started_at: a late alert (store-and-forward backlog) could not be answered
# before the control room saw it. Open alerts are counted whatever their age: a backlog
# older than the window is still a backlog. The empty grouping set is the every-type row,
# present even when nothing matched.
_RESPONSE = sql.SQL("""
SELECT a.type,
       count(x.minutes) FILTER (WHERE x.created) AS answered,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.minutes) FILTER (WHERE x.created) AS median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.minutes) FILTER (WHERE x.created) AS p90_min,
       count(*) FILTER (WHERE a.status = 'open') AS open,
       extract(epoch FROM %(now)s - min(a.created_at) FILTER (WHERE a.status = 'open'))::float8 / 60
           AS oldest_open_min
FROM alerts a
JOIN shipments s ON s.id = a.shipment_id
CROSS JOIN LATERAL (SELECT
    a.created_at >= %(from)s AND a.created_at < %(to)s AS created,
    extract(epoch FROM coalesce(a.acknowledged_at, a.resolved_at) - a.created_at)::float8 / 60 AS minutes) x
WHERE {where} AND NOT (a.detail ? 'withdrawn') AND (x.created OR a.status = 'open')
GROUP BY GROUPING SETS ((a.type), ())
ORDER BY a.type NULLS FIRST
""")

# The Time Release and risk statements are also the Grafana panels' (tests/dashboards/test_grafana.py
# checks that the dashboard runs them, with Grafana's time range and no region filter).
# Per level, always all three (the levels' list drives it). A shipment counts in the window
# when it was in transit at some time within it; alerts by their fix time (started_at).
RISK_SQL = """
WITH levels AS (SELECT level, ord FROM unnest(%(levels)s::text[]) WITH ORDINALITY AS l (level, ord)),
monitored AS (
    SELECT s.risk_level AS level, count(*) AS shipments FROM shipments s
    WHERE {where} AND s.departed_at < %(to)s AND coalesce(s.arrived_at, 'infinity') >= %(from)s
    GROUP BY s.risk_level),
raised AS (
    SELECT s.risk_level AS level, count(*) AS alerts,
           count(*) FILTER (WHERE a.outcome = ANY(%(confirmed)s)) AS confirmed,
           count(*) FILTER (WHERE a.outcome = 'false_alarm') AS false_alarms,
           count(*) FILTER (WHERE a.status <> 'resolved') AS open
    FROM alerts a JOIN shipments s ON s.id = a.shipment_id
    WHERE {where} AND NOT (a.detail ? 'withdrawn') AND a.started_at >= %(from)s AND a.started_at < %(to)s
    GROUP BY s.risk_level)
SELECT l.level, coalesce(m.shipments, 0) AS shipments, coalesce(r.alerts, 0) AS alerts,
       coalesce(r.confirmed, 0) AS confirmed, coalesce(r.false_alarms, 0) AS false_alarms,
       coalesce(r.open, 0) AS open
FROM levels l LEFT JOIN monitored m USING (level) LEFT JOIN raised r USING (level)
ORDER BY l.ord
"""
_RISK = sql.SQL(RISK_SQL)

# Time Release figures, from the milestones (shipment_events) the engine records on fix time.
# Per border post: its departures in the window, with the departed milestone's stationary_s
# (dwell) and inside_s (arrival to departure).
POSTS_SQL = """
SELECT e.office_code, z.country, count(*) AS visits,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.stationary_s) AS dwell_median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.stationary_s) AS dwell_p90_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.inside_s) AS inside_median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.inside_s) AS inside_p90_s
FROM shipment_events e
JOIN shipments s ON s.id = e.shipment_id
JOIN zones z ON z.office_code = e.office_code AND z.kind = 'border_post'
CROSS JOIN LATERAL (SELECT (e.detail->>'stationary_s')::float8 AS stationary_s,
                           (e.detail->>'inside_s')::float8 AS inside_s) x
WHERE {where} AND e.kind = 'departed' AND e.at >= %(from)s AND e.at < %(to)s
GROUP BY e.office_code, z.country
ORDER BY e.office_code
"""
_POSTS = sql.SQL(POSTS_SQL)
# Per segment between consecutive offices of an itinerary: the first arrival at an office
# (in the window) minus the last departure, before it, from the office before it. Only the
# shipments with an arrival in the window are looked at (the window is what keeps it fast).
SEGMENTS_SQL = """
WITH arrived AS (
    SELECT e.shipment_id, (e.detail->>'position')::int AS position, min(e.at) AS at
    FROM shipment_events e
    WHERE e.kind = 'arrived' AND e.shipment_id IN (
        SELECT w.shipment_id FROM shipment_events w
        WHERE w.kind = 'arrived' AND w.at >= %(from)s AND w.at < %(to)s)
    GROUP BY e.shipment_id, (e.detail->>'position')::int),
offices AS (
    SELECT o.shipment_id, o.position, o.office_code,
           lag(o.position) OVER w AS previous, lag(o.office_code) OVER w AS previous_code
    FROM shipment_offices o WHERE o.shipment_id IN (SELECT shipment_id FROM arrived)
    WINDOW w AS (PARTITION BY o.shipment_id ORDER BY o.position)),
trips AS (
    SELECT n.previous_code AS "from", n.office_code AS "to", extract(epoch FROM a.at - max(d.at))::float8 AS seconds
    FROM arrived a
    JOIN offices n ON n.shipment_id = a.shipment_id AND n.position = a.position
    JOIN shipment_events d ON d.shipment_id = a.shipment_id AND d.kind = 'departed'
                          AND (d.detail->>'position')::int = n.previous AND d.at < a.at
    JOIN shipments s ON s.id = a.shipment_id
    WHERE {where} AND a.at >= %(from)s AND a.at < %(to)s
    GROUP BY a.shipment_id, a.position, a.at, n.previous_code, n.office_code)
SELECT "from", "to", count(*) AS trips,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90_s
FROM trips
GROUP BY "from", "to"
ORDER BY 1, 2
"""
_SEGMENTS = sql.SQL(SEGMENTS_SQL)
# Per country: from the crossing into it (its first fix there; the shipment's departure for
# the country it started in) to the crossing out, counted when the crossing out is in the
# window. A crossing out of another country than the previous one entered (a crossing the
# engine never confirmed) gives no figure.
COUNTRIES_SQL = """
WITH crossings AS (
    SELECT e.shipment_id, e.at, e.detail->>'from' AS left_country,
           lag(e.at) OVER w AS entered_at, lag(e.detail->>'to') OVER w AS entered_country
    FROM shipment_events e
    WHERE e.kind = 'border_crossed' AND e.shipment_id IN (
        SELECT c.shipment_id FROM shipment_events c
        WHERE c.kind = 'border_crossed' AND c.at >= %(from)s AND c.at < %(to)s)
    WINDOW w AS (PARTITION BY e.shipment_id ORDER BY e.at))
SELECT c.left_country AS country, count(*) AS trips,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.seconds) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.seconds) AS p90_s
FROM crossings c
JOIN shipments s ON s.id = c.shipment_id
CROSS JOIN LATERAL (SELECT extract(epoch FROM c.at - coalesce(c.entered_at, s.departed_at))::float8 AS seconds) x
WHERE {where} AND c.at >= %(from)s AND c.at < %(to)s AND c.left_country IS NOT NULL AND x.seconds >= 0
  AND (c.entered_at IS NULL OR c.entered_country = c.left_country)
GROUP BY c.left_country
ORDER BY 1
"""
_COUNTRIES = sql.SQL(COUNTRIES_SQL)
# The CSV: one table, a section column, the columns of every section (empty where not its own).
CSV_COLUMNS = ("section", "office_code", "from", "to", "country", "count", "dwell_median_s", "dwell_p90_s",
               "inside_median_s", "inside_p90_s", "median_s", "p90_s")


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from exc


Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
Since = Annotated[Instant | None, Query(description="Window start, ISO 8601 with a time zone; default until - 30 days")]
Until = Annotated[Instant | None, Query(description="Window end, exclusive, ISO 8601 with a time zone; default now")]
Format = Literal["json", "csv"]
FORMATS: tuple[Format, ...] = get_args(Format)
_BAD_PERIOD = validation("Bad window: a time without a time zone, or since not before until", ["query", "since"],
                         "since 2026-11-23T00:00:00+00:00 must be before until 2026-11-01T00:00:00+00:00")


@router.get("/kpi", response_model=Kpi, summary="Performance figures: transit times, stops, alerts, response times",
            responses={**UNAUTHORIZED, **validation(
                "Bad window: a time without a time zone, or from not before to", ["query", "from"],
                "from 2026-11-23T00:00:00+00:00 must be before to 2026-11-01T00:00:00+00:00")})
async def kpi(
    conn: Conn, caller: Caller,
    start: Annotated[Instant | None, Query(alias="from", description="Window start, ISO 8601 with a time zone; "
                                                                     "default to - 30 days")] = None,
    end: Annotated[Instant | None, Query(alias="to", description="Window end, exclusive, ISO 8601 with a time "
                                                                 "zone; default now")] = None,
    route: Annotated[int | None, Query(ge=1, le=_BIGINT_MAX, description="Only this route")] = None,
) -> Kpi:
    """Per route: transit times of shipments arrived in the window, on-time share,
    shipments in transit and overdue now; unscheduled stop times; alert counts by
    type and severity; and, per alert type, the time from an alert's creation to
    its acknowledgement, with the alerts still unanswered. Withdrawn alerts are
    never counted. An officer's figures cover only shipments touching their region."""
    start, end, now = await _window(conn, start, end, ("from", "to"))
    params = {"from": start, "to": end, "now": now}
    where = _where(caller, route)
    routes = [RouteKpi.model_validate(r) for r in await _rows(conn, _ROUTES, where, params)]
    stops = [StopKpi.model_validate(r) for r in await _rows(conn, _STOPS, where, params)]
    alerts = [AlertCount.model_validate(r) for r in await _rows(conn, _ALERTS, where, params)]
    response = _response(await _rows(conn, _RESPONSE, where, params))
    return Kpi(window=Window.model_validate({"from": start, "to": end}), generated_at=now, routes=routes,
               stops=stops, alerts=alerts, response=response)


async def _window(conn: Conn, start: datetime | None, end: datetime | None,
                  names: tuple[str, str]) -> tuple[datetime, datetime, datetime]:
    """``[start, end)`` with the defaults (end: now, start: end - 30 days) and the database's
    now; 422 naming ``names[0]`` unless start is before end."""
    row = await (await conn.execute("SELECT now() AS now")).fetchone()
    assert row is not None
    now: datetime = row["now"].astimezone(UTC)
    end = end or now
    start = start or _before(end, DEFAULT_WINDOW)
    if start >= end:
        raise invalid((("query", names[0]), f"{names[0]} {start.isoformat()} must be before {names[1]} "
                                             f"{end.isoformat()}"))
    return start, end, now


def _before(end: datetime, span: timedelta) -> datetime:
    try:
        return end - span
    except OverflowError:  # an end in year 1: the window starts at the first representable instant
        return datetime.min.replace(tzinfo=UTC)


def _where(caller: Principal, route: int | None) -> sql.Composable:
    conditions = [visible(caller)]
    if route is not None:
        conditions.append(sql.SQL("s.route_id = {}").format(sql.Literal(route)))
    return sql.SQL(" AND ").join(conditions)


async def _rows(conn: Conn, query: sql.SQL, where: sql.Composable, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await (await conn.execute(query.format(where=where), params)).fetchall()


def _response(rows: list[dict[str, Any]]) -> ResponseKpi:
    """The every-type row (type null, always present) and one per type."""
    overall, *by_type = rows
    return ResponseKpi(overall=ResponseFigures.model_validate(overall),
                       by_type=[TypeResponse.model_validate(r) for r in by_type])


@router.get("/kpi/risk", response_model=RiskKpi, summary="Per risk level: shipments, alerts and their outcomes",
            responses={**UNAUTHORIZED, **_BAD_PERIOD})
async def risk_kpi(conn: Conn, caller: Caller, since: Since = None, until: Until = None) -> RiskKpi:
    """Per risk level (low, medium, high; the level in force on each shipment): the
    shipments in transit at some time in the window, the alerts raised on them in it, and
    how officers resolved those (confirmed: confirmed_irregularity or goods_seized; false
    alarms; not resolved yet). The feedback a risk unit tunes the profiles with
    (docs/kpi.md). An officer's figures cover only shipments touching their region."""
    start, end, now = await _window(conn, since, until, ("since", "until"))
    params = {"from": start, "to": end, "levels": list(RISK_LEVELS), "confirmed": sorted(CONFIRMED)}
    rows = await _rows(conn, _RISK, visible(caller), params)
    return RiskKpi(period=Period(since=start, until=end), generated_at=now,
                   levels=[LevelKpi.model_validate(r) for r in rows])


@router.get("/kpi/time-release", response_model=TimeRelease,
            summary="Time Release figures: border posts, segments, countries (JSON or CSV)",
            responses={**UNAUTHORIZED, **_BAD_PERIOD,
                       200: {"content": {"text/csv": {"example": ",".join(CSV_COLUMNS) + "\r\n"
                                                                 "post,KEMAL,,,KEN,212,9300.0,20500.0,11200.0,"
                                                                 "24800.0,,\r\n"}},
                             "description": "JSON, or with format=csv one CSV table (a section column: post, "
                                            "segment, country)"}})
async def time_release(
    conn: Conn, caller: Caller, since: Since = None, until: Until = None,
    format_: Annotated[Format, one_of("format", FORMATS),
                       Query(alias="format", description="json (default) or csv")] = "json",
) -> Response | TimeRelease:
    """Per border post: departures in the window with the median and p90 of the time
    stationary inside (dwell) and of arrival to departure. Per segment between consecutive
    offices of an itinerary: arrival at the next minus departure from the previous. Per
    country: time from entering it (or departing, for the country of departure) to the
    crossing out. All from the shipments' milestones, on fix time (docs/kpi.md). An
    officer's figures cover only shipments touching their region."""
    start, end, now = await _window(conn, since, until, ("since", "until"))
    params = {"from": start, "to": end}
    where = visible(caller)
    figures = TimeRelease(
        period=Period(since=start, until=end), generated_at=now,
        posts=[PostKpi.model_validate(r) for r in await _rows(conn, _POSTS, where, params)],
        segments=[SegmentKpi.model_validate(r) for r in await _rows(conn, _SEGMENTS, where, params)],
        countries=[CountryKpi.model_validate(r) for r in await _rows(conn, _COUNTRIES, where, params)])
    if format_ == "json":
        return figures
    name = f"time-release-{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(_csv(figures), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv(figures: TimeRelease) -> Iterator[str]:
    """The header, then one line per post, segment and country (as the JSON, in its order)."""
    rows: list[dict[str, Any]] = [
        *({"section": "post", "count": p.visits, **p.model_dump(exclude={"visits"})} for p in figures.posts),
        *({"section": "segment", "count": g.trips, **g.model_dump(by_alias=True, exclude={"trips"})}
          for g in figures.segments),
        *({"section": "country", "count": c.trips, **c.model_dump(exclude={"trips"})} for c in figures.countries)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS)
    for row in ({c: c for c in CSV_COLUMNS}, *rows):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


# Issue 14. Per severity and region (an alert counts in every region its shipment touches; a
# region-scoped caller sees their own region's row only): alerts created in the window, the
# minutes to the first answer and to resolution.
_ANSWERS = sql.SQL("""
SELECT a.severity, sr.region_code AS region, count(*) AS alerts,
       count(x.ack_min) AS acknowledged,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ack_min) AS ack_median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.ack_min) AS ack_p90_min,
       count(x.resolve_min) AS resolved,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.resolve_min) AS resolve_median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.resolve_min) AS resolve_p90_min,
       count(*) FILTER (WHERE a.escalation_level > 0) AS escalated
FROM alerts a
JOIN shipments s ON s.id = a.shipment_id
LEFT JOIN shipment_regions sr ON sr.shipment_id = s.id
CROSS JOIN LATERAL (SELECT
    extract(epoch FROM coalesce(a.acknowledged_at, a.resolved_at) - a.created_at)::float8 / 60 AS ack_min,
    extract(epoch FROM a.resolved_at - a.created_at)::float8 / 60 AS resolve_min) x
WHERE {where} AND NOT (a.detail ? 'withdrawn') AND a.created_at >= %(from)s AND a.created_at < %(to)s
  AND (%(region)s::text IS NULL OR sr.region_code = %(region)s)
GROUP BY a.severity, sr.region_code
ORDER BY array_position(%(severities)s::text[], a.severity), sr.region_code NULLS LAST
""")
# Per alert type: the alerts resolved in the window, per outcome (the outcomes are the
# protocol's constants, safe to write into the statement).
_OUTCOME_COUNTS = ", ".join(f"count(*) FILTER (WHERE a.outcome = '{o}') AS {o}" for o in OUTCOMES)
_OUTCOMES = sql.SQL(f"""
SELECT a.type, count(*) AS resolved, {_OUTCOME_COUNTS}, count(*) FILTER (WHERE a.outcome IS NULL) AS "none"
FROM alerts a
JOIN shipments s ON s.id = a.shipment_id
WHERE {{where}} AND a.status = 'resolved' AND NOT (a.detail ? 'withdrawn')
  AND a.resolved_at >= %(from)s AND a.resolved_at < %(to)s
  AND (%(region)s::text IS NULL
       OR EXISTS (SELECT 1 FROM shipment_regions sr WHERE sr.shipment_id = s.id AND sr.region_code = %(region)s))
GROUP BY a.type
ORDER BY a.type
""")
Region = Annotated[str | None, Query(pattern=REGION_CODE, description="Only shipments touching this region")]


@router.get("/kpi/response", response_model=AnswerKpi,
            summary="Time to acknowledge and to resolve, per severity and region",
            responses={**UNAUTHORIZED, **_BAD_PERIOD})
async def response_kpi(conn: Conn, caller: Caller, since: Since = None, until: Until = None,
                       region: Region = None) -> AnswerKpi:
    """Per severity and region, the alerts created in the window: how many were answered
    (acknowledged, or resolved without an acknowledgement) and resolved, the median and p90
    minutes from creation to each, and how many escalated. An alert counts in every region its
    shipment touches; an officer's or supervisor's figures are their own region's."""
    start, end, now = await _window(conn, since, until, ("since", "until"))
    scoped = caller.role in REGION_SCOPED
    params = {"from": start, "to": end, "region": caller.region if scoped else region,
              "severities": list(SEVERITIES)}
    # A region-scoped caller asking for another region's row gets none.
    elsewhere = scoped and region not in (None, caller.region)
    rows = [] if elsewhere else await _rows(conn, _ANSWERS, visible(caller), params)
    return AnswerKpi(period=Period(since=start, until=end), generated_at=now,
                     rows=[SeverityRegionResponse.model_validate(r) for r in rows])


@router.get("/kpi/outcomes", response_model=OutcomeKpi, summary="Outcome mix and false-alarm rate per alert type",
            responses={**UNAUTHORIZED, **_BAD_PERIOD})
async def outcome_kpi(conn: Conn, caller: Caller, since: Since = None, until: Until = None,
                      region: Region = None) -> OutcomeKpi:
    """Per alert type, the alerts resolved in the window: the count of each outcome and the
    false-alarm rate (false alarms over the resolutions with an outcome), the figure the risk
    unit tunes each rule with. An officer's figures cover only shipments touching their region."""
    start, end, now = await _window(conn, since, until, ("since", "until"))
    rows = await _rows(conn, _OUTCOMES, visible(caller), {"from": start, "to": end, "region": region})
    return OutcomeKpi(period=Period(since=start, until=end), generated_at=now, types=[_outcomes(r) for r in rows])


def _outcomes(row: dict[str, Any]) -> TypeOutcomes:
    counts = {o: int(row[o]) for o in (*OUTCOMES, "none")}
    judged = row["resolved"] - counts["none"]
    return TypeOutcomes(type=row["type"], resolved=row["resolved"], outcomes=counts,
                        false_alarm_rate=counts["false_alarm"] / judged if judged else None)
