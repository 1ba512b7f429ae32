# Runs on MicroPython (tests/test_on_micropython.py) and on CPython (pytest).
from protocols import contactid, contactid_table
from protocols.contactid import ContactIDError, Report


def _raises(fn, *args):
    try:
        fn(*args)
    except ContactIDError as e:
        return e
    raise AssertionError("ContactIDError not raised")


def test_check_digit_rule():
    # DC-05: sum of all 16 digits, 0 counted as 10, is a multiple of 15.
    # 1234 18 1 131 01 015: 1+2+3+4+1+8+1+1+3+1+10+1+10+1+5 = 52 -> 52 + 8 = 60.
    assert contactid.check_digit("123418113101015") == "8"
    text = contactid.encode(Report("1234", 1, 131, 1, 15))
    assert text == "1234181131010158"
    total = 0
    for ch in text:
        v = "0123456789ABCDEF".find(ch)
        total += 10 if v == 0 else v
    assert total % 15 == 0


def test_check_digit_of_fifteen_is_f():
    # When the sum is already a multiple of 15 the check digit is F, never 0.
    digits = "123418113101987"   # 1234 18 1 131 01 987: sums to 60
    total = 0
    for ch in digits:
        total += 10 if ch == "0" else int(ch)
    assert total % 15 == 0 and contactid.check_digit(digits) == "F"


def test_decode_verifies_check_digit():
    r = contactid.decode("1234 18 1131 01 015 8")
    assert (r.account, r.msg_type, r.qualifier, r.code, r.partition, r.zone) == ("1234", 18, 1, 131, 1, 15)
    assert r.event_class == "alarm" and r.category == "burglary" and r.is_new
    assert "check digit" in str(_raises(contactid.decode, "1234181131010159"))
    assert "16 digits" in str(_raises(contactid.decode, "12341811310101"))


def test_dc09_data_form():
    # As carried inside SIA DC-09 ADM-CID frames: no message type, no check digit.
    r = Report("1234", 1, 130, 1, 15)
    assert contactid.dc09_data(r) == "#1234|1130 01 015"
    back = contactid.parse_dc09_data("#1234|1130 01 015")
    assert back == Report("1234", 1, 130, 1, 15, None)
    # Account from the frame header when the data block has none.
    assert contactid.parse_dc09_data("1401 01 003", "5101").account == "5101"
    _raises(contactid.parse_dc09_data, "#1234|1130 1 015")
    _raises(contactid.parse_dc09_data, "#1234|9130 01 015")


def test_classes_the_gateway_routes_on():
    cases = {
        100: ("alarm", "medical"), 110: ("alarm", "fire"), 118: ("alarm", "fire"),
        120: ("alarm", "panic"), 121: ("alarm", "duress"), 122: ("alarm", "panic"),
        130: ("alarm", "burglary"), 137: ("alarm", "tamper"), 144: ("alarm", "tamper"),
        151: ("alarm", "gas"), 154: ("alarm", "environmental"),
        301: ("trouble", "power"), 302: ("trouble", "power"), 305: ("trouble", "system"),
        350: ("trouble", "communication"), 354: ("trouble", "communication"),
        373: ("trouble", "fire"), 383: ("trouble", "tamper"), 384: ("trouble", "power"),
        401: ("open_close", "arming"), 441: ("open_close", "arming"), 456: ("open_close", "arming"),
        421: ("access", "access"), 423: ("alarm", "access"), 424: ("access", "access"),
        426: ("trouble", "access"), 427: ("trouble", "access"), 432: ("trouble", "access"),
        570: ("bypass", "bypass"), 574: ("bypass", "bypass"),
        601: ("test", "test"), 602: ("test", "test"), 607: ("test", "test"),
        624: ("trouble", "system"), 625: ("other", "system"), 627: ("other", "system"),
    }
    for code, expected in cases.items():
        assert contactid.classify(code) == expected, code


def test_priority_tiers():
    # DC-05 4xx access control: forced access is an alarm, a propped door a trouble,
    # egress denied a routine record (contactid_table.py cites the code list).
    assert contactid.priority(423) == contactid.PRIORITY_LIFE_SAFETY
    assert contactid.priority(426) == contactid.PRIORITY_TROUBLE
    assert contactid.priority(424) == contactid.PRIORITY_ROUTINE
    assert contactid.priority(121) == contactid.PRIORITY_LIFE_SAFETY
    assert contactid.priority(200) == contactid.PRIORITY_TROUBLE      # fire supervisory
    assert contactid.priority(570) == contactid.PRIORITY_TROUBLE      # a bypassed zone
    assert contactid.priority(602) == contactid.PRIORITY_ROUTINE
    # Every code has a class and a category the gateway knows; the table has no
    # redundant row (two rows in a row saying the same).
    changes = 0
    last = None
    for code in range(1000):
        cls, cat = contactid.classify(code)
        assert cls in contactid.EVENT_CLASSES and cat in contactid.CATEGORIES
        changes += (cls, cat) != last
        last = (cls, cat)
    assert changes == len(contactid_table._TABLE) // 3


def test_qualifiers():
    assert Report("1234", 3, 401, 1, 2).is_restore
    assert Report("1234", 6, 570, 1, 2).is_status
    _raises(contactid.encode, Report("1234", 2, 401, 1, 2))
    _raises(contactid.encode, Report("12345", 1, 401, 1, 2))   # 16-digit form has 4
