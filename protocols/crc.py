# Checksums and digests shared by the devices, the gateway and the tools. Runs on
# CPython and MicroPython. Every device loads this module: what only the gateway
# needs (the JT/T 808 check byte) lives with its protocol, not here.
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
del _make_table         # run once: on a device its code would stay in RAM for nothing


def crc16_arc(data, start=0, end=-1):
    """CRC-16/ARC of bytes-like data[start:end] (end -1: to the end). By index
    rather than a slice: the panel seals and checks frames in its buffers without
    allocating (protocols/dc09_link.py)."""
    table = _ARC_TABLE
    crc = 0
    for i in range(start, len(data) if end < 0 else end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc


def pin_hash(salt, pin):
    """How a PIN is kept: sha256(salt + PIN) in lowercase hex. The provisioning tool
    writes it into a device's config (tools/provision.py), the device hashes what is
    typed and compares (firmware/core/users.py), the sim's configs use it (hil/sim.py).
    The salt is per device; `pin` is a str or the bytes the keypad collected."""
    h = hashlib.sha256(salt.encode() + (pin.encode() if isinstance(pin, str) else bytes(pin)))
    return binascii.hexlify(h.digest()).decode()
