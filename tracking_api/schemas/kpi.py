"""Performance figures (KPIs) over a time window: transit times, stops, alerts,
and how fast the control room answers alerts. Definitions: docs/kpi.md."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracking_api.schemas.alerts import AlertType, Severity, UtcDatetime
from tracking_api.schemas.risk import RiskLevel

_EXAMPLE: dict[str, Any] = {
    "window": {"from": "2026-10-24T12:00:00Z", "to": "2026-11-23T12:00:00Z"},
    "generated_at": "2026-11-23T12:00:00.120000Z",
    "routes": [{"id": 1, "name": "Mombasa - Nairobi (A109)", "departed": 412, "arrived": 398,
                "transit_median_h": 11.2, "transit_p90_h": 15.8, "transit_mean_h": 12.1, "on_time_share": 0.93,
                "in_transit_now": 37, "overdue_now": 2}],
    "stops": [{"route_id": 1, "route_name": "Mombasa - Nairobi (A109)", "stops": 55, "ongoing": 1,
               "total_min": 2310.5, "median_min": 31.0, "p90_min": 82.4}],
    "alerts": [{"route_id": 1, "route_name": "Mombasa - Nairobi (A109)", "type": "unscheduled_stop",
                "severity": "high", "count": 55}],
    "response": {
        "overall": {"answered": 80, "median_min": 4.5, "p90_min": 19.0, "open": 3, "oldest_open_min": 47.2},
        "by_type": [{"type": "unscheduled_stop", "answered": 54, "median_min": 5.1, "p90_min": 21.3, "open": 1,
                     "oldest_open_min": 12.0}]},
}


class Window(BaseModel):
    """The half-open window ``[from, to)`` the windowed figures cover."""

    # ``from`` is a Python keyword: the fields have other names, and are read and written by alias.
    start: UtcDatetime = Field(alias="from")
    end: UtcDatetime = Field(alias="to")


class RouteKpi(BaseModel):
    id: int = Field(description="Route id")
    name: str
    departed: int = Field(description="Shipments whose departed_at is in the window")
    arrived: int = Field(description="Shipments whose arrived_at is in the window")
    transit_median_h: float | None = Field(description="Median of arrived_at - departed_at, hours, of those arrived")
    transit_p90_h: float | None = Field(description="90th percentile (linear interpolation), hours")
    transit_mean_h: float | None = Field(description="Mean, hours")
    on_time_share: float | None = Field(description="Share (0 to 1) of those arrived with arrived_at <= deadline")
    in_transit_now: int = Field(description="Shipments in transit now, whatever the window")
    overdue_now: int = Field(description="Of those, how many are past their deadline now")


class StopKpi(BaseModel):
    route_id: int
    route_name: str
    stops: int = Field(description="unscheduled_stop alerts whose started_at is in the window")
    ongoing: int = Field(description="Of those, how many still last (ended_at null)")
    total_min: float = Field(description="Sum of ended_at - started_at (ongoing ones: up to now), minutes")
    median_min: float
    p90_min: float


class AlertCount(BaseModel):
    route_id: int
    route_name: str
    type: AlertType
    severity: Severity
    count: int = Field(description="Alerts whose started_at is in the window (withdrawn ones not counted)")


class ResponseFigures(BaseModel):
    answered: int = Field(description="Alerts created in the window and since acknowledged (or resolved)")
    median_min: float | None = Field(description="Median of acknowledged_at (else resolved_at) - created_at, "
                                                 "minutes")
    p90_min: float | None = Field(description="90th percentile (linear interpolation), minutes")
    open: int = Field(description="Alerts nobody has acknowledged or resolved yet, whatever the window")
    oldest_open_min: float | None = Field(description="Age of the oldest of those (now - created_at), minutes")


class TypeResponse(ResponseFigures):
    type: AlertType


class ResponseKpi(BaseModel):
    overall: ResponseFigures = Field(description="Every type together")
    by_type: list[TypeResponse] = Field(description="Types that have figures, by name")


class Kpi(BaseModel):
    """Figures per route and alert type; an officer's cover only shipments touching their region."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    window: Window
    generated_at: UtcDatetime = Field(description="The database clock: 'now' of the now-figures and ages")
    routes: list[RouteKpi] = Field(description="Routes with a shipment departed or arrived in the window, or in "
                                               "transit now, by id")
    stops: list[StopKpi] = Field(description="Routes with an unscheduled stop in the window, by id")
    alerts: list[AlertCount] = Field(description="By route id, type, severity")
    response: ResponseKpi


class Period(BaseModel):
    """The half-open window ``[since, until)`` of the risk and Time Release figures."""

    since: UtcDatetime
    until: UtcDatetime


class LevelKpi(BaseModel):
    level: RiskLevel = Field(description="The shipments' risk level in force (shipments.risk_level)")
    shipments: int = Field(description="Shipments of this level in transit at some time in the window "
                                       "(departed before until, not arrived before since)")
    alerts: int = Field(description="Alerts on them whose started_at is in the window (withdrawn ones not counted; "
                                    "a consolidated truck's incident counts once per shipment)")
    confirmed: int = Field(description="Of those, resolved as confirmed_irregularity or goods_seized")
    false_alarms: int = Field(description="Of those, resolved as false_alarm")
    open: int = Field(description="Of those, not resolved yet (open or acknowledged)")


class RiskKpi(BaseModel):
    """What a risk unit tunes the profiles with: per level, how many alerts were raised and
    how officers judged them. An officer's figures cover only shipments touching their region."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": {"since": "2026-10-24T12:00:00Z", "until": "2026-11-23T12:00:00Z"},
        "generated_at": "2026-11-23T12:00:00.120000Z",
        "levels": [{"level": "low", "shipments": 120, "alerts": 14, "confirmed": 0, "false_alarms": 11, "open": 1},
                   {"level": "medium", "shipments": 300, "alerts": 61, "confirmed": 4, "false_alarms": 40,
                    "open": 5},
                   {"level": "high", "shipments": 41, "alerts": 38, "confirmed": 9, "false_alarms": 12,
                    "open": 6}]}]})

    period: Period
    generated_at: UtcDatetime = Field(description="The database clock")
    levels: list[LevelKpi] = Field(description="low, medium, high: always all three")


class PostKpi(BaseModel):
    office_code: str = Field(description="The border post (a zone of kind border_post)")
    country: str | None = Field(description="The post's country (zones.country)")
    visits: int = Field(description="Departures from the post (departed milestones) in the window")
    dwell_median_s: float | None = Field(description="Median time stationary inside (speed < 1 m/s), seconds")
    dwell_p90_s: float | None = Field(description="90th percentile of the same (linear interpolation), seconds")
    inside_median_s: float | None = Field(description="Median arrival-to-departure time, seconds")
    inside_p90_s: float | None = Field(description="90th percentile of the same, seconds")


class SegmentKpi(BaseModel):
    # ``from`` is a Python keyword: read and written by alias.
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="Office code of the itinerary office left")
    end: str = Field(alias="to", description="Office code of the next office of the itinerary")
    trips: int = Field(description="Arrivals at the next office in the window after a departure from the first")
    median_s: float = Field(description="Median of arrival at the next minus departure from the first, seconds")
    p90_s: float = Field(description="90th percentile of the same (linear interpolation), seconds")


class CountryKpi(BaseModel):
    country: str = Field(description="ISO 3166-1 alpha-3")
    trips: int = Field(description="Crossings out of the country in the window")
    median_s: float = Field(description="Median time in the country (its first fix, or the shipment's departure "
                                        "for the country it started in, to the crossing out), seconds")
    p90_s: float = Field(description="90th percentile of the same (linear interpolation), seconds")


class TimeRelease(BaseModel):
    """Time Release Study figures from the shipments' timelines (milestones): per border
    post, per segment between consecutive offices of an itinerary, per country. An
    officer's figures cover only shipments touching their region. Definitions: docs/kpi.md."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": {"since": "2026-10-24T12:00:00Z", "until": "2026-11-23T12:00:00Z"},
        "generated_at": "2026-11-23T12:00:00.120000Z",
        "posts": [{"office_code": "KEMAL", "country": "KEN", "visits": 212, "dwell_median_s": 9300.0,
                   "dwell_p90_s": 20500.0, "inside_median_s": 11200.0, "inside_p90_s": 24800.0}],
        "segments": [{"from": "KEMBA", "to": "KEMAL", "trips": 198, "median_s": 86400.0, "p90_s": 129600.0}],
        "countries": [{"country": "KEN", "trips": 201, "median_s": 97200.0, "p90_s": 151200.0}]}]})

    period: Period
    generated_at: UtcDatetime = Field(description="The database clock")
    posts: list[PostKpi] = Field(description="By office code")
    segments: list[SegmentKpi] = Field(description="By from, to")
    countries: list[CountryKpi] = Field(description="By country code")


# Issue 14: how fast alerts are answered per severity and region, and how officers judge them.

class SeverityRegionResponse(BaseModel):
    severity: Severity
    region: str | None = Field(description="A region the shipment touches (an alert counts in each); null: none")
    alerts: int = Field(description="Alerts created in the window (withdrawn ones not counted)")
    acknowledged: int = Field(description="Of those, answered: acknowledged, or resolved without an acknowledgement")
    ack_median_min: float | None = Field(description="Median minutes from creation to the first answer")
    ack_p90_min: float | None
    resolved: int = Field(description="Of those, resolved")
    resolve_median_min: float | None = Field(description="Median minutes from creation to resolution")
    resolve_p90_min: float | None
    escalated: int = Field(description="Of those, escalated at least once (nobody answered in time)")


class AnswerKpi(BaseModel):
    """Time to acknowledge and to resolve, per severity and region (docs/kpi.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": {"since": "2026-10-24T12:00:00Z", "until": "2026-11-23T12:00:00Z"},
        "generated_at": "2026-11-23T12:00:00.120000Z",
        "rows": [{"severity": "critical", "region": "KE-MSA", "alerts": 12, "acknowledged": 12,
                  "ack_median_min": 2.5, "ack_p90_min": 6.1, "resolved": 11, "resolve_median_min": 48.0,
                  "resolve_p90_min": 130.2, "escalated": 2}]}]})

    period: Period
    generated_at: UtcDatetime = Field(description="The database clock")
    rows: list[SeverityRegionResponse] = Field(description="By severity (critical first), then region")


class TypeOutcomes(BaseModel):
    type: AlertType
    resolved: int = Field(description="Alerts of this type resolved in the window (withdrawn ones not counted)")
    outcomes: dict[str, int] = Field(description="Count per outcome (every outcome present, 0 when none); "
                                                 "'none': resolved before outcomes were required")
    false_alarm_rate: float | None = Field(description="false_alarm / resolved with an outcome; null when none")


class OutcomeKpi(BaseModel):
    """The outcome mix per alert type: the false-alarm rate per rule is what the risk unit tunes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": {"since": "2026-10-24T12:00:00Z", "until": "2026-11-23T12:00:00Z"},
        "generated_at": "2026-11-23T12:00:00.120000Z",
        "types": [{"type": "unscheduled_stop", "resolved": 40,
                   "outcomes": {"false_alarm": 30, "technical_fault": 2, "confirmed_irregularity": 3,
                                "goods_seized": 1, "other": 4, "none": 0}, "false_alarm_rate": 0.75}]}]})

    period: Period
    generated_at: UtcDatetime = Field(description="The database clock")
    types: list[TypeOutcomes] = Field(description="Types with a resolution in the window, by type")
