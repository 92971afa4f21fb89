"""Numba kernels on plain contiguous arrays, one module per concern:
``corridor`` (distance to routes through a segment grid), ``zones``
(point in polygon), ``stops`` (movingpandas-exact stop detection),
``devices`` (the many-devices rules kernel the engine calls) with the rules
of ``itinerary`` (milestones, skipped offices, border dwell),
``progress`` (route reversal, suspicious gaps) and ``borders`` (crossings,
bypass; countries from ``countries``), emitting ``events``.

Nothing here allocates objects or validates input: ``geometry.py`` and
``engine.py`` check and convert once at the Python boundary, then trust.

Numba's cache (``cache=True``) checks only the file of the function it
compiled, not the files of the kernels it calls: after editing one module,
delete ``geofence/kernels/__pycache__`` (or the ``NUMBA_CACHE_DIR``), or a
kernel in another module keeps running the old code.
"""

from geofence.kernels.corridor import centre_distances, locate_on_route, segment_distance, within_routes
from geofence.kernels.devices import STOP_ALERTED, STOP_AUTHORISED, STOP_NONE, evaluate_devices
from geofence.kernels.events import DEVIATION_ENDED, DEVIATION_OPENED, STOP_ENDED, STOP_OPENED
from geofence.kernels.stops import (
    compress_window,
    convex_hull,
    detect_stops,
    hull_rectangle,
    is_spike,
    mrr,
    stop_step,
)
from geofence.kernels.zones import in_polygon, zone_at, zones_of_points

__all__ = [
    "DEVIATION_ENDED",
    "DEVIATION_OPENED",
    "STOP_ALERTED",
    "STOP_AUTHORISED",
    "STOP_ENDED",
    "STOP_NONE",
    "STOP_OPENED",
    "centre_distances",
    "compress_window",
    "convex_hull",
    "detect_stops",
    "evaluate_devices",
    "hull_rectangle",
    "in_polygon",
    "is_spike",
    "locate_on_route",
    "mrr",
    "segment_distance",
    "stop_step",
    "within_routes",
    "zone_at",
    "zones_of_points",
]
