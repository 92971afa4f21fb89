"""Transit declarations through the API, against the real database: creation through the
one registration path, idempotency by MRN, versioned amendments and their 409s,
cancellation, 422s naming every bad field, hostile input, and the audit entries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ingest.alerting.seal_support import event, milestones, now_ms, seal_alerts, send
from tests.support import IngestProcess, provision, query
from tests.tracking_api.declaration_support import document
from tests.tracking_api.geo_support import API, CONTAINERS, World, auth, device, make_world
from tracking_api.schemas.declarations import MAX_EQUIPMENT, MAX_SEALS_PER_EQUIPMENT
from tracking_api.schemas.shipments import MAX_GOODS, MAX_TRANSIT_OFFICES


@pytest.fixture
def world(client: TestClient) -> World:
    return make_world(client)


def _post(client: TestClient, doc: dict[str, Any], role: str = "integrator", region: str | None = None) -> Any:
    return client.post(f"{API}/declarations", json=doc, headers=auth(role, region, f"test-{role}"))


def _put(client: TestClient, mrn: str, version: int, doc: dict[str, Any], role: str = "integrator") -> Any:
    return client.put(f"{API}/declarations/{mrn}", json={"version": version, "document": doc}, headers=auth(role))


def _locs(response: Any) -> list[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    return [tuple(issue["loc"]) for issue in response.json()["detail"]]


def test_created_once_then_unchanged_then_409_for_other_content(client: TestClient, world: World,
                                                                 database_url: str) -> None:
    doc = document(world)
    first = _post(client, doc)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["version"] == 1 and body["status"] == "active" and len(body["sha256"]) == 64
    shipment = body["shipment"]
    assert shipment["reference"] == doc["functionalReferenceId"] and shipment["status"] == "registered"
    assert shipment["vehicle"] == "KCB 123A" and shipment["operator"] == "Acme Freight Ltd"
    assert shipment["containers"] == CONTAINERS[:2] and shipment["tracker_id"] == doc["monitoring"]["trackerId"]
    assert shipment["seals"] == [{"number": doc["transportEquipment"][0]["seals"][0]["id"],
                                  "container": CONTAINERS[0]}]
    assert [g["hs_code"] for g in shipment["goods"]] == ["0902"]
    # The same document again, keys in another order: the same shipment, 200, nothing new.
    again = _post(client, dict(reversed(list(doc.items()))))
    assert again.status_code == 200, again.text
    assert again.json()["shipment"]["id"] == shipment["id"] and again.json()["version"] == 1
    assert query(database_url, "SELECT count(*) FROM shipments WHERE reference = %s",
                 (doc["functionalReferenceId"],)) == [(1,)]
    other = _post(client, doc | {"timeLimit": "2030-01-02T12:00:00+03:00"})
    assert other.status_code == 409
    assert f"PUT /declarations/{doc['functionalReferenceId']}" in other.json()["detail"]
    assert '"version": 1' in other.json()["detail"]


def test_amend_by_version_changes_the_shipment_and_keeps_every_version(client: TestClient, world: World,
                                                                       database_url: str) -> None:
    doc = document(world)
    mrn = doc["functionalReferenceId"]
    assert _post(client, doc).status_code == 201
    amended = copy.deepcopy(doc)
    amended["transportEquipment"][1]["seals"] = [{"id": "KRA-NEW-1"}]
    amended["goodsItems"][0]["commodity"]["classification"]["id"] = "271019"  # fuel: sensitive goods
    amended["timeLimit"] = "2030-01-03T12:00:00+03:00"
    reloads = query(database_url, "SELECT shipments FROM geofence_version")[0][0]
    response = _put(client, mrn, 1, amended)
    assert response.status_code == 200, response.text
    # The rewritten tables' triggers move the counter ingest reloads on.
    assert query(database_url, "SELECT shipments FROM geofence_version")[0][0] > reloads
    body = response.json()
    assert body["version"] == 2 and body["document"]["timeLimit"] == "2030-01-03T12:00:00+03:00"
    assert sorted(s["number"] for s in body["shipment"]["seals"]) == sorted(
        [doc["transportEquipment"][0]["seals"][0]["id"], "KRA-NEW-1"])
    assert body["shipment"]["deadline"] == "2030-01-03T09:00:00Z"
    assert any(r["factor"] == "goods" for r in body["shipment"]["risk"]["reasons"])  # re-assessed
    # A stale version is a 409 naming the current one; the current document again changes nothing.
    stale = _put(client, mrn, 1, doc)
    assert stale.status_code == 409 and "is at version 2, not 1" in stale.json()["detail"]
    assert _put(client, mrn, 2, amended).json()["version"] == 2
    versions = client.get(f"{API}/declarations/{mrn}/versions", headers=auth("operator")).json()["items"]
    assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "amended")]
    assert versions[0]["document"]["timeLimit"] == doc["timeLimit"]
    # A document of another MRN at this MRN's address is refused, naming the field.
    assert _locs(_put(client, mrn, 2, document(world))) == [("body", "document", "functionalReferenceId")]
    actions = query(database_url, "SELECT action, detail->>'version' FROM audit_log WHERE object_type = "
                                  "'declaration' AND object_id = %s ORDER BY id", (mrn,))
    assert actions == [("declaration.created", "1"), ("declaration.amended", "2")]
    changed = query(database_url, "SELECT detail->'changed' FROM audit_log WHERE action = 'shipment.amended' "
                                  "AND object_id = %s", (str(body["shipment"]["id"]),))
    assert changed == [(["deadline", "goods", "seals"],)]


def test_amend_after_departure_keeps_the_devices_and_refuses_past_transit(client: TestClient, world: World) -> None:
    doc = document(world)
    mrn = doc["functionalReferenceId"]
    shipment_id = _post(client, doc).json()["shipment"]["id"]
    client.post(f"{API}/shipments/{shipment_id}/depart", headers=auth("operator"))
    swapped = doc | {"monitoring": doc["monitoring"] | {"trackerId": device("trk")}}
    refused = _put(client, mrn, 1, swapped)
    assert refused.status_code == 409 and "tracker_id" in refused.json()["detail"]
    later = doc | {"timeLimit": "2030-02-01T00:00:00Z"}
    assert _put(client, mrn, 1, later).json()["version"] == 2  # the deadline may move in transit
    client.post(f"{API}/shipments/{shipment_id}/arrive", headers=auth("operator"))
    arrived = _put(client, mrn, 2, doc)
    assert arrived.status_code == 409 and "'arrived'" in arrived.json()["detail"]
    cancel = client.post(f"{API}/declarations/{mrn}/cancel", json={"reason": "x"}, headers=auth("integrator"))
    assert cancel.status_code == 409


def test_cancel_frees_the_devices_and_is_audited(client: TestClient, world: World, database_url: str) -> None:
    doc = document(world)
    mrn = doc["functionalReferenceId"]
    _post(client, doc)
    response = client.post(f"{API}/declarations/{mrn}/cancel", json={"reason": "invalidated by the office"},
                           headers=auth("operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled" and body["version"] == 2 and body["shipment"]["status"] == "cancelled"
    again = client.post(f"{API}/declarations/{mrn}/cancel", json={"reason": "twice"}, headers=auth("operator"))
    assert again.status_code == 409
    assert _put(client, mrn, 2, doc).status_code == 409  # a cancelled declaration is not amended
    # Its tracker, e-seal and seal number serve another declaration at once.
    reuse = document(world, monitoring=doc["monitoring"], transportEquipment=doc["transportEquipment"])
    assert _post(client, reuse).status_code == 201
    assert query(database_url, "SELECT action, detail->>'reason' FROM audit_log WHERE object_id = %s AND "
                               "action = 'declaration.cancelled'", (mrn,)) == [
        ("declaration.cancelled", "invalidated by the office")]
    versions = client.get(f"{API}/declarations/{mrn}/versions", headers=auth("admin")).json()["items"]
    assert versions[-1]["change"] == "cancelled" and versions[-1]["reason"] == "invalidated by the office"


def test_who_may(client: TestClient, world: World) -> None:
    doc = document(world)
    assert _post(client, doc, role="officer", region="KE-MSA").status_code == 403
    assert _post(client, doc, role="operator").status_code == 201
    mrn = doc["functionalReferenceId"]
    # An officer of another region does not see it (404, as if it did not exist).
    hidden = client.get(f"{API}/declarations/{mrn}", headers=auth("officer", region="NOWHERE"))
    assert hidden.status_code == 404
    assert client.get(f"{API}/declarations/26KE0000000000000", headers=auth("admin")).status_code == 404


def test_422_names_every_bad_field_at_once(client: TestClient, world: World) -> None:
    doc = document(world)
    doc["transportEquipment"][0]["id"] = "CSQU3054384"  # check digit
    doc["goodsItems"][0]["commodity"]["classification"]["id"] = "27AB"  # HS code
    doc["monitoring"]["trackerId"] = "bad id with spaces"
    doc["timeLimit"] = "2030-01-01T12:00:00"  # no time zone
    doc["surprise"] = 1
    assert sorted(_locs(_post(client, doc)), key=str) == sorted([
        ("body", "transportEquipment", 0, "id"), ("body", "goodsItems", 0, "commodity", "classification", "id"),
        ("body", "monitoring", "trackerId"), ("body", "timeLimit"), ("body", "surprise")], key=str)
    # Checks after parsing, in the declaration's own names: unknown office and route, contradictions.
    unknown = document(world, officesOfTransit=[world.departure, "TNOSUCHOFFICE"])
    assert _locs(_post(client, unknown)) == [("body", "officesOfTransit", 0)]
    nowhere = document(world, officesOfTransit=["TNOSUCHOFFICE"])
    nowhere["monitoring"]["routeId"] = 999_999_999
    assert sorted(_locs(_post(client, nowhere)), key=str) == sorted(
        [("body", "monitoring", "routeId"), ("body", "officesOfTransit", 0)], key=str)
    twice = document(world)
    twice["goodsItems"].append(twice["goodsItems"][0])
    twice["transportEquipment"][1]["seals"] = twice["transportEquipment"][0]["seals"]
    assert sorted(_locs(_post(client, twice)), key=str) == sorted(
        [("body", "goodsItems", 1, "sequenceNumeric"), ("body", "transportEquipment", 1, "seals", 0, "id")], key=str)


def _limit(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(("path", "at_limit", "past_limit"), [
    (("declarant", "name"), "n" * 64, "n" * 65),
    (("declarant", "id"), "i" * 35, "i" * 36),
    (("guarantee", "referenceId"), "g" * 35, "g" * 36),
    (("goodsItems", 0, "commodity", "description"), "d" * 200, "d" * 201),
    (("goodsItems", 0, "grossMassMeasure"), 1e7, 1e7 + 1),
    (("goodsItems", 0, "valueAmount", "value"), 1e13, 1.1e13),
    (("goodsItems", 0, "sequenceNumeric"), MAX_GOODS, MAX_GOODS + 1),
    (("goodsItems", 0, "commodity", "classification", "id"), "1" * 10, "1" * 11),
    (("borderTransportMeans", "identificationId"), "K" * 15, "K" * 16),
    (("functionalReferenceId",), None, "26KE" + "A" * 15),
])
def test_every_limit_and_one_past_it(client: TestClient, world: World, path: tuple[str | int, ...],
                                     at_limit: Any, past_limit: Any) -> None:
    doc = document(world)
    if at_limit is not None:
        assert _post(client, _limit(doc, path, at_limit)).status_code == 201
    assert _locs(_post(client, _limit(document(world), path, past_limit))) == [("body", *path)]


def test_list_limits_and_hostile_values(client: TestClient, world: World) -> None:
    offices = [f"T{i:05d}" for i in range(MAX_TRANSIT_OFFICES + 1)]
    checks: list[tuple[dict[str, Any], tuple[Any, ...]]] = [
        (document(world, officesOfTransit=offices), ("body", "officesOfTransit")),
        (document(world, transportEquipment=[{"id": CONTAINERS[0]}] * (MAX_EQUIPMENT + 1)),
         ("body", "transportEquipment")),
        (document(world, transportEquipment=[{"id": CONTAINERS[0], "seals": [
            {"id": f"S{i}"} for i in range(MAX_SEALS_PER_EQUIPMENT + 1)]}]),
         ("body", "transportEquipment", 0, "seals")),
        (document(world, goodsItems=[{"sequenceNumeric": i + 1, "commodity": {"classification": {"id": "0902"}}}
                                     for i in range(MAX_GOODS + 1)]), ("body", "goodsItems")),
        (document(world, declarant={"name": "Acme\x00Ltd"}), ("body", "declarant", "name")),
        (document(world, declarant={"name": 42}), ("body", "declarant", "name")),
        (document(world, timeLimit=12), ("body", "timeLimit")),
        (document(world, goodsItems=[{"sequenceNumeric": "one", "commodity": {"classification": {"id": "0902"}}}]),
         ("body", "goodsItems", 0, "sequenceNumeric")),
        (document(world, transportEquipment=[{"id": "csqu3054383"}]), ("body", "transportEquipment", 0, "id")),
        (document(world, officeOfDeparture="KE\x00MBA"), ("body", "officeOfDeparture")),
    ]
    for doc, loc in checks:
        assert _locs(_post(client, doc)) == [loc], loc
    nan = client.post(f"{API}/declarations", content=b'{"goodsItems": [{"grossMassMeasure": NaN}]}',
                      headers=auth("integrator") | {"Content-Type": "application/json"})
    assert nan.status_code == 422
    assert ("body", "goodsItems", 0, "grossMassMeasure") in _locs(nan)


def test_openapi_documents_the_declaration(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    schema = spec["components"]["schemas"]["TransitDeclaration"]
    assert schema["additionalProperties"] is False
    assert {"functionalReferenceId", "declarant", "transportEquipment", "goodsItems", "timeLimit",
            "monitoring"} <= set(schema["properties"])
    assert set(spec["paths"][f"{API}/declarations/{{mrn}}"]) == {"get", "put"}


def test_an_amended_seal_list_takes_effect_for_the_engine(client: TestClient, world: World, ingest: IngestProcess,
                                                          database_url: str) -> None:
    """Through the broker and the real ingest: a seal number added by amendment is accepted at
    arming (a seal_armed milestone); the one the amendment removed is a seal_mismatch."""
    doc = document(world)
    mrn, seal_device = doc["functionalReferenceId"], doc["monitoring"]["sealIds"][0]
    removed = doc["transportEquipment"][0]["seals"][0]["id"]
    shipment_id = _post(client, doc).json()["shipment"]["id"]
    amended = copy.deepcopy(doc)
    amended["transportEquipment"][0]["seals"] = [{"id": "KRA-ADDED-" + mrn[-6:]}]
    assert _put(client, mrn, 1, amended).status_code == 200
    provision([seal_device])
    at_departure = (world.lon, world.lat)
    ts = now_ms() - 60_000
    send(seal_device, [event(0, ts, "KRA-ADDED-" + mrn[-6:], "armed", at_departure),
                       event(1, ts + 1000, removed, "armed", at_departure)])
    assert [(kind, office) for kind, office, _at, _detail in milestones(database_url, shipment_id)] == [
        ("seal_armed", world.departure)]
    assert seal_alerts(database_url, shipment_id) == [
        ("seal_mismatch", ts + 1000, ts + 1000,
         {"seal_number": removed, "reason": f"seal number {removed} is not declared on the shipment"})]


def test_bulk_endpoint_streams_a_report_line_per_line(client: TestClient, world: World, database_url: str) -> None:
    good, bad = document(world), document(world)
    bad["transportEquipment"][0]["id"] = "CSQU3054384"
    body = "\n".join(json.dumps(d) for d in (good, bad, good)) + "\n"
    response = client.post(f"{API}/declarations/import", content=body.encode(),
                           headers=auth("integrator") | {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    report = [json.loads(x) for x in response.text.splitlines()]
    assert [(r["line"], r["outcome"]) for r in report] == [(1, "created"), (2, "refused"), (3, "unchanged")]
    assert report[1]["reason"].startswith("transportEquipment.0.id: ")
    assert query(database_url, "SELECT count(*) FROM shipments WHERE reference = %s",
                 (bad["functionalReferenceId"],)) == [(0,)]
    wrong = client.post(f"{API}/declarations/import", content=body.encode(),
                        headers=auth("integrator") | {"Content-Type": "text/plain"})
    assert wrong.status_code == 415
    officer = client.post(f"{API}/declarations/import", content=body.encode(),
                          headers=auth("officer", "KE-MSA") | {"Content-Type": "application/x-ndjson"})
    assert officer.status_code == 403
