"""The shipment report laid out as a PDF (fpdf2, A4 portrait, the PDF core fonts).

Deterministic for the same data and ``generated_at``: the document's creation date
is ``generated_at`` too, so only the "generated at" line changes between two
reports of unchanged data. The core fonts hold Latin-1 only: other characters are
written as ``?`` (names and notes are the officers' own words, not re-spelt).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from tracking_api.auth import Principal
from tracking_api.i18n import Messages
from tracking_api.report import data as report_data
from tracking_api.report.data import SEAL_KINDS, ReportData
from tracking_api.report.map_image import WIDTH, Layers, Marker, render

MAP_WIDTH_MM = 190.0
PHOTO_WIDTH_MM = 45.0
_MONO = FontFace(family="Courier", size_pt=6)


def text(value: Any) -> str:
    """A value as the report prints it: times UTC to the second, Latin-1 only."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value).encode("latin-1", "replace").decode("latin-1")


class _Report:
    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        self.pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        self.pdf.set_margins(10, 12, 10)
        self.pdf.set_auto_page_break(True, margin=14)

    def t(self, key: str, **params: object) -> str:
        """The label ``report.<key>`` in the report's language."""
        return self.messages(f"report.{key}", **params)

    def heading(self, key: str) -> None:
        self.pdf.ln(3)
        self.pdf.set_font("Helvetica", "B", 12)
        self.pdf.cell(0, 7, text(self.t(key)), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", "", 8)

    def line(self, value: str, size: float = 8, style: str = "") -> None:
        self.pdf.set_font("Helvetica", style, size)
        self.pdf.multi_cell(0, 4.5, text(value), new_x="LMARGIN", new_y="NEXT")

    def pairs(self, items: Sequence[tuple[str, Any]]) -> None:
        for key, value in items:
            self.pdf.set_font("Helvetica", "B", 9)
            self.pdf.cell(38, 5, text(self.t(key)))
            self.pdf.set_font("Helvetica", "", 9)
            self.pdf.multi_cell(0, 5, text(value), new_x="LMARGIN", new_y="NEXT")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float],
              total: int | None = None, mono: int | None = None) -> None:
        """Rows under ``headers`` (label keys); ``mono``: the index of a column in Courier (hashes)."""
        if not rows:
            self.line(self.t("none"))
            return
        self.pdf.set_font("Helvetica", "", 7)
        with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=3.6, padding=0.8,
                            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235))) as table:
            heading = table.row()
            for key in headers:
                heading.cell(text(self.t(key)))
            for values in rows:
                row = table.row()
                for i, value in enumerate(values):
                    row.cell(text(value), style=_MONO if i == mono else None)
        shown = len(rows)
        if total is not None and total > shown:
            self.line(self.t("more", n=total - shown), style="I")

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def build(data: ReportData, caller: Principal, messages: Messages, generated_at: datetime) -> bytes:
    """The report's bytes, its labels from ``messages`` (``report.*`` keys)."""
    r = _Report(messages)
    r.pdf.set_creation_date(generated_at.astimezone(UTC))
    r.pdf.set_title(f"{r.t('title')} {data.shipment.reference}")
    r.pdf.add_page()
    _header(r, data, caller, generated_at)
    _itinerary(r, data)
    _timeline(r, data)
    _map(r, data)
    _alerts(r, data)
    _seal_events(r, data)
    _actions(r, data)
    _photos(r, data)
    return r.output()


def _header(r: _Report, data: ReportData, caller: Principal, generated_at: datetime) -> None:
    s = data.shipment
    r.pdf.set_font("Helvetica", "B", 16)
    r.pdf.cell(0, 9, text(f"{r.t('title')} {s.reference}"), new_x="LMARGIN", new_y="NEXT")
    mrn = getattr(s, "mrn", None)  # declarations (issue 14) carry one; a shipment typed in has none
    reasons = "; ".join(f"{x.factor} +{x.points}: {x.detail}" for x in s.risk.reasons) or "-"
    r.pairs([("reference", s.reference), *((("mrn", mrn),) if mrn else ()), ("vehicle", s.vehicle),
             ("operator", s.operator), ("risk", s.risk.level), ("reasons", reasons), ("status", s.status),
             ("tracker", s.tracker_id), ("seals", ", ".join(s.seal_ids) or "-"), ("deadline", s.deadline),
             ("generated", f"{text(generated_at)} {r.t('by')} {caller.subject} ({caller.role})")])


def _itinerary(r: _Report, data: ReportData) -> None:
    r.heading("itinerary")
    s = data.shipment
    # The declaration plans one time: the deadline at destination.
    rows = [(o.position, o.office_code, o.role, o.country, s.deadline if o.role == "destination" else None,
             o.arrived_at, o.departed_at) for o in s.itinerary]
    r.table(("number", "office", "role", "country", "planned", "arrived", "departed"), rows,
            (6, 22, 16, 10, 22, 22, 22))


def _timeline(r: _Report, data: ReportData) -> None:
    r.heading("timeline")
    items = data.timeline
    rows = [(i.at, i.kind, i.office_code, i.country, _detail(i.detail)) for i in items[:report_data.TABLE_ROWS]]
    r.table(("at", "event", "office", "country", "detail"), rows, (24, 22, 18, 10, 46), total=len(items))


def _map(r: _Report, data: ReportData) -> None:
    markers = [Marker(n, a["lon"], a["lat"], a["severity"]) for n, a in enumerate(data.alerts, 1)
               if a["lon"] is not None and a["lat"] is not None]
    countries = [(f["id"], _polygons(f["geometry"])) for f in data.countries]
    zones = [(z.properties.office_code or z.properties.name, z.geometry.coordinates) for z in data.zones]
    png = render(Layers(track=data.track, route=data.route, zones=zones, countries=countries, markers=markers,
                        extent=data.extent))
    if r.pdf.get_y() > 150:
        r.pdf.add_page()
    r.heading("map")
    r.line(r.t("track", fixes=data.track_fixes, drawn=len(data.track)))
    r.pdf.image(io.BytesIO(png), w=MAP_WIDTH_MM, title=f"map {WIDTH} px")


def _polygons(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else list(geometry["coordinates"])


def _alerts(r: _Report, data: ReportData) -> None:
    r.heading("alerts")
    rows = [(n, a["type"], a["severity"], a["started_at"], a["ended_at"], a["status"], a["outcome"],
             _who(a)) for n, a in enumerate(data.alerts, 1)]
    r.table(("number", "type", "severity", "started", "ended", "status", "outcome", "who"), rows,
            (5, 24, 12, 22, 22, 15, 18, 30), total=data.alerts_total)


def _who(a: dict[str, Any]) -> str:
    return ", ".join(f"{v}" for v in (a["acknowledged_by"], a["resolved_by"], a["assignee"]) if v) or "-"


def _seal_events(r: _Report, data: ReportData) -> None:
    r.heading("seal_events")
    rows = [(e["ts"], e["device_id"], e["seal_id"], e["event"], e["bat"]) for e in data.seal_events]
    r.table(("at", "device", "seals", "event", "detail"), rows, (24, 26, 26, 16, 14), total=data.seal_events_total)
    milestones = [(i.at, i.kind, i.office_code, _detail(i.detail)) for i in data.timeline if i.kind in SEAL_KINDS]
    if milestones:
        r.table(("at", "event", "office", "detail"), milestones, (24, 24, 18, 54))


def _actions(r: _Report, data: ReportData) -> None:
    r.heading("actions")
    rows = [(e["at"], f"{e['actor']} ({e['role']})", e["action"], f"{e['object_type']} {e['object_id'] or ''}",
             e["hash"]) for e in data.audit]
    r.table(("at", "actor", "action", "object", "hash"), rows, (27, 34, 27, 18, 84), total=data.audit_total,
            mono=4)


def _photos(r: _Report, data: ReportData) -> None:
    """Each photo: its thumbnail beside what it is attached to, when, where and by whom it was taken,
    and the SHA-256 of the bytes received (the evidence itself is ``GET /photos/{id}``)."""
    r.heading("photos")
    if not data.photos:
        r.line(r.t("none"))
    left = 10 + PHOTO_WIDTH_MM + 4
    for p in data.photos:
        if r.pdf.get_y() > 240:
            r.pdf.add_page()
        top = r.pdf.get_y()
        r.pdf.image(io.BytesIO(bytes(p["thumbnail"])), x=10, y=top, w=PHOTO_WIDTH_MM, title=f"photo {p['id']}")
        image_bottom = r.pdf.get_y()
        r.pdf.set_xy(left, top)
        r.pdf.set_font("Helvetica", "B", 9)
        r.pdf.cell(0, 5, text(r.t("photo", id=p["id"])), new_x="LMARGIN", new_y="NEXT")
        for key, value in _photo_lines(p):
            r.pdf.set_x(left)
            r.pdf.set_font("Helvetica", "B", 8)
            r.pdf.cell(30, 4.5, text(r.t(key)))
            r.pdf.set_font(*(("Courier", "", 6) if key == "sha256" else ("Helvetica", "", 8)))
            r.pdf.cell(0, 4.5, text(value), new_x="LMARGIN", new_y="NEXT")
        if p["note"]:
            r.pdf.set_x(left)
            r.pdf.set_font("Helvetica", "I", 8)
            r.pdf.multi_cell(0, 4.5, text(p["note"]), new_x="LMARGIN", new_y="NEXT")
        r.pdf.set_y(max(r.pdf.get_y(), image_bottom) + 3)


def _photo_lines(p: dict[str, Any]) -> list[tuple[str, Any]]:
    target = f"alert {p['alert']}" if p["alert"] is not None else f"case {p['case']}"
    position = "-" if p["lat"] is None else f"{p['lat']:.5f}, {p['lon']:.5f}" + (
        f" (+/- {p['accuracy_m']:.0f} m)" if p["accuracy_m"] is not None else "")
    return [("attached_to", target), ("taken", p["taken_at"]), ("position", position),
            ("uploaded_by", f"{p['uploaded_by']} ({text(p['uploaded_at'])})"), ("sha256", p["sha256"])]


def _detail(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if not isinstance(v, dict | list))
