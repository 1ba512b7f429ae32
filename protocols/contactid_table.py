# What a Contact ID event code means for routing: its event class, its category,
# and its priority tier. The ONE table both sides decide by: the panel's event
# queue (firmware/core/equeue.py: what is sent first, what is dropped when full)
# and the gateway (gateway/event.py: pipeline, outboxes, the console's queue).
# Runs on CPython and MicroPython. contactid.py gives the classes and categories
# their names (classify) and re-exports the rest.
#
# Why a module of its own, beside contactid.py: importing contactid costs the
# panel about 12 KB of heap on the unix port (its Report class and codecs), and
# the panel needs only the priority of a code. This module is a 3-byte-a-row
# bytes table, a tier per class and two small functions, and holds no strings:
# a tuple of names costs the panel about 0.5 KB.
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

# The class indices (the order of contactid.EVENT_CLASSES) and the tier of each:
# alarm, trouble, open_close, access, bypass, test, other.
CLASS_TIERS = b"\x00\x01\x02\x02\x01\x02\x02"

# Priority tiers: every queue, on the panel and in the gateway, serves a lower
# number first and drops a higher one first. Life safety (every 1xx alarm and
# forced access) is 0; faults that stop alarms getting through, and bypasses
# (a zone that will not alarm), are 1; the rest (openings/closings, access
# records, tests, telemetry, positions) can wait.
PRIORITY_LIFE_SAFETY = 0
PRIORITY_TROUBLE = 1
PRIORITY_ROUTINE = 2


# The table: rows (first code, class, category), sorted; each row holds until the
# next row's first code. Kept as bytes, 3 a row (first code high, low, class << 4 |
# category), about 200 bytes. The rows are written below as the arguments of one
# call, small ints in the bytecode (the names are const(): the compiler puts the
# numbers there), so they live only in the module's top-level code, which is freed
# after the import: a tuple literal would stay in the module's constant table, in
# RAM. Every identifier here is an interned string on the device: few names.
try:
    from micropython import const
except ImportError:                      # CPython
    const = int

_A = const(0)            # class indices into contactid.EVENT_CLASSES: alarm
_T = const(1)            # trouble
_OC = const(2)           # open_close
_AC = const(3)           # access
_BY = const(4)           # bypass
_TE = const(5)           # test
_OT = const(6)           # other
_MED = const(0)          # category indices into contactid.CATEGORIES, in its order
_FIRE = const(1)
_PANIC = const(2)
_DUR = const(3)
_BURG = const(4)
_TAMP = const(5)
_GAS = const(6)
_ENV = const(7)
_PWR = const(8)
_COMM = const(9)
_SYS = const(10)
_ACC = const(11)
_ARM = const(12)
_BYP = const(13)
_TEST = const(14)
_OTH = const(15)


def _build(*a):
    # (first code, class, category) triples, flat, into the 3-byte rows
    t = bytearray(len(a))
    for i in range(0, len(a), 3):
        t[i] = a[i] >> 8
        t[i + 1] = a[i] & 0xFF
        t[i + 2] = a[i + 1] << 4 | a[i + 2]
    return bytes(t)


_TABLE = _build(
    0, _OT, _OTH,  # 000-099: not assigned by DC-05
    100, _A, _MED,  # 100-102 medical
    103, _A, _OTH,
    110, _A, _FIRE,  # 110-118 fire
    119, _A, _OTH,
    120, _A, _PANIC,  # 120 panic
    121, _A, _DUR,  # 121 duress
    122, _A, _PANIC,  # 122 silent, 123 audible
    124, _A, _DUR,  # 124 duress - access granted, 125 duress - egress granted
    126, _A, _PANIC,
    130, _A, _BURG,  # 130-136 burglary
    137, _A, _TAMP,  # 137 tamper
    138, _A, _BURG,
    140, _A, _OTH,  # 140-143 general alarm, polling loop, expansion module
    144, _A, _TAMP,  # 144 sensor tamper, 145 expansion module tamper
    146, _A, _BURG,  # 146 silent burglary
    147, _A, _OTH,
    150, _A, _ENV,  # 150-169 24 hour non-burglary
    151, _A, _GAS,  # 151 gas detected
    152, _A, _ENV,
    157, _A, _GAS,  # 157 low bottled gas level
    158, _A, _ENV,
    170, _A, _OTH,  # the rest of 1xx: alarms all the same
    200, _T, _FIRE,  # 2xx fire supervisory
    300, _T, _SYS,
    301, _T, _PWR,  # 301 AC loss, 302 low system battery
    303, _T, _SYS,
    309, _T, _PWR,  # 309 battery test failure
    310, _T, _SYS,
    311, _T, _PWR,  # 311 battery missing, 312 power supply overcurrent
    313, _T, _SYS,
    337, _T, _PWR,  # 337 expansion module DC loss, 338 low battery
    339, _T, _SYS,
    341, _T, _TAMP,  # 341 expansion module tamper
    342, _T, _PWR,  # 342 expansion module AC loss
    343, _T, _SYS,
    350, _T, _COMM,  # 350-359 communication
    360, _T, _SYS,
    373, _T, _FIRE,  # 373 fire trouble ... 378 cross-zone trouble
    379, _T, _SYS,
    383, _T, _TAMP,  # 383 sensor tamper
    384, _T, _PWR,  # 384 RF low battery
    385, _T, _SYS,
    400, _OC, _ARM,  # 400-409 open/close
    410, _OT, _SYS,  # 410-419 remote access, up/download
    420, _OC, _ARM,
    421, _AC, _ACC,  # 421 access denied, 422 access report by user
    423, _A, _ACC,  # 423 forced access: a door opened without a grant
    424, _AC, _ACC,  # 424 egress denied, 425 egress granted
    426, _T, _ACC,  # 426 door propped open, 427 door status monitor trouble,
                          # 428 request-to-exit trouble
    429, _AC, _ACC,  # 429-431 program mode, threat level
    432, _T, _ACC,  # 432 access relay/trigger fail
    433, _AC, _ACC,  # 433 RTE shunt, 434 DSM shunt
    435, _OC, _ARM,  # 441 armed stay, 450-459 exceptions ...
    461, _AC, _ACC,  # 461 wrong code entry, 462 legal code entry
    463, _OC, _ARM,
    465, _OT, _PANIC,  # 465 panic alarm reset
    466, _OC, _ARM,
    500, _BY, _BYP,  # 5xx bypasses and disables
    600, _TE, _TEST,  # 600-619 tests
    620, _OT, _SYS,  # 621-632 event log, time, program mode, schedules
    624, _T, _SYS,  # 624 event log overflow: events were lost
    625, _OT, _SYS,
    700, _OT, _OTH,  # 700-999: not assigned (jifang's vehicle codes are 9xx)
)
del _build, const


def row(code):
    """The row holding `code`, as one byte: class index << 4 | category index
    (contactid.classify names them). No allocation."""
    t = _TABLE
    i = 3
    n = len(t)
    while i < n and (t[i] << 8 | t[i + 1]) <= code:
        i += 3
    return t[i - 1]


def priority(code):
    """The priority tier of an event code (PRIORITY_*: lower is served first)."""
    return CLASS_TIERS[row(code) >> 4]
