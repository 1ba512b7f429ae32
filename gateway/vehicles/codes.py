"""Event codes for vehicles, and the Events made from them.

Every vehicle event carries a Contact ID code, because the 110 center receives
it as ADM-CID and re-derives class and category from the code alone. Where
Contact ID has a fitting code it is used (emergency -> 120 panic, theft -> 130
burglary, power cut -> 301 AC loss, ...), so a 110 receiver that knows nothing
of vehicles still files the alarm correctly. Driving-behaviour events have no
Contact ID equivalent; they use the 9xx range, which DC-05 leaves unassigned
(class "other"): 900 + bit for terminal alarm bits, 950-959 for the center's
own rules.
"""
from protocols import contactid
from gateway.event import Event, now_ms

SOURCE_JT808 = "jt808"
SOURCE_RULES = "vehicle-rules"
SOURCE_EDGE = "vehicle-edge"

POSITION_CODE = 0            # telemetry: not a Contact ID event
OFFLINE_CODE = 350           # communication trouble
TERMINAL_FAULT_CODE = 300    # system trouble: a terminal reporting every alarm bit at once
EMERGENCY_BIT = 0
PANIC_CODE = 120

# JT/T 808 alarm bit -> (Contact ID code, name). Bits left out here get 900 + bit
# and the codec's name for the bit.
ALARM_BIT_CODES = {
    0: (120, "Vehicle emergency (SOS)"),
    4: (330, "GNSS module fault"),
    5: (330, "GNSS antenna open"),
    6: (330, "GNSS antenna short"),
    7: (302, "Vehicle main power low"),
    8: (301, "Vehicle main power cut"),
    9: (330, "Terminal display fault"),
    10: (330, "TTS module fault"),
    11: (330, "Camera fault"),
    12: (330, "IC card module fault"),
    24: (380, "Vehicle speed sensor fault"),
    26: (130, "Vehicle theft"),
    27: (130, "Illegal ignition"),
    28: (130, "Illegal displacement"),
}
# 2013 bit 31 (illegal door open) is a forced door on a cash-in-transit vehicle;
# in 2019 the bit is reserved and vendors reuse it, so it stays generic there.
ALARM_BIT_CODES_2013 = {31: (423, "Illegal door open")}

# The center's own rules: (code, name), names from the shared Contact ID table so a
# 110 receiver running jifang shows the same words.
RULE_CODES = {rule: (code, contactid.describe(code)[0]) for rule, code in (
    ("overspeed", 951), ("fatigue", 952), ("parking", 953),
    ("forbidden_zone", 954), ("left_area", 955), ("route_deviation", 956))}

# Edge (vehicle computer) alarms travel in the custom 0x0200 extra item
# EDGE_ALARMS_ITEM as (code WORD, zone BYTE) pairs: the alarms active right now.
EDGE_ALARMS_ITEM = 0xE1
EDGE_VALUES_ITEM = 0xE2      # sensor readings, "name=value;..." ASCII (telemetry)


def alarm_bit_code(bit, version):
    """(code, name) for a JT/T 808 alarm bit."""
    if version == 2013 and bit in ALARM_BIT_CODES_2013:
        return ALARM_BIT_CODES_2013[bit]
    if bit in ALARM_BIT_CODES:
        return ALARM_BIT_CODES[bit]
    code = 900 + bit
    name = contactid.describe(code)[0]
    if name.startswith("unknown"):                # a bit the shared table does not name
        from protocols.jt808 import alarm_table
        name = "Vehicle " + alarm_table(version).get(bit, "alarm bit %d" % bit).replace("_", " ")
    return code, name


def make_event(account, code, *, name=None, qualifier=contactid.QUALIFIER_NEW, zone=0, sequence=0,
               device_time, source, position=None, values=None, raw="", site=None, received_at_ms=None):
    """An Event for a vehicle. Class and category always come from the code, as the
    110 receiver will derive them, so both ends agree. `sequence` is 0 for alarms:
    they are deduplicated on (account, device time, code, zone), which is the
    same whether a report arrives live, is retried, or is back-filled in 0x0704.
    (Positions pass a checksum of their body instead, see reports.py.)"""
    default_name, event_class, category = contactid.describe(code) if code else ("Position", "telemetry", "other")
    return Event(account=account, code=code, qualifier=qualifier, partition=0, zone=zone,
                 event_class=event_class, category=category, name=name or default_name,
                 sequence=sequence, device_time=int(device_time),
                 received_at_ms=now_ms() if received_at_ms is None else received_at_ms,
                 source=source, site=site, position=position, values=values, raw=raw)
