"""The country outlines, loaded once for every offline check of the border corridors."""

from __future__ import annotations

import pytest
from shapely.geometry.base import BaseGeometry

from tests.firmware_sim.outlines import load_outlines


@pytest.fixture(scope="session")
def outlines() -> dict[str, BaseGeometry]:
    return load_outlines()
