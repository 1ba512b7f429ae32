# Ademco Contact ID (SIA DC-05), as panels send it on a phone line and inside
# SIA DC-09 "ADM-CID" frames. Runs on CPython and MicroPython.
#
#   ACCT MT Q EEE GG CCC S      e.g. 1234 18 1 131 01 015 8
#   account (4 digits), message type (18 or 98), qualifier (1 new event or opening,
#   3 restore or closing, 6 previously reported / status), event code, group or
#   partition, zone or user, check digit.
#
# The event class, category and priority come from the one code-range table,
# contactid_table.py (kept apart: the panel's queue loads it without this module);
# the name table (contactid_codes.py) is loaded only by describe().
from protocols import contactid_table
from protocols.contactid_table import PRIORITY_LIFE_SAFETY, PRIORITY_TROUBLE, PRIORITY_ROUTINE, priority  # noqa: F401


class ContactIDError(ValueError):
    pass


QUALIFIER_NEW = 1
QUALIFIER_RESTORE = 3
QUALIFIER_STATUS = 6
QUALIFIERS = (QUALIFIER_NEW, QUALIFIER_RESTORE, QUALIFIER_STATUS)

# Event classes the gateway routes on, and the finer categories forwarder filters
# use. contactid_table.py stores indices into these: append only.
EVENT_CLASSES = ("alarm", "trouble", "open_close", "access", "bypass", "test", "other")
CATEGORIES = ("medical", "fire", "panic", "duress", "burglary", "tamper", "gas",
              "environmental", "power", "communication", "system", "access",
              "arming", "bypass", "test", "other")


def classify(code):
    """(event_class, category) for a 3-digit event code, from the table."""
    b = contactid_table.row(code)
    return EVENT_CLASSES[b >> 4], CATEGORIES[b & 15]


def priority_of(event_class):
    """The tier of an event class; a class Contact ID does not have (the gateway's
    "telemetry", "status") is routine."""
    if event_class in EVENT_CLASSES:
        return contactid_table.CLASS_TIERS[EVENT_CLASSES.index(event_class)]
    return PRIORITY_ROUTINE

# DTMF digit values: "0" is sent as 10 ("A"); B-F are 11-15 (DC-05 section 2.1).
_HEX = "0123456789ABCDEF"


def _digit_value(ch):
    v = _HEX.find(ch.upper())
    if v < 0:
        raise ContactIDError("not a Contact ID digit: %r" % ch)
    return 10 if v == 0 else v


def check_digit(digits15):
    """The digit that makes the sum of all 16 digits (0 counted as 10) a multiple of 15."""
    total = 0
    for ch in digits15:
        total += _digit_value(ch)
    s = 15 - total % 15
    # s is 1..15; a value of 10 is written "0", 15 as "F" (sum already a multiple of 15).
    return "0" if s == 10 else _HEX[s]


def describe(code):
    """(name, event_class, category) for an event code; unknown codes get a generic name."""
    from protocols.contactid_codes import NAMES
    event_class, category = classify(code)
    name = NAMES.get(code)
    if name is None:
        name = "unknown event %03d" % code
    return name, event_class, category


class Report:
    """One Contact ID event report."""

    def __init__(self, account, qualifier, code, partition=0, zone=0, msg_type=18):
        self.account = account
        self.qualifier = qualifier
        self.code = code
        self.partition = partition
        self.zone = zone
        self.msg_type = msg_type

    @property
    def event_class(self):
        return classify(self.code)[0]

    @property
    def category(self):
        return classify(self.code)[1]

    @property
    def name(self):
        return describe(self.code)[0]

    @property
    def is_new(self):
        return self.qualifier == QUALIFIER_NEW

    @property
    def is_restore(self):
        return self.qualifier == QUALIFIER_RESTORE

    @property
    def is_status(self):
        return self.qualifier == QUALIFIER_STATUS

    def validate(self):
        if self.qualifier not in QUALIFIERS:
            raise ContactIDError("qualifier must be 1, 3 or 6, not %r" % (self.qualifier,))
        if not (0 <= self.code <= 999):
            raise ContactIDError("event code must be 000-999, not %r" % (self.code,))
        if not (0 <= self.partition <= 99):
            raise ContactIDError("partition must be 00-99, not %r" % (self.partition,))
        if not (0 <= self.zone <= 999):
            raise ContactIDError("zone or user must be 000-999, not %r" % (self.zone,))
        if self.msg_type not in (None, 18, 98):
            raise ContactIDError("message type must be 18 or 98, not %r" % (self.msg_type,))
        acct = self.account
        if not isinstance(acct, str) or not (3 <= len(acct) <= 16):
            raise ContactIDError("account must be 3-16 hex digits, not %r" % (acct,))
        for ch in acct:  # hex by the standard; DC-09 panels also use letters past F
            if not ("0" <= ch <= "9" or "A" <= ch.upper() <= "Z"):
                raise ContactIDError("account must be letters or digits, not %r" % (acct,))

    def __eq__(self, other):
        return (isinstance(other, Report) and self.account == other.account
                and self.qualifier == other.qualifier and self.code == other.code
                and self.partition == other.partition and self.zone == other.zone
                and self.msg_type == other.msg_type)

    def __repr__(self):
        return "Report(%r, %d, %d, %d, %d, %r)" % (
            self.account, self.qualifier, self.code, self.partition, self.zone, self.msg_type)


def encode(report):
    """The 16-digit Contact ID message with its check digit (4-digit account)."""
    report.validate()
    if len(report.account) != 4:
        raise ContactIDError("a Contact ID message carries a 4-digit account, not %r" % report.account)
    body = "%s%02d%d%03d%02d%03d" % (report.account.upper(), report.msg_type or 18,
                                     report.qualifier, report.code, report.partition, report.zone)
    return body + check_digit(body)


def decode(text):
    """Parse a 16-digit Contact ID message (spaces allowed) and verify its check digit."""
    digits = text.replace(" ", "")
    if len(digits) != 16:
        raise ContactIDError("a Contact ID message has 16 digits, this has %d" % len(digits))
    if check_digit(digits[:15]) != digits[15].upper():
        raise ContactIDError("check digit %s is wrong (expected %s)" % (digits[15], check_digit(digits[:15])))
    fields = digits[4:15]
    if not fields.isdigit():
        raise ContactIDError("message type, event, group and zone must be decimal: %r" % fields)
    mt = int(fields[0:2])
    if mt not in (18, 98):
        raise ContactIDError("message type must be 18 or 98, not %d" % mt)
    report = Report(digits[:4].upper(), int(fields[2]), int(fields[3:6]),
                    int(fields[6:8]), int(fields[8:11]), mt)
    report.validate()
    return report


def dc09_data(report):
    """The data block of a DC-09 ADM-CID frame (without brackets): `#ACCT|QEEE GG ZZZ`.
    DC-09 carries no message type and no check digit: the frame has a CRC."""
    from protocols.dc09_link import cid_data      # the layout the panel writes in place
    report.validate()
    return cid_data(report.account.upper(), report.qualifier, report.code, report.partition, report.zone)


def parse_dc09_data(text, account=None):
    """Parse `#ACCT|QEEE GG ZZZ` into a Report. The `#ACCT|` part is optional in the
    field; `account` (the frame header's) stands in when it is missing."""
    body = text
    bar = text.find("|")
    if bar >= 0:
        account = text[:bar] or account
        body = text[bar + 1:]
        if account and account.startswith("#"):
            account = account[1:]
    parts = body.split(" ")
    if len(parts) != 3 or len(parts[0]) != 4 or len(parts[1]) != 2 or len(parts[2]) != 3:
        raise ContactIDError("ADM-CID data must be QEEE GG ZZZ, not %r" % body)
    for p in parts:
        if not p.isdigit():
            raise ContactIDError("ADM-CID fields must be decimal: %r" % body)
    if not account:
        raise ContactIDError("ADM-CID data carries no account and none was given")
    report = Report(account.upper(), int(parts[0][0]), int(parts[0][1:]),
                    int(parts[1]), int(parts[2]), None)
    report.validate()
    return report
