# Shared constants of the panel. Partition states are the strings users say:
# "disarmed", "arming", "armed_away", "armed_home", "armed_night", "pending",
# "triggered" (literals, not named constants: each name is one more qstr in RAM).
from core.compat import ticks_add, ticks_diff
from protocols.bus import ARMED                     # the bus says which states are armed

ALARM_CODE = {"entry_exit": 134, "instant": 130, "perimeter": 131, "interior": 132,
              "fire": 110, "medical": 100, "tamper": 137}

FN_KEYS = "ASN#"
MAXKEYS = 24


def dl(now, s):
    return ticks_add(now, int(s * 1000))


def due(now, deadline):
    return ticks_diff(now, deadline) >= 0


