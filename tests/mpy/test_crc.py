# Runs on MicroPython (tests/test_on_micropython.py) and on CPython (pytest).
from protocols.crc import crc16_arc


def test_crc16_arc_check_value():
    # The catalogued check value of CRC-16/ARC (reveng CRC catalogue): "123456789" -> 0xBB3D.
    assert crc16_arc(b"123456789") == 0xBB3D


def test_crc16_arc_of_a_captured_dc09_frame():
    # Header CRC of a panel's frame captured in a public receiver's source.
    body = b'"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024'
    assert crc16_arc(body) == 0xF92F


def test_crc16_arc_of_a_range():
    # a frame's body inside its buffer, without a slice (the panel's frames)
    assert crc16_arc(b"\n0000123456789\r", 5, 14) == 0xBB3D
    assert crc16_arc(b"xx123456789", 2) == 0xBB3D
    assert crc16_arc(b"") == 0 == crc16_arc(b"123", 1, 1)


def test_pin_hash_is_sha256_of_salt_and_pin():
    # The one PIN digest: the provisioning tool writes it, the device compares it (str
    # from a config, bytes from the keypad buffer give the same).
    from protocols.crc import pin_hash
    expected = "4d16d824c3bbf17f2804d3acc2af5b2e4b53ebd5a2e574c4c438154297843ab2"   # sha256(b"5a171234")
    assert pin_hash("5a17", "1234") == expected
    assert pin_hash("5a17", b"1234") == expected == pin_hash("5a17", bytearray(b"1234"))
    assert pin_hash("5a18", "1234") != expected
