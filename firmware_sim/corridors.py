"""Transit corridors with real towns' coordinates (WGS84 degrees)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Corridor:
    name: str
    waypoints: tuple[Place, ...]
    rest_areas: tuple[str, ...]  # waypoint names where trucks make planned stops
    borders: tuple[str, ...]  # waypoint names where trucks clear customs


# The Northern Corridor: port of Mombasa to Kigali, crossing Kenya-Uganda at
# Malaba and Uganda-Rwanda at Katuna/Gatuna (about 1,700 km by these points).
NORTHERN_CORRIDOR = Corridor(
    name="Mombasa-Kigali",
    waypoints=(
        Place("Mombasa", -4.0435, 39.6682),
        Place("Mariakani", -3.8667, 39.4667),
        Place("Voi", -3.3961, 38.5561),
        Place("Mtito Andei", -2.6897, 38.1667),
        Place("Emali", -2.0833, 37.4667),
        Place("Athi River", -1.4561, 36.9783),
        Place("Nairobi", -1.2864, 36.8172),
        Place("Naivasha", -0.7167, 36.4333),
        Place("Nakuru", -0.3031, 36.0800),
        Place("Eldoret", 0.5143, 35.2698),
        Place("Bungoma", 0.5635, 34.5606),
        Place("Malaba", 0.6350, 34.2817),
        Place("Tororo", 0.6928, 34.1809),
        Place("Jinja", 0.4244, 33.2042),
        Place("Kampala", 0.3476, 32.5825),
        Place("Masaka", -0.3338, 31.7341),
        Place("Mbarara", -0.6072, 30.6545),
        Place("Kabale", -1.2486, 29.9894),
        Place("Katuna", -1.4333, 30.0167),
        Place("Kigali", -1.9441, 30.0619),
    ),
    rest_areas=("Mtito Andei", "Nakuru", "Jinja", "Mbarara"),
    borders=("Malaba", "Katuna"),
)

# Its first 150 km, a few hours' drive: long enough for every alert case, short
# enough for a test. The weighbridge town of Mariakani is the rest stop.
MOMBASA_VOI = Corridor(
    name="Mombasa-Voi",
    waypoints=NORTHERN_CORRIDOR.waypoints[:3],
    rest_areas=("Mariakani",),
    borders=(),
)

CORRIDORS = {"northern": NORTHERN_CORRIDOR, "mombasa-voi": MOMBASA_VOI}
