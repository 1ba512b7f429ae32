"""Test doubles for the flash tool: a stand-in MicroPython firmware (a real ESP
image header made by esptool, and MicroPython's partition table at 0x8000) and a
fake device link with an in-memory flash that can stop answering mid-write."""
import hashlib

from esptool.bin_image import ELFSection, ESP32C3FirmwareImage, ESP32FirmwareImage, ESP32S3FirmwareImage

from tools import partitions
from tools.partitions import Partition

_IMAGES = {"esp32": ESP32FirmwareImage, "esp32s3": ESP32S3FirmwareImage, "esp32c3": ESP32C3FirmwareImage}
_FLASH_SIZE_CODE = {4: 0x20, 8: 0x30, 16: 0x40}     # header byte 3, high nibble (esptool)


def firmware(lay, vfs=None, tmp_path=None):
    """Bytes of a stand-in firmware.bin for `lay`: a bootloader image that esptool's
    image-info decodes, then (at flash 0x8000) a MicroPython-style partition table
    whose vfs row is `vfs` (offset, size), by default the layout's own."""
    image = _IMAGES[lay.chip]()
    image.entrypoint = 0x40080000
    image.segments = [ELFSection(b".dram0.data", 0x3FFB0000 if lay.chip == "esp32" else 0x3FC88000, b"\0" * 64, 0)]
    image.flash_size_freq = _FLASH_SIZE_CODE[lay.flash_size >> 20]
    path = tmp_path / ("bootloader-%s.bin" % lay.chip)
    image.save(str(path))
    boot = path.read_bytes()
    offset, size = vfs or (lay.vfs_offset, lay.vfs_size)
    table = partitions.build_partition_table([
        Partition("nvs", 1, 2, 0x9000, 0x6000),
        Partition("phy_init", 1, 1, 0xF000, 0x1000),
        Partition("factory", 0, 0, 0x10000, offset - 0x10000),
        Partition("vfs", 1, partitions.SUBTYPE_FAT, offset, size),
    ])
    start = partitions.PARTITION_TABLE_OFFSET - lay.firmware_offset
    return boot + b"\xff" * (start - len(boot)) + table


class FakeDevice:
    """One board on a port: chip, MAC, a flash, and how many bytes it takes before
    it stops answering (None: never)."""

    def __init__(self, chip="esp32", mac="24:0a:c4:00:00:01", flash_size=4 << 20, answers_for=None, flash=None):
        self.chip, self.mac, self.answers_for = chip, mac, answers_for
        self.flash = bytearray(flash) if flash is not None else bytearray(b"\xff" * flash_size)
        self.ops = []            # what the device received: ("erase",) / ("write", addr, sha256) / ("read", addr, size)
        self.resets = 0


class FakeLink:
    """The EsptoolLink interface over FakeDevices, chosen by port."""
    devices = {}

    def __init__(self, port, baud, log, attempts=3):
        self.port, self.baud, self.log = port, baud, log
        self.dev = None

    def connect(self):
        if self.port not in self.devices:
            raise OSError("could not open port %s: [Errno 2] No such file or directory" % self.port)
        self.dev = self.devices[self.port]

    def chip(self):
        return self.dev.chip

    def mac(self):
        return self.dev.mac

    def flash_size(self):
        return len(self.dev.flash)

    def read(self, address, size):
        self.dev.ops.append(("read", address, size))
        return bytes(self.dev.flash[address:address + size])

    def erase(self):
        self.dev.ops.append(("erase",))
        self.dev.flash[:] = b"\xff" * len(self.dev.flash)

    def write(self, address, data):
        self.dev.ops.append(("write", address, hashlib.sha256(data).hexdigest()))
        for pos in range(0, len(data), 0x4000):          # esptool sends 16 KiB blocks
            chunk = data[pos:pos + 0x4000]
            if self.dev.answers_for is not None:
                if self.dev.answers_for < len(chunk):
                    raise OSError("Timed out waiting for packet header (device stopped answering)")
                self.dev.answers_for -= len(chunk)
            self.dev.flash[address + pos:address + pos + len(chunk)] = chunk

    def reset(self):
        self.dev.resets += 1

    def close(self):
        self.dev = None
