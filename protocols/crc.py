# Checksums and digests shared by the devices, the gateway and the tools. Runs on
# CPython and MicroPython.
#
# CRC-16/ARC is what SIA DC-09 puts in front of every frame (poly 0x8005 reflected,
# init 0, no final xor; check value of b"123456789" is 0xBB3D). Table-driven: one
# 512-byte table built once at import saves eight shifts per byte on a slow MCU.
# An array of 16-bit values, not a tuple: a tuple of 256 ints is 2 KB of heap on a
# 64-bit build (1 KB on the ESP32), the array 512 bytes on both.
import binascii
import hashlib
from array import array


def _make_table():
    table = array("H", bytes(512))
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_ARC_TABLE = _make_table()


def crc16_arc(data, crc=0):
    """CRC-16/ARC of bytes-like `data`, continuing from `crc`."""
    table = _ARC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def xor_check(data):
    """JT/T 808 check byte: XOR of every byte from the header to the end of the body.
    Folding one big int in halves keeps the work in C: about 6x faster than a
    byte loop on a full 1 KB body (the gateway checks every frame of every vehicle)."""
    x = int.from_bytes(bytes(data), "little")
    n = len(data)
    while n > 1:
        half = (n + 1) // 2
        x = (x & ((1 << 8 * half) - 1)) ^ (x >> 8 * half)
        n = half
    return x


def pin_hash(salt, pin):
    """How a PIN is kept: sha256(salt + PIN) in lowercase hex. The provisioning tool
    writes it into a device's config (tools/provision.py), the device hashes what is
    typed and compares (firmware/core/users.py), the sim's configs use it (hil/sim.py).
    The salt is per device; `pin` is a str or the bytes the keypad collected."""
    h = hashlib.sha256(salt.encode() + (pin.encode() if isinstance(pin, str) else bytes(pin)))
    return binascii.hexlify(h.digest()).decode()
