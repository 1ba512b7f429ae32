# The device bus's status object (protocols/bus.py: <prefix>/dev/<account>/status):
# each key and what its value may be. Written by the devices (firmware/core/app.py,
# panel/panel.py, intercom/door.py write these keys), read and checked by the gateway
# (gateway/sources/mqtt.py). Kept apart from bus.py so that the devices, which only
# write the object, do not hold its description in RAM. Runs on both interpreters.
#
#   online     the device is connected; false: the broker's last will (bus.WILL)
#   role       what the device is
#   reset      the cause of its last reset
#   pending    events queued on it, not yet acknowledged by a receiver
#   link       a DC-09 receiver is reachable
#   panel:     partitions (number -> bus.PARTITION_STATES), ac (mains present),
#              battery_low, tamper (the box)
#   intercom:  call (call state), door, forced (opened without a grant), held (open
#              too long), tamper
from protocols.bus import PARTITION_STATES

MAX_PARTITIONS = 99          # Contact ID's group field is 00-99

SPEC = {
    "online": bool, "role": ("panel", "intercom"),
    "reset": ("power_on", "wdt", "soft", "hard", "brownout", "deepsleep", "unknown"),
    "pending": int, "link": bool,
    "partitions": dict, "ac": bool, "battery_low": bool, "tamper": bool,
    "call": ("idle", "ringing", "talking"), "door": ("open", "closed"), "forced": bool, "held": bool,
}


def problem(data):
    """Why `data` (decoded JSON) is not a status, or None if it is one. Every key is
    optional but "online"; a key SPEC does not name is refused."""
    if not isinstance(data, dict):
        return "a status is a JSON object"
    if not isinstance(data.get("online"), bool):
        return 'a status needs "online": true or false'
    for key in data:
        value = data[key]
        allowed = SPEC.get(key)
        if allowed is None:
            return "unknown status key %r" % (key,)
        if allowed is dict:
            if not isinstance(value, dict) or len(value) > MAX_PARTITIONS:
                return "partitions must be an object of at most %d partitions" % MAX_PARTITIONS
            for n in value:
                if not (n.isdigit() and 1 <= int(n) <= MAX_PARTITIONS) or value[n] not in PARTITION_STATES:
                    return "partition %r: %r is not a partition state" % (n, value[n])
        elif allowed is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return "%s must be a count" % key
        elif allowed is bool:
            if not isinstance(value, bool):
                return "%s must be true or false" % key
        elif value not in allowed:
            return "%s must be one of %s" % (key, ", ".join(allowed))
    return None
