"""The shipment report's map, a PNG drawn with Pillow: country outlines, the route,
the itinerary's office zones, the track and the alerts as numbered markers, with a
scale bar. No IO and no clock: the same layers give the same bytes.

Positions are [lon, lat] degrees. The projection is equirectangular around the
extent's middle latitude (x scaled by its cosine): at a corridor's scale (a few
hundred km) distances on the image are true within a percent or two.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 800  # pixels
PAD = 0.08  # extent padding, fraction of each side
_LABEL_GRID = 20  # pixels per cell of the mask that places country names
MIN_SPAN_DEG = 0.05  # a stationary truck still gets a map a few km wide
EARTH_M_PER_DEG = 111_320.0

Position = tuple[float, float]  # lon, lat
Ring = Sequence[Sequence[float]]
Extent = tuple[float, float, float, float]  # west, south, east, north
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_SEA = (223, 236, 245)
_LAND_OUTSIDE = (236, 236, 232)
_LAND = (247, 245, 238)
_BORDER = (150, 150, 150)
_ROUTE = (150, 150, 160)
_TRACK = (20, 90, 200)
_ZONE = (230, 130, 20)
_SEVERITY = {"critical": (170, 0, 0), "high": (220, 40, 40), "medium": (235, 130, 0), "low": (120, 120, 120)}


@dataclass(frozen=True)
class Marker:
    number: int  # as in the report's alerts table
    lon: float
    lat: float
    severity: str


@dataclass(frozen=True)
class Layers:
    track: Sequence[Position]
    route: Sequence[Position]
    zones: Sequence[tuple[str, Sequence[Ring]]] = ()  # office code, polygon rings
    countries: Sequence[tuple[str, Sequence[Sequence[Ring]]]] = ()  # code, polygons (each a list of rings)
    markers: Sequence[Marker] = ()
    extent: Extent | None = field(default=None)  # None: from the other layers


def extent(points: Sequence[Position]) -> Extent:
    """The padded box around ``points`` (a default box near 0,0 when there are none)."""
    lons, lats = zip(*points, strict=True) if points else ((0.0,), (0.0,))
    w, e, s, n = min(lons), max(lons), min(lats), max(lats)
    dx, dy = max(e - w, MIN_SPAN_DEG), max(n - s, MIN_SPAN_DEG)
    cx, cy = (w + e) / 2, (s + n) / 2
    return (cx - dx * (0.5 + PAD), cy - dy * (0.5 + PAD), cx + dx * (0.5 + PAD), cy + dy * (0.5 + PAD))


def layer_points(layers: Layers) -> list[Position]:
    """What the map must show: track, route, zones, markers (countries only fill the rest)."""
    zone_points = [(p[0], p[1]) for _, rings in layers.zones for ring in rings for p in ring]
    return [*layers.track, *layers.route, *zone_points, *((m.lon, m.lat) for m in layers.markers)]


@dataclass(frozen=True)
class _Projection:
    west: float
    north: float
    scale: float  # pixels per degree of latitude
    kx: float  # cos(middle latitude)
    x0: float
    y0: float

    @classmethod
    def fit(cls, box: Extent) -> _Projection:
        w, s, e, n = box
        kx = math.cos(math.radians((s + n) / 2))
        scale = min(WIDTH / ((e - w) * kx), HEIGHT / (n - s))
        # Centre the extent on the image.
        return cls(w, n, scale, kx, (WIDTH - (e - w) * kx * scale) / 2, (HEIGHT - (n - s) * scale) / 2)

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return self.x0 + (lon - self.west) * self.kx * self.scale, self.y0 + (self.north - lat) * self.scale

    def metres_per_pixel(self) -> float:
        return EARTH_M_PER_DEG / self.scale


def render(layers: Layers) -> bytes:
    """The map as PNG bytes, WIDTH x HEIGHT."""
    box = layers.extent or extent(layer_points(layers))
    project = _Projection.fit(box)
    image = Image.new("RGB", (WIDTH, HEIGHT), _SEA if layers.countries else _LAND_OUTSIDE)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    small = ImageFont.load_default(size=12)
    _countries(draw, project, layers.countries, small)
    if len(layers.route) >= 2:
        draw.line([project(*p) for p in layers.route], fill=_ROUTE, width=7, joint="curve")
    for code, rings in layers.zones:
        for ring in rings:
            draw.polygon([project(p[0], p[1]) for p in ring], outline=_ZONE, width=3)
        x, y = project(rings[0][0][0], rings[0][0][1])
        draw.text((x + 6, y + 4), code, fill=_ZONE, font=small)
    if len(layers.track) >= 2:
        draw.line([project(*p) for p in layers.track], fill=_TRACK, width=3, joint="curve")
    for m in layers.markers:
        x, y = project(m.lon, m.lat)
        draw.ellipse((x - 12, y - 12, x + 12, y + 12), fill=_SEVERITY.get(m.severity, _SEVERITY["high"]),
                     outline="white", width=2)
        draw.text((x, y), str(m.number), fill="white", font=small, anchor="mm")
    _scale_bar(draw, project, font)
    _legend(draw, small)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _countries(draw: ImageDraw.ImageDraw, project: _Projection,
               countries: Sequence[tuple[str, Sequence[Sequence[Ring]]]], font: Font) -> None:
    for _code, polygons in countries:
        for rings in polygons:
            draw.polygon([project(p[0], p[1]) for p in rings[0]], fill=_LAND, outline=_BORDER, width=1)
    for code, polygons in countries:
        at = _label_point(project, polygons)
        if at is not None:
            draw.text(at, code, fill=_BORDER, font=font, anchor="mm")


def _label_point(project: _Projection, polygons: Sequence[Sequence[Ring]]) -> tuple[float, float] | None:
    """Where a country's name goes: the pixel of its visible part nearest that part's centroid
    (on a coarse mask); None when none of it is on the map."""
    mask = Image.new("1", (WIDTH // _LABEL_GRID, HEIGHT // _LABEL_GRID), 0)
    pen = ImageDraw.Draw(mask)
    for rings in polygons:
        pen.polygon([(x / _LABEL_GRID, y / _LABEL_GRID) for x, y in (project(p[0], p[1]) for p in rings[0])],
                    fill=1)
    inside = [(x, y) for y in range(mask.height) for x in range(mask.width) if mask.getpixel((x, y))]
    if not inside:
        return None
    cx, cy = sum(x for x, _ in inside) / len(inside), sum(y for _, y in inside) / len(inside)
    x, y = min(inside, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)
    return (x + 0.5) * _LABEL_GRID, (y + 0.5) * _LABEL_GRID


def _scale_bar(draw: ImageDraw.ImageDraw, project: _Projection, font: Font) -> None:
    """A bar of a round length (1, 2 or 5 x 10^k km) near a quarter of the image's width."""
    target_km = project.metres_per_pixel() * WIDTH / 4 / 1000
    exponent = math.floor(math.log10(target_km))
    km = max(m * 10**exponent for m in (1, 2, 5) if m * 10**exponent <= target_km)
    pixels = km * 1000 / project.metres_per_pixel()
    x, y = 30, HEIGHT - 30
    draw.rectangle((x - 8, y - 28, x + pixels + 70, y + 10), fill="white")
    draw.line([(x, y), (x + pixels, y)], fill="black", width=4)
    for tick in (x, x + pixels):
        draw.line([(tick, y - 8), (tick, y + 4)], fill="black", width=2)
    label = f"{km:g} km"
    draw.text((x, y - 26), label, fill="black", font=font)
    draw.text((x + pixels + 12, y - 8), "N ^", fill="black", font=font)


def _legend(draw: ImageDraw.ImageDraw, font: Font) -> None:
    x, y = WIDTH - 190, 14
    draw.rectangle((x - 10, y - 6, WIDTH - 10, y + 86), fill="white", outline=_BORDER)
    for i, (label, colour, width) in enumerate((("declared route", _ROUTE, 7), ("track", _TRACK, 3),
                                                ("office zone", _ZONE, 3))):
        draw.line([(x, y + 8 + 20 * i), (x + 34, y + 8 + 20 * i)], fill=colour, width=width)
        draw.text((x + 44, y + 1 + 20 * i), label, fill="black", font=font)
    draw.ellipse((x + 8, y + 62, x + 26, y + 80), fill=_SEVERITY["high"])
    draw.text((x + 44, y + 64), "alert (number)", fill="black", font=font)
