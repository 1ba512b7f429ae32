# Runs on MicroPython (tests/test_on_micropython.py) and on CPython (pytest).
from protocols.crc import crc16_arc, xor_check


def test_crc16_arc_check_value():
    # The catalogued check value of CRC-16/ARC (reveng CRC catalogue): "123456789" -> 0xBB3D.
    assert crc16_arc(b"123456789") == 0xBB3D


def test_crc16_arc_of_a_captured_dc09_frame():
    # Header CRC of a panel's frame captured in a public receiver's source.
    body = b'"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024'
    assert crc16_arc(body) == 0xF92F


def test_crc16_arc_continues():
    assert crc16_arc(b"56789", crc16_arc(b"1234")) == 0xBB3D
    assert crc16_arc(b"") == 0


def test_xor_check_jt808_heartbeat():
    # JT/T 808 heartbeat 0x0002 from phone 012345678901, flow 1: the check byte is the
    # XOR of header and body (JT/T 808-2013 section 4.4).
    header = bytes([0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x00, 0x01])
    expected = 0
    for b in header:
        expected ^= b
    assert xor_check(header) == expected == 0x02 ^ 0x01 ^ 0x23 ^ 0x45 ^ 0x67 ^ 0x89 ^ 0x01 ^ 0x01
    # The fold works for every length, odd and even, and for empty input.
    for n in range(0, 40):
        data = bytes((i * 37 + 11) & 0xFF for i in range(n))
        loop = 0
        for b in data:
            loop ^= b
        assert xor_check(data) == loop


def test_pin_hash_is_sha256_of_salt_and_pin():
    # The one PIN digest: the provisioning tool writes it, the device compares it (str
    # from a config, bytes from the keypad buffer give the same).
    from protocols.crc import pin_hash
    expected = "4d16d824c3bbf17f2804d3acc2af5b2e4b53ebd5a2e574c4c438154297843ab2"   # sha256(b"5a171234")
    assert pin_hash("5a17", "1234") == expected
    assert pin_hash("5a17", b"1234") == expected == pin_hash("5a17", bytearray(b"1234"))
    assert pin_hash("5a18", "1234") != expected
