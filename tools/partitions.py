"""Where MicroPython puts things in an ESP32's flash, per board, from MicroPython's own
partition tables (ports/esp32/partitions-*.csv), never guessed.

Each layout names the CSV it was copied from. The `vfs` partition (type data,
subtype fat) is where MicroPython's _boot.py mounts "/": a littlefs v2 filesystem
that fills the whole partition (inisetup.py formats it with vfs.VfsLfs2 when the
mount fails, erasing what was there: a wrong geometry is not an error on the device,
it is a wiped filesystem, which is why the geometry below is checked by a test on
the unix port's own VfsLfs2).

A MicroPython firmware .bin (what micropython.org ships and `make` builds) starts
with the second-stage bootloader, so it is written at the chip's bootloader offset,
and it carries the partition table at flash 0x8000: `check_firmware()` reads that
table and refuses a firmware whose vfs partition is not where the layout says.
"""
import hashlib
import struct
from dataclasses import dataclass

BLOCK_SIZE = 4096          # ports/esp32/esp32_partition.c: NATIVE_BLOCK_SIZE_BYTES
# extmod/vfs_lfs.c: VfsLfs2(bdev, readsize=32, progsize=32, lookahead=32) defaults,
# and extmod/vfs_lfsx.c: cache_size = MIN(block_size, 4 * MAX(read, prog)), block_cycles 100.
LFS_GEOMETRY = dict(block_size=BLOCK_SIZE, read_size=32, prog_size=32, lookahead_size=32,
                    cache_size=128, block_cycles=100)

PARTITION_TABLE_OFFSET = 0x8000   # ESP-IDF CONFIG_PARTITION_TABLE_OFFSET default

# Bootloader offset per chip (esptool docs, "Flashing MicroPython"; ESP-IDF memory map).
FIRMWARE_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}


@dataclass(frozen=True)
class Layout:
    name: str
    chip: str                 # esptool --chip
    flash_size: int           # bytes
    vfs_offset: int
    vfs_size: int
    source: str               # the MicroPython file the numbers come from

    @property
    def firmware_offset(self):
        return FIRMWARE_OFFSET[self.chip]

    @property
    def block_count(self):
        return self.vfs_size // BLOCK_SIZE

    @property
    def flash_size_arg(self):
        """esptool's spelling of the flash size ("4MB")."""
        return "%dMB" % (self.flash_size >> 20)


MiB = 1 << 20

# board (as MicroPython names its builds) -> layout. "vfs, data, fat, OFFSET, SIZE" rows.
LAYOUTS = {layout.name: layout for layout in (
    # boards/sdkconfig.base: CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-4MiB.csv"
    Layout("ESP32_GENERIC", "esp32", 4 * MiB, 0x200000, 0x200000,
           "ports/esp32/partitions-4MiB.csv: vfs, data, fat, 0x200000, 0x200000"),
    # boards/ESP32_GENERIC/sdkconfig.ota -> partitions-4MiB-ota.csv (two 1.5 MiB app slots)
    Layout("ESP32_GENERIC-OTA", "esp32", 4 * MiB, 0x310000, 0x0F0000,
           "ports/esp32/partitions-4MiB-ota.csv: vfs, data, fat, 0x310000, 0x0f0000"),
    # boards/ESP32_GENERIC_S3/sdkconfig.board: FLASHSIZE_8MB, partitions-8MiB.csv
    Layout("ESP32_GENERIC_S3", "esp32s3", 8 * MiB, 0x200000, 0x600000,
           "ports/esp32/partitions-8MiB.csv: vfs, data, fat, 0x200000, 0x600000"),
    # 16 MiB modules (N16R8): a build with CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-16MiB.csv"
    Layout("ESP32_GENERIC_S3-16MiB", "esp32s3", 16 * MiB, 0x200000, 0xE00000,
           "ports/esp32/partitions-16MiB.csv: vfs, data, fat, 0x200000, 0xE00000"),
    # boards/ESP32_GENERIC_S3/sdkconfig.flash_4m -> partitions-4MiB.csv
    Layout("ESP32_GENERIC_S3-FLASH_4M", "esp32s3", 4 * MiB, 0x200000, 0x200000,
           "ports/esp32/partitions-4MiB.csv: vfs, data, fat, 0x200000, 0x200000"),
    # boards/ESP32_GENERIC_C3/mpconfigboard.cmake: sdkconfig.base -> partitions-4MiB.csv
    # (the QEMU variant only adds CONFIG_ETH_USE_OPENETH: same layout)
    Layout("ESP32_GENERIC_C3", "esp32c3", 4 * MiB, 0x200000, 0x200000,
           "ports/esp32/partitions-4MiB.csv: vfs, data, fat, 0x200000, 0x200000"),
)}


def layout(name):
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError("unknown board %r; known: %s" % (name, ", ".join(LAYOUTS))) from None


# -- the partition table inside a firmware image ------------------------------------
# ESP-IDF binary format (components/partition_table/gen_esp32part.py): 32-byte
# entries "<2sBBLL16sL" with magic AA 50, then an MD5 entry (magic EB EB) and 0xFF fill.
_ENTRY = struct.Struct("<2sBBLL16sL")
_MAGIC = b"\xaa\x50"
_MD5_MAGIC = b"\xeb\xeb"
TYPE_DATA, SUBTYPE_FAT = 1, 0x81


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int


def parse_partition_table(data):
    """The entries of a binary partition table; checks its MD5 entry when present."""
    entries = []
    for pos in range(0, min(len(data), 0xC00), _ENTRY.size):
        raw = data[pos:pos + _ENTRY.size]
        if raw[:2] == _MD5_MAGIC:
            if hashlib.md5(data[:pos]).digest() != raw[16:32]:
                raise ValueError("partition table MD5 does not match its entries")
            break
        if raw[:2] != _MAGIC:
            break
        _, ptype, subtype, offset, size, label, _flags = _ENTRY.unpack(raw)
        entries.append(Partition(label.rstrip(b"\0").decode(errors="replace"), ptype, subtype, offset, size))
    if not entries:
        raise ValueError("no partition table (no AA 50 entry)")
    return entries


def build_partition_table(partitions):
    """The binary table for a list of Partition (used to make stand-in firmware for
    tests and QEMU images; real firmware brings its own)."""
    out = b"".join(_ENTRY.pack(_MAGIC, p.type, p.subtype, p.offset, p.size,
                               p.label.encode().ljust(16, b"\0"), 0) for p in partitions)
    out += _MD5_MAGIC + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (0xC00 - len(out))


def vfs_partition(entries):
    for p in entries:
        if p.label == "vfs" and p.type == TYPE_DATA:
            return p
    raise ValueError("no 'vfs' data partition in the table: %s" % ", ".join(p.label for p in entries))


def check_firmware(firmware, lay):
    """Raise ValueError unless the firmware's own partition table puts "vfs" exactly
    where `lay` does (so the filesystem image lands on the partition MicroPython mounts)."""
    start = PARTITION_TABLE_OFFSET - lay.firmware_offset
    table = firmware[start:start + 0xC00]
    if len(table) < _ENTRY.size:
        raise ValueError("firmware is %d bytes: too short to hold a partition table at 0x%x"
                         % (len(firmware), PARTITION_TABLE_OFFSET))
    vfs = vfs_partition(parse_partition_table(table))
    if (vfs.offset, vfs.size) != (lay.vfs_offset, lay.vfs_size):
        raise ValueError("firmware's vfs partition is 0x%x+0x%x but board %s says 0x%x+0x%x (%s): "
                         "pick the board matching this firmware with --board"
                         % (vfs.offset, vfs.size, lay.name, lay.vfs_offset, lay.vfs_size, lay.source))
    return vfs
