"""Threshold and state rules at the edge: sensor readings -> active alarms.

The register map says *when* a point is in alarm (thresholds, alarming states:
`modbus_maps.evaluate_alarms`); this module says *what* that alarm is, as a
Contact ID code, so the center and the 110 receiver file it correctly:
leak -> 151, over-pressure -> 150, high temperature -> 158, tank level -> 163,
vault door forced -> 423, cash box removed -> 133, panic input -> 120.

One rule needs the position: an escort vehicle's vault door may open only at
an allowed place (a bank branch, the depot). Open anywhere else is a forced
access alarm (423), even though "open" is a normal state of the map.

Each alarm is keyed (code, zone); the zone is the point's place in the map
plus `zone_base`, so two devices' alarms never collide.
"""
from protocols.modbus_maps import evaluate_alarms
from gateway.vehicles.geofence import distance_m

# Point-name prefix -> (Contact ID code, name). First match wins.
POINT_CODES = (
    ("leak", 151, "Hazmat leak"),
    ("tank_pressure", 150, "Tank over-pressure"),
    ("tank_temperature", 158, "Tank temperature high"),
    ("level", 163, "Tank level"),
    ("vault_door", 423, "Vault door forced"),
    ("cash_box", 133, "Cash box removed"),
    ("panic", 120, "Panic button"),
    ("tamper", 137, "Tamper"),
    ("ac_fail", 301, "Power cut"),
    ("low_battery", 302, "Low battery"),
    ("battery_voltage", 302, "Low battery"),
    ("zone", 130, "Intrusion"),
)
GENERAL_ALARM = (140, "General alarm")
SENSOR_SILENT = (380, "Sensor not answering")
VAULT_OPEN_OUTSIDE = (423, "Vault door opened outside an allowed place")


def point_code(name):
    for prefix, code, label in POINT_CODES:
        if name.startswith(prefix):
            return code, label
    return GENERAL_ALARM


class SensorRules:
    def __init__(self, device_name, device_map, zone_base=0, allowed_places=()):
        """allowed_places: (lat, lon, radius_m) where the vault door may open."""
        self.device_name = device_name
        self.map = device_map
        self.zones = {p.name: zone_base + i + 1 for i, p in enumerate(device_map.points)}
        self.allowed_places = tuple(allowed_places)

    def at_allowed_place(self, position):
        return position is not None and any(
            distance_m(lat, lon, position[0], position[1]) <= radius for lat, lon, radius in self.allowed_places)

    def evaluate(self, values, position):
        """{(code, zone): name} of the alarms these readings raise at this position
        (None: no fix, which counts as *not* at an allowed place)."""
        active = {}
        for point, level in evaluate_alarms(self.map, values).items():
            code, label = point_code(point)
            suffix = "" if level == "active" else " (%s)" % level.replace("_", "-")
            active[(code, self.zones[point])] = label + suffix
        door = values.get("vault_door")
        if door == "open" and not self.at_allowed_place(position):
            active[(VAULT_OPEN_OUTSIDE[0], self.zones["vault_door"])] = VAULT_OPEN_OUTSIDE[1]
        return active

    def silent(self):
        """The trouble raised when the device stops answering (zone = the device's base + 0)."""
        base = min(self.zones.values()) - 1
        return {(SENSOR_SILENT[0], base): "%s: %s" % (SENSOR_SILENT[1], self.device_name)}
