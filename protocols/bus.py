# The device bus (MQTT): its topics and payloads, written once for the devices
# (firmware/core/app.py, panel/panel.py, intercom/door.py) and the gateway
# (gateway/sources/mqtt.py, the console's device state). Runs on CPython and
# MicroPython. The panel loads it, so it holds little data and few names (every
# identifier is an interned string in the device's RAM, and a few dozen more than
# the boot has room for cost a new 8 KB string pool on the unix port).
#
# Topics, under a site prefix (the device's mqtt.prefix, the gateway's
# mqtt_source.topic_prefix; both default to DEFAULT_PREFIX):
#   <prefix>/dev/<account>/status     device -> gateway, retained, QoS 0: the device's
#       state as one JSON object (bus_status.py), sent after a change (at most one per
#       status_ms) and on every (re)connect; when the device drops off, the broker
#       publishes its last will, WILL.
#   <prefix>/dev/<account>/event      device -> gateway: one Contact ID event,
#       {"code": 301, "qualifier": 1, "partition": 0, "zone": 0, "seq": 17,
#        "time": 1763900000, "lat": .., "lon": ..}; {} alone is a heartbeat.
#   <prefix>/dev/<account>/telemetry  device -> gateway: {"values": {...}, "seq",
#       "time", "lat", "lon"}.
#   <prefix>/room/<room>/call, <prefix>/guard/call   door station -> indoor unit /
#       guard station: {"op": "ring"|"hangup"|"cancel", "door": id, "call": n}
#   <prefix>/door/<id>/call           indoor unit / guard -> door station:
#       {"op": "answer"|"reject"|"busy"|"hangup"|"open", "call": n}
# <account> is the device's DC-09 account: the gateway's registry is keyed by it.
# The status object's keys and values: bus_status.py (kept apart, as contactid_codes.py
# is: the devices write the object and need not hold its description).

DEFAULT_PREFIX = "jifang"

STATUS = "status"
DEVICE_KINDS = tuple([STATUS, "event", "telemetry"])   # what a device publishes about itself (see below)

WILL = b'{"online": false}'

# A partition's states, as the panel keeps them (its state file stores the index:
# append only); ARMED are those that make a panel "armed". tuple([...]) rather than a
# tuple literal: from a .mpy a constant tuple's strings are loaded as string objects
# (about 40 bytes each on the device), a list's items are the interned names.
PARTITION_STATES = tuple(["disarmed", "arming", "armed_away", "armed_home", "armed_night", "pending",
                          "triggered"])
ARMED = PARTITION_STATES[2:5]


def device_topic(prefix, account, kind):
    """<prefix>/dev/<account>/<kind>; account "+" makes the gateway's filter."""
    return "%s/dev/%s/%s" % (prefix, account, kind)


def call_topic(prefix, to):
    """Where a door station rings: "guard" (the guard station) or a room number."""
    return "%s/guard/call" % prefix if to == "guard" else "%s/room/%s/call" % (prefix, to)


def door_topic(prefix, to):
    """Where a door station (`to`: its device id) hears its calls answered."""
    return "%s/door/%s/call" % (prefix, to)
