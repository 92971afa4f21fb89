"""The one exception geometry input raises (its own module so that geometry.py and
countries.py, which geometry.py imports, can both raise it without an import cycle)."""

from __future__ import annotations


class GeometryError(ValueError):
    """A route, zone or country that cannot be used; the message names the bad value."""
