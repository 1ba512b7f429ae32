"""SIA DC-03 event codes (the data of DC-09 "SIA-DCS" frames) as Contact ID events,
so they become the same Events as ADM-CID frames: same classes, same filters, same
priority. Covers the codes panels commonly send; a frame with any other code gets a
DUH, so the installer sees it, rather than an event recorded without its meaning.

code -> (Contact ID event code, qualifier: 1 new / opening, 3 restore / closing)
"""
NEW, RESTORE = 1, 3

SIA_TO_CONTACT_ID = {
    "BA": (130, NEW), "BR": (130, RESTORE), "BH": (130, RESTORE),       # burglary
    "FA": (110, NEW), "FR": (110, RESTORE), "FH": (110, RESTORE),       # fire
    "PA": (120, NEW), "PR": (120, RESTORE), "PH": (120, RESTORE),       # panic
    "HA": (121, NEW), "HR": (121, RESTORE), "HH": (121, RESTORE),       # hold-up / duress
    "MA": (100, NEW), "MR": (100, RESTORE), "MH": (100, RESTORE),       # medical
    "QA": (101, NEW), "QR": (101, RESTORE),                             # emergency (personal)
    "TA": (137, NEW), "TR": (137, RESTORE),                             # tamper
    "GA": (151, NEW), "GR": (151, RESTORE),                             # gas
    "KA": (114, NEW), "KR": (114, RESTORE),                             # heat
    "WA": (154, NEW), "WR": (154, RESTORE),                             # water
    "UA": (140, NEW), "UR": (140, RESTORE),                             # untyped zone alarm
    "AT": (301, NEW), "AR": (301, RESTORE),                             # AC power
    "YT": (302, NEW), "YR": (302, RESTORE),                             # system battery
    "XT": (384, NEW), "XR": (384, RESTORE),                             # transmitter (RF) battery
    "LT": (351, NEW), "LR": (351, RESTORE),                             # phone line
    "ET": (333, NEW), "ER": (333, RESTORE),                             # expansion module
    "YC": (354, NEW), "YK": (354, RESTORE),                             # communication fail / restored
    "BB": (570, NEW), "BU": (570, RESTORE),                             # zone bypass / unbypass
    "OP": (401, NEW), "CL": (401, RESTORE),                             # opening / closing by user
    "OA": (403, NEW), "CA": (403, RESTORE),                             # automatic opening / closing
    "RP": (602, NEW), "RX": (601, NEW),                                 # periodic / manual test
}
