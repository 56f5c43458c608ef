"""Fences are judged in metres, never degrees, and a fix is on a side only when its whole accuracy circle is."""

from __future__ import annotations

import pytest

from callcenter.locations.geometry import BadArea, LatLon, Side, circle, distance_and_bearing, polygon, project
from tests.unit.alarms.factory import HOME
from tests.unit.locations.factory import east_of, north_of

CENTRE = LatLon(*HOME)


def test_a_degree_of_longitude_is_not_a_degree_of_latitude() -> None:
    # 0.01° east in Beijing (39.9° N) is ~853 m; 0.01° north is ~1112 m. Treating degrees alike would be 30 % off.
    east, _ = distance_and_bearing(CENTRE, LatLon(HOME[0], HOME[1] + 0.01))
    north, _ = distance_and_bearing(CENTRE, LatLon(HOME[0] + 0.01, HOME[1]))
    assert east == pytest.approx(853.5, abs=1) and north == pytest.approx(1111.9, abs=1)
    x, y = project(CENTRE, LatLon(*east_of(HOME, 400)))
    assert (x, y) == (pytest.approx(400, abs=0.01), pytest.approx(0, abs=0.05))  # a parallel bends north a little
    fence = circle(CENTRE, 500)
    # 0.005° of longitude is 427 m here: inside a 500 m circle although 0.005 "looks like" 555 m of latitude.
    assert fence.side_of(LatLon(HOME[0], HOME[1] + 0.005), 10) is Side.INSIDE
    assert fence.side_of(LatLon(HOME[0] + 0.005, HOME[1]), 10) is Side.OUTSIDE


@pytest.mark.parametrize(("metres", "accuracy", "side"), [
    (0, 10, Side.INSIDE),
    (480, 10, Side.INSIDE),
    (495, 10, Side.UNCERTAIN),  # the disc crosses the line
    (505, 10, Side.UNCERTAIN),
    (520, 10, Side.OUTSIDE),
    (800, 800, Side.UNCERTAIN),  # an 800 m cell fix 300 m past a 500 m fence: maybe still home
    (1400, 800, Side.OUTSIDE),
    (100, 800, Side.UNCERTAIN),  # nor is it certainly home
])
def test_the_accuracy_circle_must_lie_wholly_on_one_side(metres: float, accuracy: float, side: Side) -> None:
    assert circle(CENTRE, 500).side_of(LatLon(*east_of(HOME, metres)), accuracy) is side
    assert circle(CENTRE, 500).side_of(LatLon(*north_of(HOME, -metres)), accuracy) is side


def test_a_polygon_is_judged_in_metres_around_it() -> None:
    # A 1 km × 600 m block with the home at its south-west corner area; corners given in degrees.
    sw = north_of(east_of(HOME, -200), -100)
    corners = [sw, east_of(sw, 1000), north_of(east_of(sw, 1000), 600), north_of(sw, 600)]
    block = polygon([LatLon(*c) for c in corners])
    assert block.side_of(LatLon(*HOME), 10) is Side.INSIDE
    assert block.side_of(LatLon(*HOME), 150) is Side.UNCERTAIN  # 100 m from the southern edge
    assert block.side_of(LatLon(*north_of(HOME, -130)), 20) is Side.OUTSIDE
    assert block.side_of(LatLon(*north_of(east_of(sw, 990), 50)), 5) is Side.INSIDE  # 10 m in from the east
    assert block.side_of(LatLon(*north_of(east_of(sw, 1010), 50)), 5) is Side.OUTSIDE
    assert block.side_of(LatLon(*north_of(east_of(sw, 1010), 50)), 15) is Side.UNCERTAIN
    geojson = block.geojson()
    assert geojson["type"] == "Polygon" and len(geojson["coordinates"][0]) == 5
    assert list(geojson["coordinates"][0][0]) == list(geojson["coordinates"][0][-1])  # closed, [lon, lat]
    assert geojson["coordinates"][0][0][0] == pytest.approx(sw[1])


def test_bad_areas_name_what_to_fix() -> None:
    a, b, c, d = LatLon(*HOME), LatLon(*east_of(HOME, 500)), LatLon(*north_of(east_of(HOME, 500), 500)), \
        LatLon(*north_of(HOME, 500))
    cases = [
        (lambda: polygon([a, b]), "points"),
        (lambda: polygon([a, b, a]), "points"),  # closed, then only two corners
        (lambda: polygon([a, c, b, d]), "points"),  # a bow tie crosses itself
        (lambda: polygon([a, b, c, b]), "points.3"),
        (lambda: polygon([a, b, LatLon(*north_of(HOME, 120_000))]), "points"),
        (lambda: circle(CENTRE, 5), "radius_m"),
        (lambda: circle(CENTRE, 60_000), "radius_m"),
    ]
    for make, field in cases:
        with pytest.raises(BadArea) as bad:
            make()
        assert bad.value.field == field, (field, str(bad.value))
    assert polygon([a, b, c, d, a]).points == (a, b, c, d)  # a closed ring is the same polygon


def test_a_fence_across_the_antimeridian_is_not_the_whole_world() -> None:
    square = polygon([LatLon(-16.0, 179.99), LatLon(-16.0, -179.99), LatLon(-16.01, -179.99), LatLon(-16.01, 179.99)])
    assert square.side_of(LatLon(-16.005, 180.0), 5) is Side.INSIDE
    assert square.side_of(LatLon(-16.005, 0.0), 5) is Side.OUTSIDE
