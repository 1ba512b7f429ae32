"""JT/T 808 names and codes: message ids, results, alarm and status bits, loads,
signals, and the error every JT/T 808 module raises. The tables Traccar keeps in
its protocol class; framing (jt808_framing.py) and bodies (jt808_bodies.py) build
on them, and protocols.jt808 gathers all three. CPython only."""
from datetime import timedelta, timezone

GMT8 = timezone(timedelta(hours=8), "GMT+8")     # the standard's clock


class JT808Error(ValueError):
    def __init__(self, reason, message):
        super().__init__("%s: %s" % (reason, message))
        self.reason = reason


# --------------------------------------------------------------------------
# names

MESSAGE_NAMES = {
    0x0001: "terminal_response", 0x8001: "platform_response",
    0x0002: "heartbeat", 0x0003: "unregister",
    0x0100: "register", 0x8100: "register_response", 0x0102: "authenticate",
    0x8103: "set_params", 0x8104: "query_params", 0x0104: "query_params_response",
    0x0200: "location_report", 0x8201: "location_query", 0x0201: "location_query_response",
    0x8202: "tracking_control", 0x8203: "alarm_ack", 0x8300: "text",
    0x0704: "location_batch",
}

# 0x0001 / 0x8001 results (4 only from the platform) and 0x8100 results
RESULTS = {0: "ok", 1: "fail", 2: "bad_message", 3: "unsupported", 4: "alarm_ack"}
REGISTER_RESULTS = {0: "ok", 1: "vehicle_registered", 2: "no_such_vehicle",
                    3: "terminal_registered", 4: "no_such_terminal"}

ALARMS_2013 = {
    0: "emergency", 1: "overspeed", 2: "fatigue", 3: "dangerous_driving",
    4: "gnss_fault", 5: "gnss_antenna_open", 6: "gnss_antenna_short",
    7: "power_low", 8: "power_cut", 9: "display_fault", 10: "tts_fault",
    11: "camera_fault", 12: "ic_card_fault", 13: "overspeed_warning",
    14: "fatigue_warning", 18: "driving_time_exceeded", 19: "overtime_parking",
    20: "area_in_out", 21: "route_in_out", 22: "section_time", 23: "route_deviation",
    24: "vss_fault", 25: "fuel_abnormal", 26: "theft", 27: "illegal_ignition",
    28: "illegal_displacement", 29: "collision_warning", 30: "rollover_warning",
    31: "illegal_door_open",
}
# 2019 names bits 15-17, widens 29 to collision *or* rollover and frees 31
ALARMS_2019 = {k: v for k, v in ALARMS_2013.items() if k != 31}
ALARMS_2019.update({15: "illegal_driving", 16: "tyre_pressure_warning",
                    17: "right_turn_blind_spot", 29: "collision_rollover"})

STATUS_2013 = {
    0: "acc_on", 1: "fixed", 2: "south", 3: "west", 4: "out_of_service",
    5: "coords_encrypted", 10: "oil_cut", 11: "circuit_cut", 12: "doors_locked",
    13: "door1_open", 14: "door2_open", 15: "door3_open", 16: "door4_open",
    17: "door5_open", 18: "gps", 19: "beidou", 20: "glonass", 21: "galileo",
}
STATUS_2019 = dict(STATUS_2013)
STATUS_2019.update({6: "forward_collision_warning", 7: "lane_departure_warning", 22: "moving"})
LOAD_SHIFT, LOAD_MASK = 8, 0x300     # bits 8-9 are one two-bit field, not two flags
LOADS = {0: "empty", 1: "half", 2: "reserved", 3: "full"}
SOUTH, WEST = 1 << 2, 1 << 3

SIGNALS = {0: "low_beam", 1: "high_beam", 2: "right_turn", 3: "left_turn", 4: "brake",
           5: "reverse", 6: "fog", 7: "clearance", 8: "horn", 9: "air_con",
           10: "neutral", 11: "retarder", 12: "abs", 13: "heater", 14: "clutch"}
IO_STATES = {0: "deep_sleep", 1: "sleep"}


def alarm_table(version):
    return ALARMS_2019 if version == 2019 else ALARMS_2013


def status_table(version):
    return STATUS_2019 if version == 2019 else STATUS_2013


def flag_names(flags, table, skip=0):
    """Names of the set bits, in bit order; "bitN" where the table has none."""
    return [table.get(b, "bit%d" % b) for b in range(32)
            if flags >> b & 1 and not skip >> b & 1]


def flags_from_names(names, table):
    """Inverse of flag_names; also takes an int (already flags)."""
    if isinstance(names, int):
        return names
    bits = {v: k for k, v in table.items()}
    flags = 0
    for name in names:
        if name in bits:
            flags |= 1 << bits[name]
        elif name.startswith("bit") and name[3:].isdigit() and int(name[3:]) < 32:
            flags |= 1 << int(name[3:])
        else:
            raise JT808Error("body", "unknown flag name %r" % (name,))
    return flags


def name_or_code(code, table):
    return table.get(code, code)


def code_from(value, table):
    if isinstance(value, int):
        return value
    for k, v in table.items():
        if v == value:
            return k
    raise JT808Error("body", "unknown result %r" % (value,))


