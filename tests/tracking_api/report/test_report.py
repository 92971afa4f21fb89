"""The shipment report PDF, parsed back with pypdf: its pages, the text (reference,
offices, alert types, the audit hashes), the embedded map image and its size; an
officer of another region gets a 404; the same data gives the same bytes; a big
track is thinned and long tables are capped."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row
from pypdf import PdfReader

from ctt.config import DB_API, DB_OWNER
from tests.support import as_role, run_async
from tests.tracking_api.export_support import BIG_FIXES, World, auth, build
from tracking_api.auth import Principal
from tracking_api.report import data, shipment_report
from tracking_api.report.map_image import HEIGHT, WIDTH

OPERATOR = auth("operator", subject="op-report")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(database_url: str, countries: list[str]) -> World:
    return build(database_url)


def pdf_of(client: TestClient, shipment: int, headers: dict[str, str] = OPERATOR, lang: str = "en") -> bytes:
    response = client.get(f"/api/v1/shipments/{shipment}/report.pdf", params={"lang": lang}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="shipment-{shipment}-report.pdf"'
    return response.content


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def report(database_url: str, shipment: int, generated_at: datetime = AT, lang: str = "en",
           role: str = DB_API) -> bytes:
    async def run() -> bytes:
        async with await psycopg.AsyncConnection.connect(as_role(database_url, role), row_factory=dict_row) as c:
            return await shipment_report(c, Principal("op-report", "operator"), shipment, lang, generated_at)

    return run_async(run())


def test_the_report_holds_the_shipment_its_map_and_its_audit_hashes(client: TestClient, world: World) -> None:
    reader = PdfReader(io.BytesIO(pdf_of(client, world.s1)))
    assert 2 <= len(reader.pages) <= 4
    content = text_of(reader)
    shipment = client.get(f"/api/v1/shipments/{world.s1}", headers=OPERATOR).json()
    for expected in (shipment["reference"], "KCB 123A", *world.offices.values(), "route_deviation", "seal_breach",
                     "unscheduled_stop", "transit_overdue", "border_crossed", "op-report (operator)",
                     f"{world.fixes1} fixes", *world.audit_hashes):
        assert expected in content, expected
    images = [image for page in reader.pages for image in page.images]
    assert [image.image.size for image in images if image.image is not None] == [(WIDTH, HEIGHT)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    images[0].image.save(SCREENSHOTS / "shipment-report-map.png")  # type: ignore[union-attr]


def test_an_officer_of_another_region_gets_a_404(client: TestClient, world: World) -> None:
    response = client.get(f"/api/v1/shipments/{world.s1}/report.pdf", headers=auth("officer", world.region_b))
    assert response.status_code == 404 and str(world.s1) in response.text
    pdf_of(client, world.s1, auth("officer", world.region_a, "officer-a"))


def test_labels_in_french_and_a_422_for_an_unknown_language(client: TestClient, world: World) -> None:
    assert "Rapport d'envoi" in text_of(PdfReader(io.BytesIO(pdf_of(client, world.s1, lang="fr"))))
    response = client.get(f"/api/v1/shipments/{world.s1}/report.pdf", params={"lang": "de"}, headers=OPERATOR)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "lang"]


def test_the_same_data_gives_the_same_bytes_but_for_the_generated_at_line(database_url: str, world: World) -> None:
    first, second = report(database_url, world.s1), report(database_url, world.s1)
    assert first == second
    later = report(database_url, world.s1, AT.replace(hour=13))
    assert later != first
    assert text_of(PdfReader(io.BytesIO(later))).replace("13:00:00Z", "12:00:00Z") == \
        text_of(PdfReader(io.BytesIO(first)))


def test_a_big_track_is_thinned_and_long_tables_say_how_many_more(database_url: str, world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    content = text_of(PdfReader(io.BytesIO(report(database_url, world.big))))
    drawn = int(content.split(f"{BIG_FIXES} fixes, ")[1].split(" drawn")[0])
    assert data.MAP_POINTS // 2 < drawn <= data.MAP_POINTS + 1
    monkeypatch.setattr(data, "TABLE_ROWS", 2)
    content = text_of(PdfReader(io.BytesIO(report(database_url, world.s1))))
    assert "2 more not shown" in content  # 4 alerts, 2 shown
    assert "1 more not shown" in content  # 3 audit entries, 2 shown


def test_seal_events_are_listed_where_the_role_may_read_them(database_url: str, world: World) -> None:
    """ctt_api may not read seal_events (schema/013): the report says so; a role that may lists them."""
    content = text_of(PdfReader(io.BytesIO(report(database_url, world.s1, role=DB_OWNER))))
    assert "not readable" not in content
    seal_rows = [line for line in content.splitlines() if world.seal1 in line]
    assert any("armed" in line for line in seal_rows) and any("opened" in line for line in seal_rows)
