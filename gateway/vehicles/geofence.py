"""Geofences: circles, polygons and route corridors, on WGS-84 degrees.

Distances use a local equirectangular projection around the point being tested:
inside a city-to-province sized fence the error is well under a metre per
kilometre, far below GNSS noise, and it costs a few multiplications per test.
Polygons are tested in degrees (ray casting), which is exact for the fence as
drawn on a lat/lon map, the way operators draw them.
"""
import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_000.0
SHAPES = ("circle", "polygon", "corridor")
# keep_out: entering raises an alarm (hazmat no-go zones); keep_in: leaving
# raises one (an escort route corridor, a depot, a permitted region).
RULES = ("keep_out", "keep_in")


def _xy(lat, lon, lat0, lon0):
    """Metres east/north of (lat0, lon0)."""
    x = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    y = math.radians(lat - lat0) * EARTH_RADIUS_M
    return x, y


def distance_m(lat1, lon1, lat2, lon2):
    x, y = _xy(lat2, lon2, lat1, lon1)
    return math.hypot(x, y)


def distance_to_polyline_m(lat, lon, points):
    """Shortest distance from a point to a polyline of (lat, lon) vertices."""
    best = math.inf
    xy = [_xy(p[0], p[1], lat, lon) for p in points]
    if len(xy) == 1:
        return math.hypot(*xy[0])
    for (ax, ay), (bx, by) in zip(xy, xy[1:]):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def in_polygon(lat, lon, points):
    inside = False
    n = len(points)
    for i in range(n):
        (lat1, lon1), (lat2, lon2) = points[i], points[(i + 1) % n]
        if (lat1 > lat) != (lat2 > lat):
            cross_lon = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < cross_lon:
                inside = not inside
    return inside


@dataclass(frozen=True)
class Geofence:
    name: str
    shape: str
    rule: str = "keep_out"
    kinds: tuple = ()              # vehicle kinds it applies to; () = only vehicles naming it as their route
    center: tuple = None           # circle: (lat, lon)
    radius_m: float = 0.0          # circle
    points: tuple = ()             # polygon vertices / corridor centre line, (lat, lon) each
    width_m: float = 0.0           # corridor: full width, centred on the line

    def contains(self, lat, lon):
        if self.shape == "circle":
            return distance_m(self.center[0], self.center[1], lat, lon) <= self.radius_m
        if self.shape == "polygon":
            return in_polygon(lat, lon, self.points)
        return distance_to_polyline_m(lat, lon, self.points) <= self.width_m / 2

    def applies_to(self, vehicle):
        return vehicle.kind in self.kinds
