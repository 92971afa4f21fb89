"""The country of each fix, found at store time from the ``countries`` table.

The index is rebuilt when ``geofence_version.geometry`` moves and the countries
themselves changed (a zone edit moves the same counter, and rebuilding the
world's outlines takes seconds): each row's ``xmin`` (the transaction that last
wrote it) tells.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import structlog

from geofence.countries import CountryIndex, CountryInput, check_country, country_from_geojson
from geofence.errors import GeometryError

log = structlog.get_logger("ingest.countries")

_VERSION = "SELECT geometry FROM geofence_version"
_FINGERPRINT = "SELECT coalesce(string_agg(code || ':' || xmin::text, ',' ORDER BY code), '') FROM countries"
_COUNTRIES = "SELECT code, geometry FROM countries ORDER BY code"


def load_index(cur: psycopg.Cursor[Any]) -> CountryIndex | None:
    """Every loaded country (None if there is none); one whose outline cannot be used is
    logged and left out."""
    countries: list[CountryInput] = []
    for code, geometry in cur.execute(_COUNTRIES).fetchall():
        try:
            country = country_from_geojson(code, geometry)
            check_country(country)
        except GeometryError as exc:
            log.error("country left out", country=code, error=str(exc))
            continue
        countries.append(country)
    return CountryIndex.build(countries) if countries else None


class CountryCache:
    """The countries' index, checked once per batch and rebuilt only when they changed."""

    def __init__(self) -> None:
        self._index: CountryIndex | None = None
        self._version = -1
        self._fingerprint: str | None = None

    def refresh(self, cur: psycopg.Cursor[Any]) -> CountryIndex | None:
        row = cur.execute(_VERSION).fetchone()
        version = int(row[0]) if row else 0
        if version == self._version:
            return self._index
        fingerprint_row = cur.execute(_FINGERPRINT).fetchone()
        fingerprint = str(fingerprint_row[0]) if fingerprint_row else ""
        if fingerprint != self._fingerprint:
            self._index = load_index(cur)
            self._fingerprint = fingerprint
            log.info("countries loaded", countries=len(self._index.codes) if self._index else 0)
        self._version = version
        return self._index

    def of_fixes(self, cur: psycopg.Cursor[Any], lon: list[float], lat: list[float]) -> list[str | None]:
        """Alpha-3 code of each (lon, lat) degrees, None where no country is loaded (sea, no data)."""
        index = self.refresh(cur)
        if index is None or not lon:
            return [None] * len(lon)
        return index.of_points(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
