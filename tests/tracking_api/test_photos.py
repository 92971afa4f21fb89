"""Photos from the roadside: stored byte for byte with their SHA-256 (audited), listed on the
alert and the case, served back with a thumbnail; access as the shipment; append-only in the
database; hostile input by class (every limit and one past it, wrong types, a PNG claiming
JPEG, a truncated JPEG, random bytes, a decompression bomb, bad coordinates, NUL in the note)."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ctt.config import DB_API
from tests.support import as_role, scalar
from tests.tracking_api.case_support import CaseWorld, another_shipment, auth, case_world, new_alert
from tests.tracking_api.photo_support import TAKEN, image
from tracking_api.config import ApiSettings
from tracking_api.schemas.photos import NOTE_MAX

API = "/api/v1"


@pytest.fixture(scope="module")
def w(database_url: str) -> CaseWorld:
    return case_world(database_url, "photos")


def upload(client: TestClient, path: str, content: bytes, headers: dict[str, str], content_type: str = "image/jpeg",
           **params: Any) -> Any:
    return client.post(f"{API}{path}", params={**TAKEN, **params}, content=content,
                       headers={**headers, "Content-Type": content_type})


def officer(w: CaseWorld, subject: str = "ph-off") -> dict[str, str]:
    return auth("officer", w.region_a, subject=subject)


def test_a_photo_is_stored_as_sent_hashed_audited_listed_and_served(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    content = image("JPEG", (800, 600))
    response = upload(client, f"/alerts/{alert_id}/photos", content, officer(w))
    assert response.status_code == 201, response.text
    photo = response.json()
    digest = hashlib.sha256(content).hexdigest()
    assert {k: photo[k] for k in ("sha256", "content_type", "bytes", "width", "height", "alert", "case", "shipment",
                                  "uploaded_by", "lat", "lon", "accuracy_m", "note", "taken_at")} == {
        "sha256": digest, "content_type": "image/jpeg", "bytes": len(content), "width": 800, "height": 600,
        "alert": alert_id, "case": None, "shipment": w.s_a, "uploaded_by": "ph-off", "lat": TAKEN["lat"],
        "lon": TAKEN["lon"], "accuracy_m": 12.0, "note": TAKEN["note"], "taken_at": TAKEN["taken_at"]}
    audit = scalar(database_url, "SELECT detail FROM audit_log WHERE action = 'photo.attached' AND object_id = %s",
                   (str(alert_id),))
    assert audit["sha256"] == digest and audit["photo"] == photo["id"]

    listed = client.get(f"{API}/alerts/{alert_id}/photos", headers=officer(w)).json()["items"]
    assert listed == [photo]
    full = client.get(f"{API}/photos/{photo['id']}", headers=officer(w))
    assert full.content == content and full.headers["x-content-sha256"] == digest
    assert full.headers["content-type"] == "image/jpeg"
    thumb = client.get(f"{API}/photos/{photo['id']}/thumbnail", headers=officer(w))
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert small.format == "JPEG" and small.size == (320, 240)

    # Another region's officer sees none of it; an integrator sees the alert's photo (not cases').
    elsewhere = auth("officer", w.region_b, subject="ph-b")
    assert client.get(f"{API}/alerts/{alert_id}/photos", headers=elsewhere).status_code == 404
    assert client.get(f"{API}/photos/{photo['id']}", headers=elsewhere).status_code == 404
    assert client.get(f"{API}/photos/{photo['id']}", headers=auth("integrator")).status_code == 200


def test_a_case_photo_png_and_webp_and_the_case_lists_its_alerts_photos(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_b)
    region_b = auth("officer", w.region_b, subject="ph-b")
    assert client.post(f"{API}/alerts/{alert_id}/resolve", json={"note": "n", "outcome": "goods_seized"},
                       headers=region_b).status_code == 200
    case_id = int(scalar(database_url, "SELECT case_id FROM case_alerts WHERE alert_id = %s", (alert_id,)))
    on_alert = upload(client, f"/alerts/{alert_id}/photos", image("PNG"), region_b, "image/png")
    on_case = upload(client, f"/cases/{case_id}/photos", image("WEBP"), region_b, "image/webp")
    assert (on_alert.status_code, on_case.status_code) == (201, 201), on_case.text
    assert on_case.json()["case"] == case_id and on_case.json()["alert"] is None
    listed = client.get(f"{API}/cases/{case_id}/photos", headers=region_b).json()["items"]
    assert [p["id"] for p in listed] == [on_alert.json()["id"], on_case.json()["id"]]
    assert client.get(f"{API}/photos/{on_case.json()['id']}", headers=auth("integrator")).status_code == 404

    assert client.post(f"{API}/cases/{case_id}/close", json={"outcome": "goods_seized", "summary": "s"},
                       headers=region_b).status_code == 200
    closed = upload(client, f"/cases/{case_id}/photos", image(), region_b)
    assert closed.status_code == 409 and "read-only" in closed.json()["detail"]


def test_the_same_photo_with_its_idempotency_key_is_stored_once(
        client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    headers = {**officer(w), "Idempotency-Key": "photo-once"}
    answers = [upload(client, f"/alerts/{alert_id}/photos", image(), headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201] and answers[0].content == answers[1].content
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert scalar(database_url, "SELECT count(*) FROM photos WHERE alert_id = %s", (alert_id,)) == 1
    other = upload(client, f"/alerts/{alert_id}/photos", image(colour="red"), headers)
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_photos_are_append_only_in_the_database(client: TestClient, w: CaseWorld, database_url: str) -> None:
    alert_id = new_alert(database_url, w, w.s_a)
    photo_id = upload(client, f"/alerts/{alert_id}/photos", image(), officer(w)).json()["id"]
    for statement in ("UPDATE photos SET note = 'changed' WHERE id = %s", "DELETE FROM photos WHERE id = %s"):
        for url in (as_role(database_url, DB_API), database_url):  # the API's role, and even the owner's side
            with psycopg.connect(url) as conn, pytest.raises(psycopg.Error):
                conn.execute(statement, (photo_id,))
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO photos (content, sha256, content_type, bytes, width, height, thumbnail, taken_at,"
                     " alert_id, shipment_id, uploaded_by) VALUES ('abc', sha256('abd'), 'image/jpeg', 3, 1, 1, '',"
                     " now(), %s, %s, 'x')", (alert_id, w.s_a))


def _truncated_jpeg() -> bytes:
    content = image("JPEG", (400, 300), "orange")
    return content[: len(content) // 2]


def _bomb(side: int, rows: int) -> bytes:
    """A grey PNG declaring ``side`` x ``side`` pixels, ``rows`` of them really there (all black:
    a whole 9000 x 9000 image is 81 Mpx in a few hundred kB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * ((side + 1) * rows), 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# Made when a test runs (not at collection): name -> (body, Content-Type, status, what is named).
HOSTILE_BODIES: dict[str, Callable[[], tuple[bytes, str, int, str]]] = {
    "png claiming jpeg": lambda: (image("PNG"), "image/jpeg", 415, "Content-Type"),
    "jpeg claiming webp": lambda: (image("JPEG"), "image/webp", 415, "Content-Type"),
    "gif": lambda: (image("GIF"), "image/gif", 415, "Content-Type"),
    "text": lambda: (b"hello", "text/plain", 415, "Content-Type"),
    "random bytes as jpeg": lambda: (random.Random(15).randbytes(4096), "image/jpeg", 422, "body"),
    "jpeg signature then garbage": lambda: (b"\xff\xd8\xff" + random.Random(16).randbytes(4096), "image/jpeg", 422,
                                            "body"),
    "truncated jpeg": lambda: (_truncated_jpeg(), "image/jpeg", 422, "body"),
    # Whole, and under Pillow's own bound (89 Mpx) but over CTT_PHOTO_MAX_PIXELS (50 Mpx).
    "decompression bomb": lambda: (_bomb(9000, 9000), "image/png", 422, "body"),
    "huge declared canvas": lambda: (_bomb(30_000, 1), "image/png", 422, "body"),
    "empty": lambda: (b"", "image/jpeg", 422, "body"),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_a_body_that_is_no_whole_accepted_image_is_refused_naming_why(
        client: TestClient, w: CaseWorld, database_url: str, name: str) -> None:
    content, content_type, code, named = HOSTILE_BODIES[name]()
    alert_id = new_alert(database_url, w, w.s_a)
    response = upload(client, f"/alerts/{alert_id}/photos", content, officer(w), content_type)
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    assert named in (detail if isinstance(detail, str) else str(detail[0]["loc"]))
    assert scalar(database_url, "SELECT count(*) FROM photos WHERE alert_id = %s", (alert_id,)) == 0


HOSTILE_QUERIES: dict[str, tuple[dict[str, Any], str | None]] = {
    "note at the limit": ({"note": "n" * NOTE_MAX}, None),
    "note past the limit": ({"note": "n" * (NOTE_MAX + 1)}, "note"),
    "note with NUL": ({"note": "cut\x00seal"}, "note"),
    "note with a control character": ({"note": "cut\x1bseal"}, "note"),
    "empty note": ({"note": ""}, "note"),
    "lat at the limit": ({"lat": -90, "lon": 180}, None),
    "lat past the limit": ({"lat": 90.0001}, "lat"),
    "lon past the limit": ({"lon": -180.0001}, "lon"),
    "lat not a number": ({"lat": "north"}, "lat"),
    "lat NaN": ({"lat": "NaN"}, "lat"),
    "lat without lon": ({"lon": None}, "lon"),
    "accuracy without a position": ({"lat": None, "lon": None}, "accuracy_m"),
    "negative accuracy": ({"accuracy_m": -1}, "accuracy_m"),
    "taken_at missing": ({"taken_at": None}, "taken_at"),
    "taken_at without offset": ({"taken_at": "2026-11-23T07:10:00"}, "taken_at"),
    "taken_at not a time": ({"taken_at": "yesterday"}, "taken_at"),
    "taken_at next year": ({"taken_at": "2099-01-01T00:00:00Z"}, "taken_at"),
}


@pytest.mark.parametrize("name", list(HOSTILE_QUERIES))
def test_metadata_limits_and_one_past_them(client: TestClient, w: CaseWorld, database_url: str, name: str) -> None:
    changes, named = HOSTILE_QUERIES[name]
    params = {k: v for k, v in {**TAKEN, **changes}.items() if v is not None}
    alert_id = new_alert(database_url, w, w.s_a)
    response = client.post(f"{API}/alerts/{alert_id}/photos", params=params, content=image(),
                           headers={**officer(w), "Content-Type": "image/jpeg"})
    if named is None:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", named]


def test_the_size_limit_and_one_past_it(client: TestClient, w: CaseWorld, database_url: str) -> None:
    limit = ApiSettings().photo_max_bytes
    alert_id = new_alert(database_url, w, w.s_a)
    # A real PNG padded to the limit exactly (bytes after IEND are ignored by decoders).
    at_limit = image("PNG", (32, 32))
    at_limit += b"\0" * (limit - len(at_limit))
    assert upload(client, f"/alerts/{alert_id}/photos", at_limit, officer(w), "image/png").status_code == 201
    past = upload(client, f"/alerts/{alert_id}/photos", at_limit + b"\0", officer(w), "image/png")
    assert past.status_code == 413 and str(limit) in past.json()["detail"]
    # Every other route keeps the general cap.
    general = ApiSettings().max_body_bytes
    entry = client.post(f"{API}/alerts/{alert_id}/ack", content=b"{}" + b" " * general,
                        headers={**officer(w), "Content-Type": "application/json"})
    assert entry.status_code == 413


def test_unknown_targets_and_roles(client: TestClient, w: CaseWorld, database_url: str) -> None:
    assert upload(client, "/alerts/999999999/photos", image(), officer(w)).status_code == 404
    assert upload(client, "/cases/999999999/photos", image(), officer(w)).status_code == 404
    alert_id = new_alert(database_url, w, w.s_a)
    assert upload(client, f"/alerts/{alert_id}/photos", image(), auth("integrator")).status_code == 403
    assert upload(client, f"/alerts/{alert_id}/photos", image(),
                  auth("officer", w.region_b, subject="x")).status_code == 404
    assert client.get(f"{API}/photos/999999999", headers=officer(w)).status_code == 404


def test_every_photo_operation_is_documented() -> None:
    from tracking_api.main import app

    paths = app.openapi()["paths"]
    operations = {(m, p): op for p, ops in paths.items() if "photo" in p for m, op in ops.items()}
    assert set(operations) == {
        ("post", f"{API}/alerts/{{alert_id}}/photos"), ("get", f"{API}/alerts/{{alert_id}}/photos"),
        ("post", f"{API}/cases/{{case_id}}/photos"), ("get", f"{API}/cases/{{case_id}}/photos"),
        ("get", f"{API}/photos/{{photo_id}}"), ("get", f"{API}/photos/{{photo_id}}/thumbnail")}
    for (method, _path), op in operations.items():
        assert op["summary"] and op["description"] and {"401", "404"} <= set(op["responses"])
        if method == "post":
            assert {"201", "403", "409", "413", "415", "422"} <= set(op["responses"])
            assert set(op["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
            assert "Idempotency-Key" in [q["name"] for q in op["parameters"]]


@pytest.mark.parametrize(("lang", "heading", "taken"), [("en", "Photos from the roadside", "Taken"),
                                                         ("fr", "Photos prises sur le terrain", "Prise le")])
def test_the_shipment_report_shows_each_photo_with_when_where_who_and_its_hash(
        client: TestClient, w: CaseWorld, database_url: str, lang: str, heading: str, taken: str) -> None:
    from pypdf import PdfReader

    shipment = another_shipment(database_url, w, w.region_a)
    alert_id = new_alert(database_url, w, shipment)
    photo = upload(client, f"/alerts/{alert_id}/photos", image("JPEG", (640, 480)), officer(w, "ph-report")).json()
    response = client.get(f"{API}/shipments/{shipment}/report.pdf", params={"lang": lang}, headers=officer(w))
    assert response.status_code == 200, response.text
    reader = PdfReader(io.BytesIO(response.content))
    content = "\n".join(page.extract_text() for page in reader.pages)
    assert heading in content and taken in content
    for value in (photo["sha256"], "ph-report", "2026-11-23 07:10:00Z", "-3.39610, 38.55610", TAKEN["note"],
                  f"alert {alert_id}"):
        assert str(value) in content, value
    images = [i for page in reader.pages for i in page.images]
    assert any(i.image is not None and i.image.size == (320, 240) for i in images)
