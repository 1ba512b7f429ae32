# SIA DC-09 codec tests on real frames. Runs on MicroPython (tests/test_on_micropython.py)
# and on CPython (pytest): the panel and the gateway share this codec.
#
# Captured frames quoted here (CRC and length fields verified, so they are as sent):
#  - CAP_CID_1407, CAP_NULL_7896: a panel on account 3456, receiver 7896, logged by a
#    public Node.js DC-09 receiver (found by code search; quoted in its server.listen comment).
#  - CAP_XTRM_*: a panel with the non-hex account XTRM189, logged in the same receiver's
#    parseMessage comments.
#  - CAP_1002_*: frames a panel sent, quoted by a public Python test client (ex_data_1/2).
#  - PYSIA_NULL_ENC: the encrypted NULL of pysiaalarm's tests (tests/test_sia_package_cases.py,
#    case_null) with its test key "AAAAAAAAAAAAAAAA" (tests/test_utils.py); made by
#    pysiaalarm's encoder (zero-filled pad, no "|"), so decoding it is interop.
from protocols import dc09
from protocols.dc09 import DC09Error, Message

CAP_CID_1407 = b'\nF92F0043"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024\r'
CAP_NULL_7896 = b'\nD730002F"NULL"0000R7896L7896#3456[]_17:01:26,07-26-2024\r'
CAP_XTRM_NULL = b'\n31FD0018"NULL"0000R0L0#XTRM189[]\r'
CAP_XTRM_1401 = b'\nB494002F"ADM-CID"0019R0L0#XTRM189[#XTRM189|1401 01 141]\r'
CAP_XTRM_1131 = b'\n3C98002F"ADM-CID"0056R0L0#XTRM189[#XTRM189|1131 01 009]\r'
CAP_1002_602 = b'\n9EC40027"ADM-CID"0001L0#1002[#1002|1602 00 001]\r'
CAP_1002_354 = b'\n75140027"ADM-CID"0001L0#1002[#1002|3354 00 004]\r'
PYSIA_NULL_ENC = b'\n76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9\r'
PYSIA_KEY = "AAAAAAAAAAAAAAAA"

CAPTURED = (CAP_CID_1407, CAP_NULL_7896, CAP_XTRM_NULL, CAP_XTRM_1401, CAP_XTRM_1131,
            CAP_1002_602, CAP_1002_354)


def _reason(fn, *args):
    try:
        fn(*args)
    except DC09Error as e:
        return e.reason
    raise AssertionError("DC09Error not raised")


def test_captured_contact_id_frames():
    m = dc09.decode(CAP_CID_1407)
    assert (m.token, m.seq, m.receiver, m.prefix, m.account) == ("ADM-CID", 20, "7896", "7896", "3456")
    assert m.timestamp == (2024, 7, 26, 17, 1, 14) and not m.encrypted
    r = m.contact_id()
    assert (r.qualifier, r.code, r.partition, r.zone) == (1, 407, 0, 1)   # remote disarm by user 1
    assert r.event_class == "open_close"
    r = dc09.decode(CAP_XTRM_1131).contact_id()
    assert (r.account, r.code, r.partition, r.zone, r.category) == ("XTRM189", 131, 1, 9, "burglary")
    r = dc09.decode(CAP_1002_354).contact_id()
    assert (r.qualifier, r.code, r.zone, r.event_class) == (3, 354, 4, "trouble")


def test_captured_frames_reencode_byte_for_byte():
    for frame in CAPTURED:
        assert dc09.encode(dc09.decode(frame)) == frame


def test_captured_null_link_tests():
    m = dc09.decode(CAP_NULL_7896)
    assert m.token == "NULL" and m.data == "" and m.account == "3456"
    assert dc09.decode(CAP_XTRM_NULL).account == "XTRM189"


def test_pysiaalarm_encrypted_null_decodes_with_text_key():
    m = dc09.decode(PYSIA_NULL_ENC, dc09.key_from_text(PYSIA_KEY))
    assert (m.token, m.encrypted, m.account, m.timestamp) == ("NULL", True, "AAAB", (2020, 7, 5, 18, 24, 52))
    # The same characters read as a hex key give a different (wrong) key.
    assert _reason(dc09.decode, PYSIA_NULL_ENC, dc09.key_from_hex("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")) == "key"
    assert _reason(dc09.decode, PYSIA_NULL_ENC) == "key"          # no key at all
    assert dc09.decode(PYSIA_NULL_ENC, lambda acct: dc09.key_from_text(PYSIA_KEY) if acct == "AAAB" else None).encrypted


def test_encrypted_round_trip_every_key_size():
    ts = (2026, 11, 23, 8, 30, 0)
    # AES-192 exists only where the AES library has it (not in MicroPython's cryptolib).
    if 24 not in dc09.AES_KEY_SIZES:
        msg = Message("ADM-CID", 1, "1234", None, "0", "#1234|1130 01 001", None, ts)
        assert _reason(dc09.encode, msg, bytes(24)) == "key"
    for size in dc09.AES_KEY_SIZES:
        key = bytes(range(size))
        msg = Message("ADM-CID", 42, "1234", "12", "3", "#1234|1121 02 007",
                      dc09.position_xdata(39.9075, 116.39723), ts)
        frame = dc09.encode(msg, key)
        assert frame.startswith(b"\n") and frame.endswith(b"\r") and b'"*ADM-CID"0042R12L3#1234[' in frame
        back = dc09.decode(frame, key)
        assert back.encrypted and back.data == msg.data and back.xdata == msg.xdata
        assert back.timestamp == ts and back.contact_id().code == 121
        # 16-31 pad bytes: the ciphertext is whole blocks and at least one block longer.
        hex_len = len(frame) - frame.index(b"[") - 2
        assert hex_len % 32 == 0


def test_encrypted_message_needs_timestamp():
    msg = Message("ADM-CID", 1, "1234", None, "0", "#1234|1130 01 001")
    assert _reason(dc09.encode, msg, bytes(16)) == "timestamp"


def test_keys_both_conventions():
    assert dc09.key_from_text("ABCDEFGHIJKLMNOP") == b"ABCDEFGHIJKLMNOP"
    assert dc09.key_from_hex("000102030405060708090A0B0C0D0E0F") == bytes(range(16))
    assert _reason(dc09.key_from_hex, "0001") == "key"
    assert _reason(dc09.key_from_hex, "ZZ" * 16) == "key"
    assert _reason(dc09.key_from_text, "short") == "key"


def test_errors_name_their_reason():
    bad_crc = CAP_CID_1407.replace(b"F92F", b"F92E")
    assert _reason(dc09.decode, bad_crc) == "crc"
    bad_len = CAP_CID_1407.replace(b"0043", b"0044")
    assert _reason(dc09.decode, bad_len) == "length"
    assert _reason(dc09.decode, CAP_CID_1407[:-1]) == "format"          # no CR
    assert _reason(dc09.decode, b"hello") == "format"
    unknown = Message("ADM-CID", 1, "1234", None, "0", "#1234|1130 01 001")
    unknown.token = "XYZ"
    assert _reason(dc09.encode, unknown) == "token"
    body = b'"FOO"0001L0#1234[]'
    frame = ("\n%04X%04X" % (dc09.crc16_arc(body), len(body))).encode() + body + b"\r"
    assert _reason(dc09.decode, frame) == "token"
    body = b'"NULL"0001L0[]'
    frame = ("\n%04X%04X" % (dc09.crc16_arc(body), len(body))).encode() + body + b"\r"
    assert _reason(dc09.decode, frame) == "account"


def test_ack_nak_duh():
    msg = dc09.decode(CAP_CID_1407)
    ack = dc09.decode(dc09.encode(dc09.make_ack(msg)))
    assert (ack.token, ack.seq, ack.receiver, ack.prefix, ack.account, ack.data) == ("ACK", 20, "7896", "7896", "3456", "")
    assert dc09.is_ack_for(ack, msg)
    # The standard's NAK: sequence 0000, R0L0A0, empty data, the receiver's time.
    nak = dc09.encode(dc09.make_nak((2013, 10, 20, 20, 14, 12)))
    assert nak[9:] == b'"NAK"0000R0L0A0[]_20:14:12,10-20-2013\r'
    back = dc09.decode(nak)
    assert back.token == "NAK" and back.timestamp == (2013, 10, 20, 20, 14, 12)
    duh = dc09.encode(dc09.make_duh(msg), bytes(16))           # never encrypted
    assert duh[9:] == b'"DUH"0020R7896L7896#3456[]\r'


def test_encrypted_ack_for_encrypted_message():
    key = dc09.key_from_text(PYSIA_KEY)
    msg = dc09.decode(PYSIA_NULL_ENC, key)
    ack_frame = dc09.encode(dc09.make_ack(msg, (2020, 7, 5, 18, 24, 53)), key)
    assert b'"*ACK"0000R0L0#AAAB[' in ack_frame
    ack = dc09.decode(ack_frame, key)
    assert ack.encrypted and ack.timestamp == (2020, 7, 5, 18, 24, 53) and dc09.is_ack_for(ack, msg)


def test_pysiaalarm_ack_quirks_are_tolerated():
    # pysiaalarm writes "None" where the receiver is absent, and its NAK reads L0R0A0.
    body = b'"ACK"0042NoneL0#1234[]'
    frame = ("\n%04X%04X" % (dc09.crc16_arc(body), len(body))).encode() + body + b"\r"
    ack = dc09.decode(frame)
    assert ack.receiver is None and ack.seq == 42 and ack.account == "1234"
    body = b'"NAK"0000L0R0A0[]_18:24:52,07-05-2020'
    frame = ("\n%04X%04X" % (dc09.crc16_arc(body), len(body))).encode() + body + b"\r"
    nak = dc09.decode(frame)
    assert (nak.token, nak.receiver, nak.prefix, nak.account) == ("NAK", "0", "0", "0")


def test_extended_data_kept_verbatim():
    msg = Message("SIA-DCS", 5, "AAA", None, "0", "#AAA|Nri1/CL501",
                  [("M", "0026B9E4268B"), ("H", "13:59:58,12-31-2012"), ("Q", "anything")],
                  (2019, 9, 25, 14, 12, 4))
    back = dc09.decode(dc09.encode(msg))
    assert back == msg
    assert back.sia_events()[0]["code"] == "CL" and back.sia_events()[0]["address"] == 501


def test_positions():
    xd = dc09.position_xdata(-33.8688, 151.2093)
    assert xd == [("X", "151E12.558"), ("Y", "33S52.128")]
    lat, lon = dc09.parse_position(xd)
    assert abs(lat + 33.8688) < 1e-4 and abs(lon - 151.2093) < 1e-4
    # The standard's own examples (DC-09-2026 xdata table): X093W23.456, Y45N23.456.
    lat, lon = dc09.parse_position([("X", "093W23.456"), ("Y", "45N23.456")])
    assert abs(lon + (93 + 23.456 / 60)) < 1e-9 and abs(lat - (45 + 23.456 / 60)) < 1e-9
    assert dc09.parse_position([("X", "-93.391"), ("Y", "45.391")]) == (45.391, -93.391)
    assert dc09.parse_position([("M", "00")]) is None
    assert _reason(dc09.parse_position, [("X", "200E00.000"), ("Y", "00N00.000")]) == "format"


def test_sia_dc03_data():
    # pysiaalarm issue #11: a panel's closing report with text after the address.
    ev = dc09.parse_sia_data("#123456|Nri1CL0^VX FRONTE ^")
    assert ev == [{"code": "CL", "address": 0, "text": "VX FRONTE ", "new": True,
                   "partition": 1, "user": None, "time": None, "peripheral": None}]
    ev = dc09.parse_sia_data("#1234|Nti12:30/id003/ri01/CL003")
    assert (ev[0]["code"], ev[0]["user"], ev[0]["partition"], ev[0]["time"]) == ("CL", 3, 1, "12:30")
    ev = dc09.parse_sia_data("#1234|Nri1/BA015/BR015")
    assert [(e["code"], e["address"]) for e in ev] == [("BA", 15), ("BR", 15)]
    assert _reason(dc09.parse_sia_data, "#1234|Xri1/BA015") == "format"


def test_timestamp_window():
    now = (2026, 1, 1, 0, 0, 0)
    dc09.check_timestamp((2026, 1, 1, 0, 0, 20), now)
    dc09.check_timestamp((2025, 12, 31, 23, 59, 20), now)
    assert _reason(dc09.check_timestamp, (2026, 1, 1, 0, 0, 21), now) == "timestamp"
    assert _reason(dc09.check_timestamp, (2025, 12, 31, 23, 59, 19), now) == "timestamp"
    dc09.check_timestamp((2025, 12, 31, 23, 58, 0), now, 5, 120)
    assert _reason(dc09.check_timestamp, None, now) == "timestamp"


def test_calendar_arithmetic():
    assert dc09.to_seconds((1970, 1, 1, 0, 0, 0)) == 0
    assert dc09.to_seconds((2000, 1, 1, 0, 0, 0)) == 946684800
    for n in (0, 951782399, 951782400, 1709251199, 4102444800):
        assert dc09.to_seconds(dc09.from_seconds(n)) == n
    assert dc09.from_seconds(951868800) == (2000, 3, 1, 0, 0, 0)
    assert _reason(dc09.parse_timestamp, "25:00:00,01-01-2026") == "timestamp"
    assert _reason(dc09.parse_timestamp, "10:00:00,02-30-2026") == "timestamp"


def test_frame_reader_splits_and_resyncs():
    r = dc09.FrameReader()
    # Two frames in one segment (as Ajax hubs send), after line noise.
    assert r.feed(b"\x00\xffnoise" + CAP_CID_1407 + CAP_NULL_7896[:20]) == [CAP_CID_1407]
    assert r.feed(CAP_NULL_7896[20:] + CAP_XTRM_NULL) == [CAP_NULL_7896, CAP_XTRM_NULL]
    assert r.discarded == 7
    # A stray LF that does not start a frame is dropped, the next frame still comes out.
    assert r.feed(b"\nnot a frame at all" + CAP_1002_602) == [CAP_1002_602]


def test_frame_reader_binary_crc_variant():
    # Some panels (Egardia, Trikdis) write the CRC as two binary bytes; pick one whose
    # CRC holds a CR byte, so only the length field can find the end.
    body = b'"NULL"0000L0#1234[]'
    frame = b"\n" + bytes([0x0D, 0x0A]) + ("%04X" % len(body)).encode() + body + b"\r"
    r = dc09.FrameReader()
    assert r.feed(frame[:5]) == [] and r.feed(frame[5:]) == [frame]
    body_crc = dc09.crc16_arc(body)
    real = b"\n" + bytes([body_crc >> 8, body_crc & 0xFF]) + ("%04X" % len(body)).encode() + body + b"\r"
    assert dc09.decode(real).token == "NULL"


def test_frame_reader_is_bounded():
    r = dc09.FrameReader(max_frame=64)
    assert r.feed(b'\n1234' + b"0" * 200) == []
    assert len(r.buf) <= 64
    assert r.feed(CAP_XTRM_NULL) == [CAP_XTRM_NULL]


def test_frame_reader_resyncs_after_a_lying_length():
    # A binary-CRC frame whose length claims more bytes than it has (issue 11): the
    # frame is passed on (decode answers it with a NAK for its length) and the next
    # frame on the stream comes out whole, instead of being swallowed by the lie.
    body = b'"NULL"0000L0#1234[]'
    crc = dc09.crc16_arc(body)
    real = b"\n" + bytes([crc >> 8, crc & 0xFF]) + ("%04X" % len(body)).encode() + body + b"\r"
    for claimed in (len(body) + 40, 0xFFF, 3):
        lying = real[:3] + ("%04X" % claimed).encode() + real[7:]
        r = dc09.FrameReader()
        assert r.feed(lying + real) == [lying, real]
        assert _reason(dc09.decode, lying) == "length"
        assert dc09.decode(real).token == "NULL"
    # A frame cut short (no CR before the next LF): dropped, the next one read.
    r = dc09.FrameReader()
    assert r.feed(real[:15] + real + CAP_XTRM_NULL) == [real, CAP_XTRM_NULL]
    assert r.discarded == 15
    assert r.feed(CAP_CID_1407[:30] + CAP_CID_1407) == [CAP_CID_1407]
