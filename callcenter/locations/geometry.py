"""Fences in metres: which side of a fence a fix is on, given how accurate the fix is.

Degrees are not metres (a degree of longitude is 111 km at the equator and 85 km in Beijing), so nothing here
measures in degrees. A fence is judged in its own **azimuthal equidistant plane**: centred on the fence (a
circle's centre; a polygon's bounding-box centre), a point goes to (x, y) = its great-circle distance from the
centre along its bearing. Distances from the centre are exact; across a fence of at most ``MAX_FENCE_M`` the plane's
other distances are off by less than a metre (the scale error grows as (ρ/R)²/6: 1e-5 at 50 km). A circle is judged
by the great-circle distance itself; a polygon with shapely in that plane.

**The accuracy rule.** A fix says the device is within ``accuracy_m`` of (lat, lon). It is *inside* a fence only
if that whole disc is inside (the centre inside, at least ``accuracy_m`` from the line), *outside* only if the disc
does not touch the fence (the centre outside, more than ``accuracy_m`` from it), and *uncertain* otherwise: an
800 m cell-tower fix 300 m from the home's 500 m circle is uncertain, never an exit. Uncertain fixes change nothing
(``locations.fences``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# shapely (and numpy under it) cost every platform process about 19 MB once imported: only polygon fences need it,
# so it is imported where a polygon is built or judged, and a centre with circles alone never loads it.
if TYPE_CHECKING:
    from shapely.geometry import Polygon

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG): WGS-84's ellipsoid differs by < 0.5 % over a fence
MAX_FENCE_M = 50_000  # a circle's radius, a polygon's corners from its centre: a district, not a province
MIN_RADIUS_M = 10


class Side(enum.StrEnum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    UNCERTAIN = "uncertain"


@dataclasses.dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float


def distance_and_bearing(origin: LatLon, point: LatLon) -> tuple[float, float]:
    """Great-circle distance (metres, haversine) and initial bearing (radians from north) from origin to point."""
    phi1, phi2 = math.radians(origin.lat), math.radians(point.lat)
    dphi = phi2 - phi1
    dlambda = math.radians((point.lon - origin.lon + 540.0) % 360.0 - 180.0)  # the short way round
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    distance = 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
    bearing = math.atan2(math.sin(dlambda) * math.cos(phi2),
                         math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlambda))
    return distance, bearing


def project(origin: LatLon, point: LatLon) -> tuple[float, float]:
    """``point`` in the azimuthal equidistant plane around ``origin``: metres east (x) and north (y)."""
    distance, bearing = distance_and_bearing(origin, point)
    return distance * math.sin(bearing), distance * math.cos(bearing)


def classify(centre_inside: bool, to_line_m: float, accuracy_m: float) -> Side:
    """The accuracy rule (see the module): certain only when the whole disc of the fix is on one side."""
    if centre_inside and to_line_m >= accuracy_m:
        return Side.INSIDE
    if not centre_inside and to_line_m > accuracy_m:
        return Side.OUTSIDE
    return Side.UNCERTAIN


class FenceGeometry:
    """A fence's area, ready to judge fixes against: see ``circle`` and ``polygon``."""

    def side_of(self, point: LatLon, accuracy_m: float) -> Side:
        raise NotImplementedError

    def geojson(self) -> dict[str, Any]:
        """The area as a GeoJSON geometry in WGS-84 (RFC 7946: [lon, lat]); a circle is its centre Point (the
        radius goes beside it: GeoJSON has no circle)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, slots=True)
class Circle(FenceGeometry):
    center: LatLon
    radius_m: float

    def side_of(self, point: LatLon, accuracy_m: float) -> Side:
        distance, _ = distance_and_bearing(self.center, point)
        return classify(distance <= self.radius_m, abs(distance - self.radius_m), accuracy_m)

    def geojson(self) -> dict[str, Any]:
        return {"type": "Point", "coordinates": [self.center.lon, self.center.lat]}


@dataclasses.dataclass(frozen=True, slots=True)
class PolygonFence(FenceGeometry):
    points: tuple[LatLon, ...]
    origin: LatLon
    plane: Polygon  # in metres around ``origin``

    def side_of(self, point: LatLon, accuracy_m: float) -> Side:
        from shapely.geometry import Point

        here = Point(project(self.origin, point))
        return classify(bool(self.plane.covers(here)), float(self.plane.exterior.distance(here)), accuracy_m)

    def geojson(self) -> dict[str, Any]:
        from shapely.geometry import Polygon, mapping
        from shapely.geometry.polygon import orient

        # RFC 7946: the exterior ring closed and counter-clockwise.
        return dict(mapping(orient(Polygon([(p.lon, p.lat) for p in self.points]), sign=1.0)))


class BadArea(ValueError):
    """The area cannot be a fence; ``field`` names the part to fix (relative: ``radius_m``, ``points.3``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def circle(center: LatLon, radius_m: float) -> Circle:
    if not MIN_RADIUS_M <= radius_m <= MAX_FENCE_M:
        raise BadArea(f"the radius must be {MIN_RADIUS_M} to {MAX_FENCE_M} m", "radius_m")
    return Circle(center, radius_m)


def polygon(points: Sequence[LatLon]) -> PolygonFence:
    """A simple polygon of WGS-84 corners (not closed: the last corner joins the first), at most ``MAX_FENCE_M``
    from its centre; ``BadArea`` naming the corner or the polygon when it is not."""
    import shapely
    from shapely.geometry import Polygon

    corners = list(points)
    if len(corners) > 1 and corners[0] == corners[-1]:
        corners.pop()  # closed as GeoJSON closes rings: the same polygon
    if len(corners) < 3:
        raise BadArea("a polygon needs at least 3 distinct corners", "points")
    for index, corner in enumerate(corners):
        if corner in corners[:index]:
            raise BadArea(f"corner {index} repeats an earlier corner", f"points.{index}")
    lats, lons = [c.lat for c in corners], [c.lon for c in corners]
    west = lons[0]  # longitudes relative to the first corner, so a fence across 180° is not 360° wide
    relative = [(lon - west + 540.0) % 360.0 - 180.0 for lon in lons]
    centre_lon = (west + (min(relative) + max(relative)) / 2 + 540.0) % 360.0 - 180.0
    origin = LatLon((min(lats) + max(lats)) / 2, centre_lon)
    if max(distance_and_bearing(origin, corner)[0] for corner in corners) > MAX_FENCE_M:
        raise BadArea(f"the polygon reaches more than {MAX_FENCE_M} m from its centre", "points")
    plane = Polygon([project(origin, corner) for corner in corners])
    if not plane.is_valid:
        raise BadArea(f"the polygon is not simple: {shapely.is_valid_reason(plane)}", "points")
    if plane.area < math.pi * MIN_RADIUS_M ** 2:
        raise BadArea(f"the polygon encloses less than a {MIN_RADIUS_M} m circle", "points")
    return PolygonFence(tuple(corners), origin, plane)
