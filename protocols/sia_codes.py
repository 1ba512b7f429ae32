# SIA DC-03 event codes (two letters, the data of DC-09 "SIA-DCS" frames), each with
# the Contact ID event it means, so both formats become the same Events: same
# classes, same forwarder filters, same priority (contactid.classify). Names as in
# SIA DC-03; the codes panels commonly send. A code not listed here is answered DUH
# by the receiver, so the installer sees it, rather than recorded without its meaning.
from protocols import contactid

NEW, RESTORE = contactid.QUALIFIER_NEW, contactid.QUALIFIER_RESTORE

# code -> (name, Contact ID event code, qualifier: 1 new / opening, 3 restore / closing)
CODES = {
    "BA": ("Burglary alarm", 130, NEW), "BR": ("Burglary restoral", 130, RESTORE),
    "BH": ("Burglary alarm restore", 130, RESTORE),
    "BB": ("Burglary bypass", 570, NEW), "BU": ("Burglary unbypass", 570, RESTORE),
    "BT": ("Burglary trouble", 380, NEW), "BJ": ("Burglary trouble restore", 380, RESTORE),
    "FA": ("Fire alarm", 110, NEW), "FR": ("Fire restoral", 110, RESTORE), "FH": ("Fire alarm restore", 110, RESTORE),
    "FT": ("Fire trouble", 373, NEW), "FJ": ("Fire trouble restore", 373, RESTORE),
    "FB": ("Fire bypass", 571, NEW),
    "PA": ("Panic alarm", 120, NEW), "PR": ("Panic restoral", 120, RESTORE), "PH": ("Panic alarm restore", 120, RESTORE),
    "HA": ("Holdup alarm (duress)", 121, NEW), "HR": ("Holdup restoral", 121, RESTORE),
    "HH": ("Holdup alarm restore", 121, RESTORE),
    "MA": ("Medical alarm", 100, NEW), "MR": ("Medical restoral", 100, RESTORE), "MH": ("Medical alarm restore", 100, RESTORE),
    "QA": ("Emergency alarm", 101, NEW), "QR": ("Emergency restoral", 101, RESTORE),
    "GA": ("Gas alarm", 151, NEW), "GR": ("Gas restoral", 151, RESTORE),
    "KA": ("Heat alarm", 114, NEW), "KR": ("Heat restoral", 114, RESTORE),
    "WA": ("Water alarm", 154, NEW), "WR": ("Water restoral", 154, RESTORE),
    "TA": ("Tamper alarm", 137, NEW), "TR": ("Tamper restoral", 137, RESTORE),
    "ZA": ("Freeze alarm", 159, NEW), "ZR": ("Freeze restoral", 159, RESTORE),
    "UA": ("Untyped zone alarm", 140, NEW), "UR": ("Untyped zone restoral", 140, RESTORE),
    "AT": ("AC trouble", 301, NEW), "AR": ("AC restoral", 301, RESTORE),
    "YT": ("System battery trouble", 302, NEW), "YR": ("System battery restoral", 302, RESTORE),
    "XT": ("Transmitter battery trouble", 384, NEW), "XR": ("Transmitter battery restoral", 384, RESTORE),
    "LT": ("Phone line trouble", 351, NEW), "LR": ("Phone line restoral", 351, RESTORE),
    "ET": ("Expansion trouble", 333, NEW), "ER": ("Expansion restoral", 333, RESTORE),
    "YC": ("Communications fail", 354, NEW), "YK": ("Communications restoral", 354, RESTORE),
    "YX": ("Service required", 300, NEW), "RR": ("Power up", 305, NEW),
    "OP": ("Opening report", 401, NEW), "CL": ("Closing report", 401, RESTORE),
    "OA": ("Automatic opening", 403, NEW), "CA": ("Automatic closing", 403, RESTORE),
    "OG": ("Open area", 402, NEW), "CG": ("Close area", 402, RESTORE),
    "NL": ("Perimeter armed (stay)", 441, RESTORE), "CR": ("Recent closing", 459, NEW),
    "DG": ("Access granted", 422, NEW), "DD": ("Access denied", 421, NEW),
    "DF": ("Door forced", 423, NEW), "DN": ("Door left open", 426, NEW),
    "JA": ("User code tamper", 461, NEW),
    "RP": ("Automatic test", 602, NEW), "RX": ("Manual test", 601, NEW),
    "TS": ("Test start", 607, NEW), "TE": ("Test end", 607, RESTORE),
    "LB": ("Local program begin", 627, NEW), "LX": ("Local program end", 628, NEW),
}

# code -> (Contact ID event code, qualifier): what the receiver records.
SIA_TO_CONTACT_ID = {code: (cid, q) for code, (_, cid, q) in CODES.items()}


def describe(code):
    """(name, event_class, category) for a two-letter SIA code."""
    entry = CODES.get(code)
    if entry is None:
        return "unknown SIA code " + code, "other", "other"
    event_class, category = contactid.classify(entry[1])
    return entry[0], event_class, category
