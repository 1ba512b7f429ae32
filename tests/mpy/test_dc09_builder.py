# protocols.dc09_link.Link (the panel's allocation-free ADM-CID/NULL encoder and ACK
# check) against the codec itself: byte for byte the frame dc09.encode() writes for the
# same message and pad, and ACKs as dc09.decode() + is_ack_for() judge them; and the
# pieces both write with (seal, digits, civil date, ADM-CID data). Runs on MicroPython
# (tests/test_on_micropython.py) and on CPython (pytest).
import gc
from protocols import dc09_link   # first: compiling it from source needs the room
from protocols.dc09_link import Link
gc.collect()
from protocols import dc09       # noqa: E402

KEY = dc09.key_from_text("0123456789ABCDEF")
KEY256 = dc09.key_from_hex("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF")
PAD = b"!#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJ"


def _hms(secs):
    t = dc09.from_seconds(secs)
    return "%02d:%02d:%02d,%02d-%02d-%04d" % (t[3], t[4], t[5], t[1], t[2], t[0])


def _encode_same(key, account, rcv, prefix, seq, q, code, part, zone, when, now, pad):
    saved = dc09._pad
    dc09._pad = lambda n: pad[:n]
    try:
        msg = dc09.Message("ADM-CID", seq, account, rcv, prefix,
                           "#%s|%d%03d %02d %03d" % (account, q, code, part, zone),
                           [("H", _hms(when))], dc09.from_seconds(now))
        return dc09.encode(msg, key)
    finally:
        dc09._pad = saved


CASES = (
    # key, account, receiver, prefix, seq, q, code, part, zone, when, now
    (KEY, "1234", None, "0", 1, 1, 130, 1, 2, 1795430000, 1795430003),
    (KEY, "1234", None, "0", 9999, 3, 401, 2, 999, 1795430000, 1795430003),
    (KEY, "ABCDEF0123", "7896", "7896", 42, 1, 144, 99, 0, 951782400, 951868799),  # 29 Feb 2000
    (KEY256, "5A", "1", "12", 17, 6, 602, 0, 0, 0, 1735689599),                     # 1970, 2024-12-31
    (KEY, "1234", None, "0", 500, 1, 624, 0, 7, 4102444800, 4102444800),            # 2100-01-01
)


def test_builder_matches_encode_byte_for_byte():
    for key, acct, rcv, pre, seq, q, code, part, zone, when, now in CASES:
        fb = Link(key, acct, rcv, pre)
        pad = PAD[:fb.pad]
        n = fb.build(seq, q, code, part, zone, when, now, pad)
        assert n == len(fb.out)
        ref = _encode_same(key, acct, rcv, pre, seq, q, code, part, zone, when, now, pad)
        assert bytes(fb.view[:n]) == ref, (seq, bytes(fb.view[:n]), ref)


def test_builder_frames_decode_and_the_buffer_is_reused():
    fb = Link(KEY, "1234", None, "0")
    out = fb.out
    pads = []
    for seq in (1, 2, 3):
        n = fb.build(seq, 1, 130, 1, 2, 1795430000, 1795430003 + seq)
        m = dc09.decode(bytes(fb.out[:n]), KEY)
        assert (m.token, m.seq, m.account, m.encrypted) == ("ADM-CID", seq, "1234", True)
        assert m.data == "#1234|1130 01 002" and m.xdata == [("H", _hms(1795430000))]
        assert m.timestamp == dc09.from_seconds(1795430003 + seq)
        pads.append(bytes(fb.plain[:fb.pad]))
        for b in pads[-1]:
            assert b in dc09_link.PAD_ALPHABET
    assert fb.out is out
    assert pads[0] != pads[1] != pads[2]          # a fresh pad for every frame


def test_builder_epoch_days():
    # the ESP32 port counts seconds from 2000-01-01 (10957 days after 1970)
    fb = Link(KEY, "1234", None, "0", 10957)
    n = fb.build(5, 1, 130, 1, 2, 0, 86399)
    m = dc09.decode(bytes(fb.out[:n]), KEY)
    assert m.xdata == [("H", "00:00:00,01-01-2000")]
    assert m.timestamp == (2000, 1, 1, 23, 59, 59)


def test_ack_matcher_agrees_with_decode():
    am = Link(KEY, "12ab")
    msg = dc09.Message("ADM-CID", 77, "12AB", None, "0", "#12AB|1130 01 002", [],
                       (2026, 1, 1, 0, 0, 0), True)
    ack = dc09.encode(dc09.make_ack(msg, (2026, 1, 1, 0, 0, 1)), KEY)
    assert dc09.is_ack_for(dc09.decode(ack, KEY), msg)
    assert am.is_ack(ack, len(ack), 77)
    assert not am.is_ack(ack, len(ack), 78)                        # other sequence
    assert not Link(KEY, "12AC").is_ack(ack, len(ack), 77)   # other account
    assert not Link(KEY256, "12AB").is_ack(ack, len(ack), 77)  # wrong key
    bad = bytearray(ack)
    bad[-5] = 0x30 if bad[-5] != 0x30 else 0x31                   # CRC no longer holds
    assert not am.is_ack(bad, len(bad), 77)
    clear = dc09.encode(dc09.Message("ACK", 77, "12AB", None, "0", "", None, None, False))
    assert am.is_ack(clear, len(clear), 77)
    nak = dc09.encode(dc09.make_nak((2026, 1, 1, 0, 0, 0)))
    assert not am.is_ack(nak, len(nak), 0)
    # a bytearray with trailing room (the panel's receive buffer)
    buf = bytearray(300)
    buf[:len(ack)] = ack
    assert am.is_ack(buf, len(ack), 77)
    assert not am.is_ack(buf, len(ack) - 1, 77)


def test_builder_and_matcher_allocate_nothing():
    try:
        import micropython
        import gc
    except ImportError:
        return                                     # CPython: nothing to prove
    fb = Link(KEY, "1234", None, "0")
    am = Link(KEY, "1234")
    msg = dc09.Message("ADM-CID", 9, "1234", None, "0", "", [], (2026, 1, 1, 0, 0, 0), True)
    ack = dc09.encode(dc09.make_ack(msg, (2026, 1, 1, 0, 0, 1)), KEY)
    gc.collect()
    micropython.heap_lock()
    try:
        ok = True
        for i in range(50):
            fb.build(i + 1, 1, 130, 1, 2, 1795430000 + i, 1795430003 + i)
            ok = ok and am.is_ack(ack, len(ack), 9)
    finally:
        micropython.heap_unlock()
    assert ok


def test_null_frames_match_encode():
    for key, acct, rcv, pre in ((KEY, "1234", None, "0"), (KEY256, "ABC", "12", "3")):
        fn = Link(key, acct, rcv, pre, 0, "NULL")
        pad = PAD[:fn.pad]
        n = fn.build(321, 0, 0, 0, 0, 0, 1795430003, pad)
        saved = dc09._pad
        dc09._pad = lambda k: pad[:k]
        try:
            ref = dc09.encode(dc09.Message("NULL", 321, acct, rcv, pre, "", None,
                                           dc09.from_seconds(1795430003)), key)
        finally:
            dc09._pad = saved
        assert bytes(fn.view[:n]) == ref, (bytes(fn.view[:n]), ref)
        m = dc09.decode(bytes(fn.view[:fn.build(7, 0, 0, 0, 0, 0, 1795430003)]), key)
        assert (m.token, m.seq, m.data) == ("NULL", 7, "")


def test_pad_alphabet_and_refusals():
    # printable ASCII but the three characters a receiver splits the clear text on
    assert all(0x21 <= b <= 0x7E for b in dc09_link.PAD_ALPHABET)
    assert b"[" not in dc09_link.PAD_ALPHABET and b"]" not in dc09_link.PAD_ALPHABET
    assert b"|" not in dc09_link.PAD_ALPHABET and len(dc09_link.PAD_ALPHABET) == 91
    for args in ((b"short", "1234"), (KEY, "12-4"), (KEY, ""), (KEY, "1234", "XY"),
                 (KEY, "1234", None, "0000000")):
        try:
            Link(*args)
        except ValueError:
            continue
        raise AssertionError(args)


def test_nak_and_duh_read_without_the_codec():
    link = Link(KEY, "1234")
    for ts in ((2026, 11, 23, 12, 30, 5), (2000, 2, 29, 0, 0, 1), (2099, 12, 31, 23, 59, 59)):
        nak = dc09.encode(dc09.make_nak(ts))
        assert link.refused(nak, len(nak)) == dc09.to_seconds(ts)
    msg = dc09.Message("ADM-CID", 5, "1234", None, "0", "#1234|1130 01 002", [], None, False)
    duh = dc09.encode(dc09.make_duh(msg))
    assert link.refused(duh, len(duh)) == 0
    ack = dc09.encode(dc09.make_ack(dc09.Message("ADM-CID", 5, "1234", None, "0", "", [],
                                                 (2026, 1, 1, 0, 0, 0), True), (2026, 1, 1, 0, 0, 1)), KEY)
    assert link.refused(ack, len(ack)) is None
    bad = bytearray(dc09.encode(dc09.make_nak((2026, 1, 1, 0, 0, 0))))
    bad[3] = 0x30 if bad[3] != 0x30 else 0x31
    assert link.refused(bytes(bad), len(bad)) is None


def test_civil_date_both_ways():
    # every 3rd day from 1900 to 2200: civil() and days_from_civil() undo each other
    # and agree with dc09.from_seconds (the same helpers) on the calendar's edges
    for days in range(-25567, 84006, 3):
        c = dc09_link.civil(days)
        assert dc09_link.days_from_civil(c >> 9, (c >> 5) & 15, c & 31) == days
    assert dc09.from_seconds(951782400) == (2000, 2, 29, 0, 0, 0)
    assert dc09.from_seconds(4102444799) == (2099, 12, 31, 23, 59, 59)
    assert dc09_link.days_from_civil(1970, 1, 1) == 0
    assert dc09_link.days_from_civil(2000, 1, 1) == 10957       # the ESP32 port's epoch
    b = bytearray(19)
    dc09_link.put_time(b, 0, 86399, 10957)
    assert bytes(b) == b"23:59:59,01-01-2000"


def test_digits_and_seal():
    f = bytearray(dc09.encode(dc09.Message("NULL", 3, "12AB", None, "0", "", None, None)))
    assert dc09_link.sealed(f, len(f))
    assert dc09_link.digits(f, 5, 4, 16) == len(f) - 10
    crc = dc09_link.digits(f, 1, 4, 16)
    f[1:9] = b"00000000"
    assert not dc09_link.sealed(f, len(f))
    dc09_link.seal(f, len(f))
    assert dc09_link.sealed(f, len(f)) and dc09_link.digits(f, 1, 4, 16) == crc
    assert dc09_link.digits(b"00aF", 0, 4, 16) == 0xAF
    for bad in (b"00G0", b"0:00", b"-001", b" 001"):
        assert dc09_link.digits(bad, 0, 4, 16) == -1
    assert dc09_link.digits(b"0A12", 0, 4, 10) == -1 and dc09_link.digits(b"9012", 0, 4, 10) == 9012


def test_adm_cid_data_is_written_once():
    from protocols import contactid
    assert dc09_link.cid_data("AB12", 1, 130, 1, 2) == "#AB12|1130 01 002"
    r = contactid.Report("AB12", 3, 401, 99, 999)
    assert contactid.dc09_data(r) == dc09_link.cid_data("AB12", 3, 401, 99, 999)
    for wide in ((10, 130, 1, 2), (1, 1000, 1, 2), (1, 130, 100, 2), (1, 130, 1, 1000), (1, -1, 1, 2)):
        try:
            dc09_link.cid_data("AB12", *wide)
        except ValueError:
            continue
        raise AssertionError(wide)


def test_a_null_twin_shares_the_ciphers():
    # the reporter's two Links: the NULLs' takes the events' ciphers and scratch; the
    # frames interleave, each decodes, and the shared pad counter never repeats a pad
    fb = Link(KEY, "1234", None, "0")
    fn = Link(fb, "1234", None, "0", 0, "NULL")
    assert fn.e is fb.e and fn.d is fb.d and fn.s is fb.s
    pads = set()
    for seq in range(1, 6):
        n = fb.build(seq, 1, 130, 1, 2, 1795430000, 1795430003)
        m = dc09.decode(bytes(fb.view[:n]), KEY)
        assert (m.token, m.seq, m.data) == ("ADM-CID", seq, "#1234|1130 01 002")
        pads.add(bytes(fb.plain[:fb.pad]))
        n = fn.build(seq, 0, 0, 0, 0, 0, 1795430003)
        m = dc09.decode(bytes(fn.view[:n]), KEY)
        assert (m.token, m.seq, m.data) == ("NULL", seq, "")
        pads.add(bytes(fn.plain[:fn.pad]))
    assert len(pads) == 10
