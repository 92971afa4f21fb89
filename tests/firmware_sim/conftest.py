"""The country outlines, loaded once for every offline check of the border corridors."""

from __future__ import annotations

import pytest
from shapely.geometry.base import BaseGeometry

from tests.firmware_sim.countries import load_countries


@pytest.fixture(scope="session")
def countries() -> dict[str, BaseGeometry]:
    return load_countries()
