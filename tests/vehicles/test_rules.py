"""Fleet rules at the center, driven by device time (a fake clock: no waiting)."""
import pytest

from gateway.vehicles.geofence import Geofence, distance_m, distance_to_polyline_m
from gateway.vehicles.registry import Vehicle
from gateway.vehicles.rules import FleetRules, RuleSettings

T0 = 1_790_000_000
HAZMAT = Vehicle(phone="13800000002", plate="粤B99999", kind="hazmat", route="")
ESCORT = Vehicle(phone="13800000001", plate="粤B12345", kind="escort", route="cash-run-7")

TUNNEL = Geofence("river-tunnel", "circle", "keep_out", ("hazmat",), center=(22.50, 114.00), radius_m=500)
OLD_TOWN = Geofence("old-town", "polygon", "keep_out", ("hazmat",),
                    points=((22.60, 114.10), (22.60, 114.20), (22.70, 114.20), (22.70, 114.10)))
ROUTE = Geofence("cash-run-7", "corridor", "keep_in", (), points=((22.0, 114.0), (22.0, 114.1), (22.1, 114.1)),
                 width_m=200)


def rules(**settings):
    return FleetRules(RuleSettings(geofences=(TUNNEL, OLD_TOWN, ROUTE), **settings))


def drive(r, vehicle, samples):
    """samples: (seconds from T0, lat, lon, speed). Returns [(rule code, qualifier, t)]."""
    out = []
    for t, lat, lon, speed in samples:
        out += [(e.code, e.qualifier, t) for e in r.observe(vehicle, T0 + t, lat, lon, speed, True)]
    return out


def test_geometry():
    assert distance_m(22.0, 114.0, 22.0, 114.01) == pytest.approx(1031.2, rel=1e-3)
    assert distance_to_polyline_m(22.0005, 114.05, ROUTE.points) == pytest.approx(55.6, rel=1e-2)
    assert ROUTE.contains(22.0005, 114.05) and not ROUTE.contains(22.002, 114.05)
    assert OLD_TOWN.contains(22.65, 114.15) and not OLD_TOWN.contains(22.65, 114.25)
    assert TUNNEL.contains(22.502, 114.0) and not TUNNEL.contains(22.51, 114.0)


def test_overspeed_needs_its_minimum_duration_and_ends():
    r = rules(max_speed_kmh=80, overspeed_min_seconds=30)
    brief = [(t, 30.0, 110.0, 95.0) for t in range(0, 20)] + [(20, 30.0, 110.0, 60.0)]
    assert drive(r, HAZMAT, brief) == []                       # 20 s over the limit: not yet overspeed
    long = [(t, 30.0, 110.0, 95.0) for t in range(100, 140)] + [(140, 30.0, 110.0, 70.0)]
    assert drive(r, HAZMAT, long) == [(951, 1, 130), (951, 3, 140)]


def test_parking_too_long():
    r = rules(max_parking_seconds=600)
    samples = [(t, 30.0, 110.0, 0.0) for t in range(0, 700, 10)] + [(700, 30.0, 110.0, 30.0)]
    assert drive(r, HAZMAT, samples) == [(953, 1, 600), (953, 3, 700)]


def test_fatigue_short_rests_do_not_count():
    r = rules(max_parking_seconds=10 ** 9)
    samples, t = [], 0
    for _ in range(5):                      # 5 x (1 h driving + 10 min stop): the stops are too short
        samples += [(t + s, 30.0, 110.0, 60.0) for s in range(0, 3600, 60)]
        samples += [(t + 3600 + s, 30.0, 110.0, 0.0) for s in range(0, 600, 60)]
        t += 4200
    events = drive(r, HAZMAT, samples)
    # Driving started at 0; 4 h passed (with the short stops) at 14,400 s: first sample after that while moving.
    assert events[0][:2] == (952, 1) and 14400 < events[0][2] <= 4 * 4200
    samples = [(t + s, 30.0, 110.0, 0.0) for s in range(0, 1260, 60)]      # a real 20-minute rest
    assert drive(r, HAZMAT, samples)[-1][:2] == (952, 3)


def test_fatigue_silence_counts_as_rest():
    r = rules(max_parking_seconds=10 ** 9)
    samples = [(s, 30.0, 110.0, 60.0) for s in range(0, 3 * 3600, 60)]
    samples += [(s, 30.0, 110.0, 60.0) for s in range(3 * 3600 + 1800, 6 * 3600, 60)]   # 30 min engine off
    assert drive(r, HAZMAT, samples) == []


def test_hazmat_forbidden_zones_and_escort_route():
    r = rules()
    assert drive(r, HAZMAT, [(0, 22.52, 114.0, 40), (10, 22.501, 114.0, 40), (20, 22.52, 114.0, 40),
                             (30, 22.65, 114.15, 40)]) == [(954, 1, 10), (954, 3, 20), (954, 1, 30)]
    assert drive(r, ESCORT, [(0, 22.0, 114.05, 40)]) == []               # escorts may pass the tunnel zones
    assert drive(r, ESCORT, [(0, 22.0, 114.05, 40), (10, 22.01, 114.05, 40), (20, 22.05, 114.1, 40)]) == \
        [(956, 1, 10), (956, 3, 20)]
    [event] = r.observe(ESCORT, T0 + 30, 22.2, 114.1, 40, True)
    assert event.name == "Route deviation" and event.zone == 3 and event.position == (22.2, 114.1)


def test_late_reports_do_not_move_the_rules_back():
    r = rules(max_parking_seconds=600)
    drive(r, HAZMAT, [(t, 30.0, 110.0, 0.0) for t in range(0, 700, 10)])
    assert drive(r, HAZMAT, [(5, 30.0, 110.0, 90.0)]) == []
