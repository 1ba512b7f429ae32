"""Fleet rules at the center, run on every position a vehicle reports.

Each rule is a small state machine per vehicle that raises an event when a
condition starts (qualifier 1) and a restore when it ends (qualifier 3):
overspeed (over the limit for a minimum duration), parked too long, fatigue
driving (more than 4 h of driving in which no rest lasted 20 min), geofences
(keep-out zones a hazmat vehicle may not enter, keep-in areas and escort route
corridors), and route deviation (leaving the vehicle's own route corridor).

Rules run on the *device* time of each report, never the wall clock: positions
back-filled through 0x0704 an hour late are judged when they happened, and
tests drive them with any clock they like. Device offline is the server's job
(it depends on silence, not on reports).
"""
from dataclasses import dataclass, field

from protocols import contactid
from gateway.vehicles.codes import RULE_CODES, SOURCE_RULES, make_event

MOVING_KMH = 5.0             # below this the vehicle counts as stopped (GNSS drift is 1-3 km/h)


@dataclass(frozen=True)
class RuleSettings:
    max_speed_kmh: float = 80.0
    overspeed_min_seconds: float = 30.0
    max_parking_seconds: float = 30 * 60
    max_driving_seconds: float = 4 * 3600      # road-transport rule: > 4 h continuous is fatigue
    min_rest_seconds: float = 20 * 60           # ... and a rest shorter than 20 min does not count
    geofences: tuple = ()


@dataclass
class _VehicleState:
    over_since: float | None = None
    overspeed: bool = False
    top_speed: float = 0.0
    stopped_since: float | None = None
    parked: bool = False
    driving_since: float | None = None
    rest_since: float | None = None
    fatigued: bool = False
    last_time: float | None = None
    fences: dict = field(default_factory=dict)   # fence name -> in violation


class FleetRules:
    def __init__(self, settings):
        self.settings = settings
        self.fences = {f.name: f for f in settings.geofences}
        self._zone = {f.name: i + 1 for i, f in enumerate(settings.geofences)}
        self.state = {}

    def observe(self, vehicle, device_time, lat, lon, speed_kmh, fix):
        """Events raised by this report (new conditions and ended ones)."""
        st = self.state.setdefault(vehicle.account, _VehicleState())
        if st.last_time is not None and device_time < st.last_time:
            return []             # an older report (retry, late back-fill): state moved on already
        out = []
        speed = speed_kmh if fix else 0.0
        self._overspeed(vehicle, st, device_time, speed, out)
        self._parking(vehicle, st, device_time, speed, fix, out)
        self._fatigue(vehicle, st, device_time, speed, out)
        if fix:
            self._geofences(vehicle, st, lat, lon, out)
        st.last_time = device_time
        return [self._event(vehicle, device_time, lat if fix else None, lon, *item) for item in out]

    def _event(self, vehicle, device_time, lat, lon, rule, qualifier, zone, values):
        code, name = RULE_CODES[rule]
        if qualifier == contactid.QUALIFIER_RESTORE:
            name = "End of " + name[0].lower() + name[1:]
        return make_event(vehicle.account, code, name=name, qualifier=qualifier, zone=zone,
                          device_time=device_time, source=SOURCE_RULES,
                          position=(lat, lon) if lat is not None else None, values=values)

    def _overspeed(self, vehicle, st, t, speed, out):
        limit = vehicle.max_speed_kmh or self.settings.max_speed_kmh
        if speed > limit:
            if st.over_since is None:
                st.over_since, st.top_speed = t, speed
            st.top_speed = max(st.top_speed, speed)
            if not st.overspeed and t - st.over_since >= self.settings.overspeed_min_seconds:
                st.overspeed = True
                out.append(("overspeed", contactid.QUALIFIER_NEW, 0,
                            {"speed_kmh": speed, "limit_kmh": limit, "over_for_s": t - st.over_since}))
        else:
            if st.overspeed:
                out.append(("overspeed", contactid.QUALIFIER_RESTORE, 0,
                            {"top_speed_kmh": st.top_speed, "limit_kmh": limit, "lasted_s": t - st.over_since}))
            st.over_since, st.overspeed = None, False

    def _parking(self, vehicle, st, t, speed, fix, out):
        if speed < MOVING_KMH:
            if st.stopped_since is None:
                st.stopped_since = t
            if not st.parked and t - st.stopped_since >= self.settings.max_parking_seconds:
                st.parked = True
                out.append(("parking", contactid.QUALIFIER_NEW, 0, {"parked_for_s": t - st.stopped_since}))
        else:
            if st.parked:
                out.append(("parking", contactid.QUALIFIER_RESTORE, 0, {"parked_for_s": t - st.stopped_since}))
            st.stopped_since, st.parked = None, False

    def _fatigue(self, vehicle, st, t, speed, out):
        s = self.settings
        # Silence longer than a rest (engine off, no reports) counts as a rest.
        if st.last_time is not None and t - st.last_time >= s.min_rest_seconds and st.rest_since is None:
            st.rest_since = st.last_time
        if speed >= MOVING_KMH:
            if st.rest_since is not None and t - st.rest_since >= s.min_rest_seconds:
                st.driving_since = None          # the rest was long enough: a new driving period
            st.rest_since = None
            if st.driving_since is None:
                st.driving_since = t
            if not st.fatigued and t - st.driving_since > s.max_driving_seconds:
                st.fatigued = True
                out.append(("fatigue", contactid.QUALIFIER_NEW, 0, {"driving_for_s": t - st.driving_since}))
        else:
            if st.rest_since is None:
                st.rest_since = t
            if t - st.rest_since >= s.min_rest_seconds:
                if st.fatigued:
                    out.append(("fatigue", contactid.QUALIFIER_RESTORE, 0, {"rested_s": t - st.rest_since}))
                st.fatigued, st.driving_since = False, None

    def _geofences(self, vehicle, st, lat, lon, out):
        for fence in self.fences.values():
            is_route = fence.name == vehicle.route
            if not (is_route or fence.applies_to(vehicle)):
                continue
            inside = fence.contains(lat, lon)
            violating = inside if fence.rule == "keep_out" else not inside
            if violating == st.fences.get(fence.name, False):
                continue
            st.fences[fence.name] = violating
            rule = "route_deviation" if is_route else ("forbidden_zone" if fence.rule == "keep_out" else "left_area")
            out.append((rule, contactid.QUALIFIER_NEW if violating else contactid.QUALIFIER_RESTORE,
                        self._zone[fence.name], {"geofence": fence.name}))
