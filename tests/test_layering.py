"""The import graph of docs/protocol.md's layering: data flows one way, and the
wire contract sits at the bottom (DESIGN: protocol -> msgspec only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = frozenset(sys.stdlib_module_names)
PROJECT = ("protocol", "schema", "ingest", "geofence", "tracking_api", "firmware_sim", "ctt", "ctt_common")

# package -> the project and third-party top-level modules it may import (besides the stdlib)
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset({"protocol", "msgspec"}),
    "geofence": frozenset({"geofence", "protocol", "numpy", "numba", "pyproj", "shapely", "msgspec"}),
    "firmware_sim": frozenset({"firmware_sim", "protocol", "ctt_common", "msgspec", "numpy", "paho", "pydantic",
                               "pydantic_settings", "rich", "structlog"}),
}
FORBIDDEN: dict[str, frozenset[str]] = {
    "tracking_api": frozenset({"ingest", "geofence", "firmware_sim", "ctt"}),
    "ingest": frozenset({"tracking_api", "firmware_sim", "ctt"}),
}


def _imports(package: str) -> set[tuple[str, str]]:
    """(file, top-level module) for every import in ``package``, lazy imports included."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update((str(path.relative_to(ROOT)), name.split(".")[0]) for name in names)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    bad = sorted((f, m) for f, m in _imports(package) if m not in STDLIB and m not in ALLOWED[package])
    assert not bad, f"{package} imports outside its layer: {bad}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_services_do_not_import_each_other(package: str) -> None:
    bad = sorted((f, m) for f, m in _imports(package) if m in FORBIDDEN[package])
    assert not bad, f"{package} imports another service: {bad}"


def test_the_device_id_pattern_is_written_once() -> None:
    pattern = "[A-Za-z0-9_-]{1,64}"
    holders = sorted(str(p.relative_to(ROOT)) for package in PROJECT if (ROOT / package).is_dir()
                     for p in (ROOT / package).rglob("*.py") if pattern in p.read_text())
    assert holders == ["protocol/topics.py"]
