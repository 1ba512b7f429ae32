"""One ESP32 over its serial port (esptool's Python API), and the esptool commands
that write a device's images, in the order that keeps a half-written device visibly
unprovisioned. Used by `jifang flash` (tools/flash.py, tools/provision_run.py) and by
the board harness (hil/board.py)."""

ROM_BAUD = 115200            # the ROM bootloader answers at this rate; the stub then changes it


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
