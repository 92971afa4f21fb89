"""Declaration import throughput: the bulk path (``ctt declarations import``'s service,
every check, audit and risk assessment, a savepoint per line), one ``POST /declarations``
per declaration through the API (uvicorn, one process), and the peer in the same run: the
same rows (shipments, itineraries, seal numbers, goods, declarations) written with plain
psycopg COPY, no checks, no audit: the floor.

    .venv/bin/python -m bench.declarations [-n 1000]

``measure(url, n)`` is what ``bench/api.py`` calls (``url``: the database, as the
administrator or owner; the API and the import connect as ``ctt_api``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import string
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ctt.config import DB_API, DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from ctt.transit import run_service
from tests.support import ApiServer, as_role
from tracking_api.auth import Principal, mint
from tracking_api.config import ApiSettings
from tracking_api.schemas.declarations import TransitDeclaration, canonical, to_shipment
from tracking_api.services.declaration_import import LineReport, import_lines

BENCH_DB = "ctt_bench_declarations"
CONTAINERS = ["CSQU3054383", "TASU1170000"]


def _world(url: str) -> tuple[str, str, int]:
    """Two office zones in the Kenyan hinterland and a route between them (fresh codes each run)."""
    tag = "".join(random.choices(string.ascii_uppercase, k=6))
    square = '{"type":"Polygon","coordinates":[[[%s,-1.0],[%s,-1.0],[%s,-0.9],[%s,-0.9],[%s,-1.0]]]}'
    with psycopg.connect(url, autocommit=True) as conn:
        for code, lon in ((f"B{tag}D", 36.0), (f"B{tag}A", 37.0)):
            a, b = lon, lon + 0.1
            conn.execute("INSERT INTO zones (name, kind, office_code, geometry) VALUES (%s, 'office', %s, %s)",
                         (code, code, square % (a, b, b, a, a)))
        row = conn.execute("INSERT INTO routes (name, geometry) VALUES (%s, %s) RETURNING id", (
            f"bench {tag}", '{"type":"LineString","coordinates":[[36.05,-0.95],[37.05,-0.95]]}')).fetchone()
    assert row is not None
    return f"B{tag}D", f"B{tag}A", int(row[0])


def documents(url: str, n: int, kind: str) -> list[dict[str, Any]]:
    """``n`` valid declarations, each with its own MRN, tracker, e-seal and seal number."""
    departure, destination, route = _world(url)
    run = "".join(random.choices(string.ascii_uppercase, k=4)) + kind
    return [{
        "functionalReferenceId": f"26KE{run}{i:08d}",
        "declarant": {"name": f"Trader {i % 50}", "id": f"P05{i % 50:08d}X"},
        "borderTransportMeans": {"identificationId": f"KC{i:06d}"},
        "transportEquipment": [{"id": CONTAINERS[0], "seals": [{"id": f"S-{run}-{i}"}]}, {"id": CONTAINERS[1]}],
        "goodsItems": [{"sequenceNumeric": 1, "commodity": {"description": "tea", "classification": {"id": "0902"}},
                        "grossMassMeasure": 12000.0, "valueAmount": {"value": 30000.0, "currencyId": "USD"}}],
        "officeOfDeparture": departure, "officeOfDestination": destination,
        "timeLimit": "2030-01-01T12:00:00+03:00", "guarantee": {"referenceId": f"G{run}{i}"},
        "monitoring": {"trackerId": f"trk-{run}-{i}", "sealIds": [f"seal-{run}-{i}"], "routeId": route}}
        for i in range(n)]


def bulk(url: str, docs: list[dict[str, Any]]) -> float:
    """Declarations per second through the import's service (as ``ctt declarations import``)."""
    lines = [json.dumps(d) for d in docs]
    refused: list[LineReport] = []

    def reported(line: LineReport) -> None:
        if line.outcome != "created":
            refused.append(line)

    started = time.perf_counter()
    run_service({"conninfo": as_role(url, DB_API)},
                lambda conn: import_lines(conn, Principal("bench", "integrator"), lines, reported))
    elapsed = time.perf_counter() - started
    assert not refused, refused[:3]
    return len(docs) / elapsed


def one_by_one(api: ApiServer, docs: list[dict[str, Any]]) -> float:
    """Declarations per second, one ``POST /declarations`` each on a kept-alive connection."""
    token = mint(ApiSettings(), "bench", "integrator")
    conn = http.client.HTTPConnection("127.0.0.1", api.port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    for doc in docs:
        conn.request("POST", "/api/v1/declarations", json.dumps(doc), headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 201, body[:300]
    return len(docs) / (time.perf_counter() - started)


def peer(url: str, docs: list[dict[str, Any]]) -> float:
    """Declarations per second for the same rows written with COPY, no checks: the floor."""
    parsed = [TransitDeclaration.model_validate(d) for d in docs]  # not timed: the rows are ready
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        first = conn.execute("SELECT nextval('shipments_id_seq') FROM generate_series(1, %s)",
                             (len(parsed),)).fetchall()
        ids = [r[0] for r in first]
        cur = conn.cursor()
        with cur.copy("COPY shipments (id, reference, route_id, tracker_id, containers, office_of_departure, "
                      "office_of_destination, deadline, created_by, vehicle, operator) FROM STDIN") as copy:
            for sid, doc in zip(ids, parsed, strict=True):
                s = to_shipment(doc)
                copy.write_row((sid, s.reference, s.route_id, s.tracker_id, s.containers, s.office_of_departure,
                                s.office_of_destination, s.deadline, "bench", s.vehicle, s.operator))
        with cur.copy("COPY shipment_offices (shipment_id, position, role, office_code) FROM STDIN") as copy:
            for sid, doc in zip(ids, parsed, strict=True):
                copy.write_row((sid, 0, "departure", doc.officeOfDeparture))
                copy.write_row((sid, 1, "destination", doc.officeOfDestination))
        with cur.copy("COPY shipment_seal_numbers (shipment_id, seal_number, container) FROM STDIN") as copy:
            for sid, doc in zip(ids, parsed, strict=True):
                for e in doc.transportEquipment:
                    for seal in e.seals:
                        copy.write_row((sid, seal.id, e.id))
        with cur.copy("COPY shipment_goods (shipment_id, line, hs_code, description, gross_mass_kg, value, "
                      "currency) FROM STDIN") as copy:
            for sid, doc in zip(ids, parsed, strict=True):
                for g in doc.goodsItems:
                    copy.write_row((sid, g.sequenceNumeric, g.commodity.classification.id, g.commodity.description,
                                    g.grossMassMeasure, g.valueAmount.value if g.valueAmount else None,
                                    g.valueAmount.currencyId if g.valueAmount else None))
        with cur.copy("COPY declarations (mrn, shipment_id, version, document, document_sha256, created_by, "
                      "updated_by) FROM STDIN") as copy:
            for sid, doc in zip(ids, parsed, strict=True):
                data, sha = canonical(doc)
                copy.write_row((doc.functionalReferenceId, sid, 1, Jsonb(data), sha, "bench", "bench"))
    return len(docs) / (time.perf_counter() - started)


def measure(url: str, n: int) -> dict[str, float]:
    """Bulk, one-by-one and peer declarations per second, ``n`` declarations each (fresh ones)."""
    figures = {"bulk_per_s": bulk(url, documents(url, n, "B"))}
    api = ApiServer(url, Path(tempfile.gettempdir()) / "ctt-bench-declarations.log").start()
    try:
        figures["one_by_one_per_s"] = one_by_one(api, documents(url, n, "O"))
    finally:
        api.stop()
    figures["peer_copy_per_s"] = peer(url, documents(url, n, "P"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="declarations per path")
    n = parser.parse_args().n
    ops = OpsSettings()
    url = fresh_database(ops.admin_url(), BENCH_DB, ops.url_for(DB_OWNER))
    f = measure(url, n)
    print(f"declarations, {n} per path: bulk {f['bulk_per_s']:.0f}/s, one POST each {f['one_by_one_per_s']:.0f}/s; "
          f"peer (COPY, no checks) {f['peer_copy_per_s']:.0f}/s")
    print(f"ratio_bulk={f['peer_copy_per_s'] / f['bulk_per_s']:.1f} declarations_per_s={f['bulk_per_s']:.0f}")


if __name__ == "__main__":
    main()
