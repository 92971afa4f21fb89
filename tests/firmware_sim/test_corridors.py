"""The border corridors and posts of firmware_sim/corridors.py against the country
outlines the backend loads: each road crosses its boundary only inside its post's two
zones, stays clear of it elsewhere, and the boundary the simulator keeps is the data's."""

from __future__ import annotations

import pytest
import shapely
from shapely import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from firmware_sim.corridors import (
    BORDER_POSTS,
    BUNGOMA_BUSIA_TORORO,
    BUNGOMA_MALABA_TORORO,
    KABALE_KATUNA_KIGALI,
    NORTHERN_CORRIDOR,
    OFFICES,
    POST_HALF_WIDTH_M,
    BorderPost,
    Corridor,
)
from firmware_sim.route import RouteLine
from firmware_sim.transit_scenarios import post_zones
from tests.firmware_sim.outlines import metric

# (corridor, post) pairs: the ground truth's short corridors and the demo's whole one.
ROADS = [(BUNGOMA_MALABA_TORORO, "Malaba"), (BUNGOMA_BUSIA_TORORO, "Busia"), (KABALE_KATUNA_KIGALI, "Katuna"),
         (NORTHERN_CORRIDOR, "Malaba"), (NORTHERN_CORRIDOR, "Katuna")]
# A fix 300 m off (a multipath jump) plus its noise must never land across the boundary away from a post.
CLEAR_OF_BOUNDARY_M = 500.0
KEPT_BOUNDARY_TOLERANCE_M = 150.0


def _boundary(outlines: dict[str, BaseGeometry], post: BorderPost) -> BaseGeometry:
    a, b = (s.country for s in post.sides)
    return outlines[a].boundary.intersection(outlines[b].buffer(0.0005))


def _road(corridor: Corridor) -> tuple[RouteLine, LineString]:
    route = RouteLine.from_corridor(corridor)
    return route, LineString(list(zip(route.lon, route.lat, strict=True)))


@pytest.mark.parametrize(("corridor", "post_name"), ROADS, ids=[f"{c.name}@{p}" for c, p in ROADS])
def test_the_road_crosses_the_boundary_only_inside_its_post_zones(
        outlines: dict[str, BaseGeometry], corridor: Corridor, post_name: str) -> None:
    post = BORDER_POSTS[post_name]
    route, road = _road(corridor)
    zones = shapely.union_all([Polygon(z.ring) for z in post_zones("t", route, post)])
    crossings = road.intersection(_boundary(outlines, post))
    points = list(getattr(crossings, "geoms", [crossings]))
    m = metric(post.crossing.lon, post.crossing.lat)
    assert points, f"{corridor.name} never crosses at {post_name}"
    for p in points:
        assert zones.contains(p), (post_name, p)
        assert m(p).distance(m(Point(post.crossing.lon, post.crossing.lat))) < 300.0
    # Each side's zone lies in its own country, and reaches the boundary on the road.
    for zone, side in zip(post_zones("t", route, post), post.sides, strict=True):
        polygon = Polygon(zone.ring)
        assert polygon.is_valid and polygon.exterior.is_ccw
        assert outlines[side.country].contains(polygon.centroid), (zone.name, side.country)
        assert m(polygon).distance(m(Point(post.crossing.lon, post.crossing.lat))) < 1.0


@pytest.mark.parametrize("corridor", [c for c, _ in ROADS[:3]], ids=lambda c: c.name)
def test_away_from_its_post_the_road_stays_clear_of_every_boundary(
        outlines: dict[str, BaseGeometry], corridor: Corridor) -> None:
    (post_name,) = [p for c, p in ROADS if c is corridor]
    post = BORDER_POSTS[post_name]
    route, road = _road(corridor)
    zones = shapely.union_all([Polygon(z.ring) for z in post_zones("t", route, post)])
    m = metric(post.crossing.lon, post.crossing.lat)
    elsewhere = m(road.difference(zones))
    borders = shapely.union_all([outlines[c].boundary for c in {s.country for s in post.sides}])
    nearest = elsewhere.distance(m(borders))
    assert nearest >= CLEAR_OF_BOUNDARY_M, (corridor.name, round(nearest))


@pytest.mark.parametrize("post", list(BORDER_POSTS.values()), ids=lambda p: p.name)
def test_the_boundary_the_simulator_keeps_is_the_data_s(outlines: dict[str, BaseGeometry], post: BorderPost) -> None:
    m = metric(post.crossing.lon, post.crossing.lat)
    kept = m(LineString(post.boundary))
    data = m(_boundary(outlines, post))
    near = data.intersection(m(Point(post.crossing.lon, post.crossing.lat)).buffer(4000.0))
    assert shapely.hausdorff_distance(near, kept.intersection(near.buffer(KEPT_BOUNDARY_TOLERANCE_M))) <= \
        KEPT_BOUNDARY_TOLERANCE_M
    assert max(data.distance(Point(xy)) for xy in kept.coords) <= KEPT_BOUNDARY_TOLERANCE_M


def test_offices_are_in_their_countries_and_posts_are_wider_than_a_jump(outlines: dict[str, BaseGeometry]) -> None:
    for office in OFFICES.values():
        assert outlines[office.country].contains(Point(office.place.lon, office.place.lat)), office.code
    assert POST_HALF_WIDTH_M > 300.0 + 2 * 30.0  # a 300 m jump from the road, plus noise, stays inside
