"""``ctt declarations import``: a JSON-lines file through the API's services on the test
database: the per-line report (created, amended, unchanged, refused naming every bad field),
a bad line in the middle leaves nothing of itself behind, the exit code and --report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ctt.cli import app
from ctt.config import DB_API
from tests.support import as_role, query
from tests.tracking_api.declaration_support import document, sql_world


def _run(database_url: str, lines: list[Any], tmp_path: Path) -> tuple[int, str, list[dict[str, Any]]]:
    source, report = tmp_path / "in.jsonl", tmp_path / "report.jsonl"
    source.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTT_DATABASE_URL", as_role(database_url, DB_API))  # as the API: its grants
        result = CliRunner().invoke(app, ["declarations", "import", str(source), "--report", str(report)])
    return result.exit_code, result.stdout, [json.loads(x) for x in report.read_text().splitlines()]


def test_per_line_report_with_a_bad_line_in_the_middle(database_url: str, tmp_path: Path) -> None:
    world = sql_world(database_url)
    first, bad, last = document(world), document(world), document(world)
    # Valid in form, refused by the database-side checks after its shipment rows would be written:
    # its second office of transit does not exist. And a line bad in several fields at once.
    bad["officesOfTransit"] = [world.destination]
    several = document(world)
    several["transportEquipment"][0]["id"] = "CSQU3054384"
    several["goodsItems"][0]["commodity"]["classification"]["id"] = "27AB"
    amended = copy.deepcopy(first)
    amended["timeLimit"] = "2030-02-01T00:00:00Z"
    code, out, report = _run(database_url, [first, bad, "", "{not json", several, last, first,
                                            {"version": 1, "document": amended},
                                            {"version": 1, "document": amended}], tmp_path)
    assert code == 1, out
    assert [(r["line"], r["outcome"]) for r in report] == [
        (1, "created"), (2, "refused"), (4, "refused"), (5, "refused"), (6, "created"), (7, "unchanged"),
        (8, "amended"), (9, "refused")]
    assert report[1]["mrn"] == bad["functionalReferenceId"]
    assert report[1]["reason"] == (f"officesOfTransit.0: office of transit {world.destination!r} is the "
                                   "office_of_destination")
    assert report[2]["reason"].startswith("not JSON")
    assert report[3]["reason"].count(";") == 1
    assert "transportEquipment.0.id" in report[3]["reason"]
    assert "goodsItems.0.commodity.classification.id" in report[3]["reason"]
    assert report[6]["version"] == 2 and "at version 2, not 1" in report[7]["reason"]
    assert f"2\t{bad['functionalReferenceId']}\trefused" in out
    # Nothing of the refused lines is there; the others are, each once.
    refs = [d["functionalReferenceId"] for d in (first, bad, several, last)]
    assert sorted(query(database_url, "SELECT reference FROM shipments WHERE reference = ANY(%s)", (refs,))) == sorted(
        [(first["functionalReferenceId"],), (last["functionalReferenceId"],)])
    assert query(database_url, "SELECT count(*) FROM declarations WHERE mrn = ANY(%s)", (refs,)) == [(2,)]
    audit = query(database_url, "SELECT action, object_id FROM audit_log WHERE object_id = ANY(%s) ORDER BY id",
                  (refs,))
    assert audit == [("declaration.created", refs[0]), ("declaration.created", refs[3]),
                     ("declaration.amended", refs[0])]


def test_a_line_refused_for_a_bound_tracker_leaves_no_shipment(database_url: str, tmp_path: Path) -> None:
    world = sql_world(database_url)
    taken = document(world)
    clash = document(world)  # the same tracker: valid in form, refused against the database
    clash["monitoring"]["trackerId"] = taken["monitoring"]["trackerId"]
    clash["borderTransportMeans"] = {"identificationId": "KDA 999Z"}  # another truck
    code, _out, report = _run(database_url, [taken, clash], tmp_path)
    assert code == 1
    assert [r["outcome"] for r in report] == ["created", "refused"]
    assert "is bound to active shipment" in report[1]["reason"]
    assert query(database_url, "SELECT count(*) FROM shipments WHERE reference = %s",
                 (clash["functionalReferenceId"],)) == [(0,)]


def test_a_seal_number_declared_twice_in_one_file_is_refused_the_second_time(database_url: str,
                                                                             tmp_path: Path) -> None:
    """In one batch (no database constraint would catch it: the batch's own bindings must)."""
    world = sql_world(database_url)
    first, second = document(world), document(world)
    second["transportEquipment"][0]["seals"] = first["transportEquipment"][0]["seals"]
    number = first["transportEquipment"][0]["seals"][0]["id"]
    code, _out, report = _run(database_url, [first, second], tmp_path)
    assert code == 1
    assert [r["outcome"] for r in report] == ["created", "refused"]
    assert report[1]["reason"] == (f"seal number {number} is declared on active shipment "
                                   f"{first['functionalReferenceId']} (registered)")
