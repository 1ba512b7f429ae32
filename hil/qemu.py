"""The `qemu` target: Espressif's QEMU fork booting a full padded flash image that
`jifang flash --out DIR --full-image --firmware MICROPYTHON.bin` built.

    dut = QemuDut("out/b1-gate.full.bin", chip="esp32c3", workdir=tmp).start()
    dut.expect(r"READY")          # the firmware's console, on the emulated UART0

Espressif's fork is not on PyPI or in Debian: install it as docs/hil.md says
(ESP-IDF's `idf_tools.py install qemu-xtensa qemu-riscv32`, or their release
archives) and put `qemu-system-xtensa` / `qemu-system-riscv32` on PATH, or pass
--qemu-bin. QEMU has no WiFi: networking is the emulated OpenCores Ethernet
(open_eth) with QEMU's user-mode network, where the host is 10.0.2.2, so a
device's receivers for a QEMU run are 10.0.2.2:PORT. MicroPython's firmware must
be an open_eth build (ESP32_GENERIC_C3 variant QEMU, or an ESP32 build with
CONFIG_ETH_USE_OPENETH=y). Zone inputs cannot be driven in QEMU (no GPIO model):
its tests are boot, report and supervision tests.
"""
import shutil
import subprocess
import threading
from pathlib import Path

from hil.sim import Dut

# chip -> (binary, machine), as in ESP-IDF's "QEMU Emulator" guide for each target
# (the S3 machine is in the same xtensa binary).
MACHINES = {"esp32": ("qemu-system-xtensa", "esp32"), "esp32s3": ("qemu-system-xtensa", "esp32s3"),
            "esp32c3": ("qemu-system-riscv32", "esp32c3")}
# QEMU's flash model only takes whole chip sizes (the image must be padded to one).
FLASH_SIZES = (2 << 20, 4 << 20, 8 << 20, 16 << 20)


def qemu_binary(chip, override=None):
    """Path of the QEMU for `chip`, or None when it is not installed."""
    if chip not in MACHINES:
        return None
    name = override or MACHINES[chip][0]
    return shutil.which(name)


def missing_reason(chip, override=None):
    """Why the qemu target cannot run here (None when it can)."""
    if chip not in MACHINES:
        return "no QEMU machine for %s (qemu targets: %s)" % (chip, ", ".join(MACHINES))
    if qemu_binary(chip, override) is None:
        return ("%s not installed (Espressif's QEMU fork; see docs/hil.md: "
                "idf_tools.py install qemu-xtensa qemu-riscv32, or pass --qemu-bin)" % (override or MACHINES[chip][0]))
    return None


def qemu_command(binary, chip, flash_image, forwards=()):
    """The command line: flash as an MTD drive, UART0 on stdio, open_eth on QEMU's
    user network (`forwards`: host ports forwarded to the guest, as (host, guest))."""
    size = Path(flash_image).stat().st_size
    if size not in FLASH_SIZES:
        raise ValueError("%s is %d bytes: QEMU needs a whole flash chip (2/4/8/16 MiB); "
                         "build it with jifang flash --full-image" % (flash_image, size))
    nic = "user,model=open_eth"
    for host, guest in forwards:
        nic += ",hostfwd=tcp:127.0.0.1:%d-:%d" % (host, guest)
    return [binary, "-nographic", "-M", MACHINES[chip][1],
            "-drive", "file=%s,if=mtd,format=raw" % flash_image,
            "-nic", nic, "-serial", "mon:stdio"]


class QemuDut(Dut):
    def __init__(self, flash_image, chip, workdir, binary=None, forwards=()):
        super().__init__()
        self.flash_image = Path(flash_image)
        self.chip = chip
        self.workdir = Path(workdir)
        self.binary = qemu_binary(chip, binary)
        self.forwards = forwards
        self.proc = None

    def start(self, wait_ready=True, timeout=60):
        if self.binary is None:
            raise FileNotFoundError(missing_reason(self.chip))
        # QEMU writes to the flash drive: run on a copy, the built image stays as built
        self.workdir.mkdir(parents=True, exist_ok=True)
        flash = self.workdir / "flash.bin"
        if not flash.exists():
            shutil.copyfile(self.flash_image, flash)
        self._eof = False
        self.proc = subprocess.Popen(qemu_command(self.binary, self.chip, flash, self.forwards),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._pump, daemon=True).start()
        if wait_ready:
            self.expect(r"READY", timeout)
        return self

    def _pump(self):
        for raw in self.proc.stdout:
            self._feed(raw.decode(errors="replace").rstrip("\r\n"))
        self.proc.wait()
        self._eof = True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def power_loss(self):
        """Kill QEMU: the RAM is gone, the flash file keeps what was written."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        self.power_loss()
        return None if self.proc is None else self.proc.returncode
