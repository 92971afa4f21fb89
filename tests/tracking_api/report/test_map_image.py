"""The report's map alone (no database): size, determinism, markers where the alerts are,
the extent around what must be seen."""

from __future__ import annotations

import io

from PIL import Image

from tracking_api.report.map_image import HEIGHT, WIDTH, Layers, Marker, _Projection, extent, layer_points, render

ROUTE = [(39.66, -4.04), (38.5, -3.0), (36.82, -1.29)]
SQUARE = [[[38.4, -3.1], [38.6, -3.1], [38.6, -2.9], [38.4, -2.9], [38.4, -3.1]]]
KENYA_ISH = [[[[35.0, -5.0], [42.0, -5.0], [42.0, 1.0], [35.0, 1.0], [35.0, -5.0]]]]


def layers() -> Layers:
    return Layers(track=ROUTE, route=ROUTE, zones=[("KEMAL", SQUARE)], countries=[("KEN", KENYA_ISH)],
                  markers=[Marker(1, 39.0, -3.4, "critical")])


def test_the_map_is_a_png_of_the_documented_size_and_the_same_for_the_same_layers() -> None:
    png = render(layers())
    assert png == render(layers())
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))


def test_alerts_are_drawn_where_they_happened_and_everything_is_in_the_extent() -> None:
    box = extent(layer_points(layers()))
    assert box[0] < 36.82 and box[2] > 39.66 and box[1] < -4.04 and box[3] > -1.29
    project = _Projection.fit(box)
    image = Image.open(io.BytesIO(render(layers()))).convert("RGB")
    x, y = project(39.0, -3.4)
    red, green, blue = image.getpixel((int(x) + 6, int(y)))  # type: ignore[misc]
    assert red > 120 and green < 60 and blue < 60  # the critical marker's fill
    for lon, lat in ROUTE:
        px, py = project(lon, lat)
        assert 0 <= px < WIDTH and 0 <= py < HEIGHT
