"""`jifang flash`: provision a whole compound (or branch) from one CSV.

    jifang flash compound.csv --generate-secrets                 # write every device on its port
    jifang flash compound.csv --firmware ESP32_GENERIC.bin ...   # erase, MicroPython, then the app
    jifang flash compound.csv --dry-run                          # print the esptool commands only
    jifang flash compound.csv --out images/ [--full-image]       # images for a production line

For each CSV row: validate (tools/provision.py), build the app with mpy-cross and a
littlefs image of the vfs partition with that device's /config.json
(tools/images.py, layouts from tools/partitions.py), then write it with esptool.
A device whose flash already holds the same provisioning (read back through the
image's /provision.json) is skipped; a device that fails is listed with its reason
and the others go on; a device is "done" only after its image was read back from it.
The gateway's registry ([[devices]] TOML) for every valid row is written in the same
run. Keys, PINs and WiFi passwords never appear in the output or the logs.
"""
import sys

DEFAULT_BAUD = 460800
ROM_BAUD = 115200            # the ROM bootloader answers at this rate; the stub then changes it


def add_arguments(parser):
    parser.add_argument("csv", help="provisioning CSV, one row per device (columns: docs/flashing.md)")
    parser.add_argument("--board", default="ESP32_GENERIC",
                        help="layout for rows without a board column (tools/partitions.py): %(default)s")
    parser.add_argument("--out", metavar="DIR",
                        help="write the images (and registry) to DIR for a production line; no device is touched")
    parser.add_argument("--full-image", action="store_true",
                        help="with --out: also a full padded flash image per device (firmware + filesystem), for QEMU")
    parser.add_argument("--dry-run", action="store_true",
                        help="build everything and print the esptool commands; write nothing to any device")
    parser.add_argument("--firmware", metavar="BIN",
                        help="MicroPython firmware .bin: erase the chip and write it first")
    parser.add_argument("--generate-secrets", action="store_true",
                        help="make a DC-09 key (and an installer code) for rows without one; kept in --secrets")
    parser.add_argument("--secrets", "--secrets-out", dest="secrets", metavar="FILE",
                        help="generated secrets (0600 JSON); default: ~/.local/share/jifang/secrets/CSV-NAME-HASH"
                             ".secrets.json, outside the work tree (or CSV-NAME.secrets.json beside the CSV when an "
                             "older run left one there)")
    parser.add_argument("--registry", metavar="FILE",
                        help="the gateway's [[devices]] TOML; default: registry.toml in the image directory")
    parser.add_argument("--hardware", metavar="JSON",
                        help="board wiring profile: {\"panel\": {\"hw\": {...}, \"zone_inputs\": {...}}, \"intercom\": {...}}")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="flashing baud rate: %(default)s")
    parser.add_argument("--force", action="store_true", help="write even devices already provisioned identically")
    parser.add_argument("--logs", metavar="DIR", help="per-device logs; default: logs/ in the image directory")
    parser.add_argument("--build-dir", metavar="DIR",
                        help="where the images to write are built (without --out); default: build/flash/CSV-NAME")
    parser.add_argument("--connect-attempts", type=int, default=3, help="esptool connection attempts per device")


def run(args, link_factory=None, out=None):
    """`link_factory(port, baud, log, attempts)` -> a device link (tests pass a fake);
    `out`: where progress goes (stdout)."""
    from tools.provision_run import Provisioning
    out = out or sys.stdout
    job = Provisioning(args, link_factory or EsptoolLink, out)
    return job.run()


class EsptoolLink:
    """One device over its serial port, through esptool's Python API (the same
    operations as the esptool command lines the tool prints and logs)."""

    def __init__(self, port, baud, log, attempts=3):
        self.port, self.baud, self.log, self.attempts = port, baud, log, attempts
        self.esp = None

    def connect(self):
        from esptool import cmds
        self.esp = cmds.detect_chip(self.port, ROM_BAUD, connect_attempts=self.attempts)
        self.esp = self.esp.run_stub()
        if self.baud != ROM_BAUD:
            self.esp.change_baud(self.baud)
        cmds.attach_flash(self.esp)

    def chip(self):
        return self.esp.CHIP_NAME.lower().replace("-", "")       # "ESP32-S3" -> "esp32s3"

    def mac(self):
        return ":".join("%02x" % b for b in self.esp.read_mac())

    def flash_size(self):
        from esptool import cmds
        from esptool.util import flash_size_bytes
        size = cmds.detect_flash_size(self.esp)
        return flash_size_bytes(size) if size else None

    def read(self, address, size):
        return self.esp.read_flash(address, size)

    def erase(self):
        from esptool import cmds
        cmds.erase_flash(self.esp)

    def write(self, address, data):
        from esptool import cmds
        # write_flash compresses, then checks the MD5 the stub computes over the
        # written region: a device that stops answering raises, never "succeeds".
        cmds.write_flash(self.esp, [(address, data)])

    def reset(self):
        from esptool import cmds
        cmds.reset_chip(self.esp, "hard-reset")

    def close(self):
        if self.esp is not None and getattr(self.esp, "_port", None) is not None:
            self.esp._port.close()
        self.esp = None


def esptool_argv(lay, port, baud, *command):
    """An esptool v5 command line (hyphenated sub-commands)."""
    return ["esptool", "--chip", lay.chip, "--port", port or "PORT", "--baud", str(baud)] + list(command)


# littlefs keeps its superblock and root directory in blocks 0 and 1. They are
# written last, in a command of their own: until they are, the partition still
# shows the previous filesystem (or none), so a device that stops answering
# mid-write can never show this run's /provision.json, and a re-run rewrites it.
HEAD_SIZE = 2 * 4096


def write_plan(lay, port, baud, head_path, tail_path, firmware_path=None):
    """The esptool commands that provision one device, in order."""
    steps = []
    if firmware_path:
        steps.append(esptool_argv(lay, port, baud, "erase-flash"))
        steps.append(esptool_argv(lay, port, baud, "write-flash", "0x%x" % lay.firmware_offset, str(firmware_path)))
    steps.append(esptool_argv(lay, port, baud, "write-flash", "0x%x" % (lay.vfs_offset + HEAD_SIZE), str(tail_path)))
    steps.append(esptool_argv(lay, port, baud, "write-flash", "0x%x" % lay.vfs_offset, str(head_path)))
    return steps


if __name__ == "__main__":
    import argparse
    _parser = argparse.ArgumentParser(prog="tools/flash.py", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
