# What a Contact ID event code means for routing: its event class, its category,
# and its priority tier. The ONE table both sides decide by: the panel's event
# queue (firmware/core/equeue.py: what is sent first, what is dropped when full)
# and the gateway (gateway/event.py: pipeline, outboxes, the console's queue).
# Runs on CPython and MicroPython. contactid.py re-exports all of it.
#
# Why a module of its own, beside contactid.py: importing contactid costs the
# panel about 12 KB of heap on the unix port (its Report class and codecs), and
# the panel needs only the priority of a code. This module is a 3-byte-a-row
# bytes table and three small functions.
#
# Facts. Code groups and names: SIA DC-05 (Ademco Contact ID) Appendix C "Event
# codes" (see also /work/shared/reference/sia-dc09.md, section "Contact ID"):
# 1xx alarms, 2xx fire supervisory, 3xx troubles, 4xx open/close, remote access
# and access control, 5xx bypasses and disables, 6xx test and miscellaneous.
# In the 4xx access-control block DC-05 names 423 "Forced access" (zone; published
# code lists call it "PA forced access", a door opened without a grant: an alarm),
# 424 "Egress denied" and 425 "Egress granted" (user: records of a person at a
# door, routine), 426 "Access door propped open" (zone, restorable: a door held
# open past its time, a condition to attend to, not an intrusion: a trouble), 427
# "Access point door status monitor trouble", 428 "Access point request to exit
# trouble" and 432 "Access relay/trigger fail" (faults: troubles). Cross-checked
# against the DC-05 Appendix C tables carried by open receivers and panel
# integrations (e.g. homebridge-envisalink-ademco cid.js, Paradox's "Automatic
# report code list"). DC-05 assigns no class beyond the groups: which group member
# is an alarm or a trouble is the policy written here, once.

# Event classes the gateway routes on, and the finer categories forwarder filters
# use. The table stores indices into these tuples, so append only.
EVENT_CLASSES = ("alarm", "trouble", "open_close", "access", "bypass", "test", "other")
CATEGORIES = ("medical", "fire", "panic", "duress", "burglary", "tamper", "gas",
              "environmental", "power", "communication", "system", "access",
              "arming", "bypass", "test", "other")

# Priority tiers: every queue, on the panel and in the gateway, serves a lower
# number first and drops a higher one first. Life safety (every 1xx alarm and
# forced access) is 0; faults that stop alarms getting through, and bypasses
# (a zone that will not alarm), are 1; the rest (openings/closings, access
# records, tests, telemetry, positions) can wait.
PRIORITY_LIFE_SAFETY = 0
PRIORITY_TROUBLE = 1
PRIORITY_ROUTINE = 2


def priority_of(event_class):
    """The tier of an event class (also the gateway's own: "telemetry", "status")."""
    if event_class == "alarm":
        return PRIORITY_LIFE_SAFETY
    if event_class == "trouble" or event_class == "bypass":
        return PRIORITY_TROUBLE
    return PRIORITY_ROUTINE


# The table: (first code, class, category), sorted; each row holds until the next
# row's first code. Built at import into bytes of 3 bytes a row (first code high,
# low, class << 4 | category): the tuple literal below belongs to the module's
# top-level code, which is freed after the import, so the panel keeps ~220 bytes.
_A, _T, _OC, _AC, _BY, _TE, _OT = 0, 1, 2, 3, 4, 5, 6
_MED, _FIRE, _PANIC, _DUR, _BURG, _TAMP, _GAS, _ENV, _PWR, _COMM, _SYS, _ACC, _ARM, _BYP, _TEST, _OTH = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


def _build(rows):
    out = bytearray(3 * len(rows))
    i = 0
    for first, cls, cat in rows:
        out[i] = first >> 8
        out[i + 1] = first & 0xFF
        out[i + 2] = cls << 4 | cat
        i += 3
    return bytes(out)


_TABLE = _build((
    (0, _OT, _OTH),          # 000-099: not assigned by DC-05
    (100, _A, _MED),         # 100-102 medical
    (103, _A, _OTH),
    (110, _A, _FIRE),        # 110-118 fire
    (119, _A, _OTH),
    (120, _A, _PANIC),       # 120 panic
    (121, _A, _DUR),         # 121 duress
    (122, _A, _PANIC),       # 122 silent, 123 audible
    (124, _A, _DUR),         # 124 duress - access granted, 125 duress - egress granted
    (126, _A, _PANIC),
    (130, _A, _BURG),        # 130-136 burglary
    (137, _A, _TAMP),        # 137 tamper
    (138, _A, _BURG),
    (140, _A, _OTH),         # 140-143 general alarm, polling loop, expansion module
    (144, _A, _TAMP),        # 144 sensor tamper, 145 expansion module tamper
    (146, _A, _BURG),        # 146 silent burglary
    (147, _A, _OTH),
    (150, _A, _ENV),         # 150-169 24 hour non-burglary
    (151, _A, _GAS),         # 151 gas detected
    (152, _A, _ENV),
    (157, _A, _GAS),         # 157 low bottled gas level
    (158, _A, _ENV),
    (170, _A, _OTH),         # the rest of 1xx: alarms all the same
    (200, _T, _FIRE),        # 2xx fire supervisory
    (300, _T, _SYS),
    (301, _T, _PWR),         # 301 AC loss, 302 low system battery
    (303, _T, _SYS),
    (309, _T, _PWR),         # 309 battery test failure
    (310, _T, _SYS),
    (311, _T, _PWR),         # 311 battery missing, 312 power supply overcurrent
    (313, _T, _SYS),
    (337, _T, _PWR),         # 337 expansion module DC loss, 338 low battery
    (339, _T, _SYS),
    (341, _T, _TAMP),        # 341 expansion module tamper
    (342, _T, _PWR),         # 342 expansion module AC loss
    (343, _T, _SYS),
    (350, _T, _COMM),        # 350-359 communication
    (360, _T, _SYS),
    (373, _T, _FIRE),        # 373 fire trouble ... 378 cross-zone trouble
    (379, _T, _SYS),
    (383, _T, _TAMP),        # 383 sensor tamper
    (384, _T, _PWR),         # 384 RF low battery
    (385, _T, _SYS),
    (400, _OC, _ARM),        # 400-409 open/close
    (410, _OT, _SYS),        # 410-419 remote access, up/download
    (420, _OC, _ARM),
    (421, _AC, _ACC),        # 421 access denied, 422 access report by user
    (423, _A, _ACC),         # 423 forced access: a door opened without a grant
    (424, _AC, _ACC),        # 424 egress denied, 425 egress granted
    (426, _T, _ACC),         # 426 door propped open, 427 door status monitor trouble,
                             # 428 request-to-exit trouble
    (429, _AC, _ACC),        # 429-431 program mode, threat level
    (432, _T, _ACC),         # 432 access relay/trigger fail
    (433, _AC, _ACC),        # 433 RTE shunt, 434 DSM shunt
    (435, _OC, _ARM),        # 441 armed stay, 450-459 exceptions ...
    (461, _AC, _ACC),        # 461 wrong code entry, 462 legal code entry
    (463, _OC, _ARM),
    (465, _OT, _PANIC),      # 465 panic alarm reset
    (466, _OC, _ARM),
    (500, _BY, _BYP),        # 5xx bypasses and disables
    (600, _TE, _TEST),       # 600-619 tests
    (620, _OT, _SYS),        # 621-632 event log, time, program mode, schedules
    (624, _T, _SYS),         # 624 event log overflow: events were lost
    (625, _OT, _SYS),
    (700, _OT, _OTH),        # 700-999: not assigned (jifang's vehicle codes are 9xx)
))
del _build, _A, _T, _OC, _AC, _BY, _TE, _OT
del _MED, _FIRE, _PANIC, _DUR, _BURG, _TAMP, _GAS, _ENV, _PWR, _COMM, _SYS, _ACC, _ARM, _BYP, _TEST, _OTH


def _row(code):
    """The class/category byte of the row that holds `code` (no allocation)."""
    t = _TABLE
    i = 3
    n = len(t)
    while i < n and (t[i] << 8 | t[i + 1]) <= code:
        i += 3
    return t[i - 1]


def classify(code):
    """(event_class, category) for a 3-digit event code."""
    b = _row(code)
    return EVENT_CLASSES[b >> 4], CATEGORIES[b & 15]


def priority(code):
    """The priority tier of an event code (PRIORITY_*: lower is served first)."""
    return priority_of(EVENT_CLASSES[_row(code) >> 4])


def rows():
    """Every row as (first code, last code, event_class, category): for tests and docs."""
    t = _TABLE
    out = []
    for i in range(0, len(t), 3):
        last = ((t[i + 3] << 8 | t[i + 4]) - 1) if i + 3 < len(t) else 999
        out.append((t[i] << 8 | t[i + 1], last, EVENT_CLASSES[t[i + 2] >> 4], CATEGORIES[t[i + 2] & 15]))
    return out
