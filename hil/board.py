"""The `board` target: the firmware on a real ESP32 on a serial port.

    dut = BoardDut("/dev/ttyUSB0", config, workdir, board="ESP32_GENERIC",
                   jig=SerialJig("/dev/ttyACM0")).start()
    dut.expect(r"READY")          # the firmware's log lines on UART0
    dut.trip(3)                   # through the test jig (same commands as the sim's control socket)
    dut.power_loss()              # EN pulled low through the USB-UART's RTS: a reset, flash kept

start() provisions the board with the flash tool's own code path (image built
from `config` by tools/images.py, written by tools.esptool_link.EsptoolLink, skipped when
the board already holds it), then resets it and follows its console with pyserial.

Why not pytest-embedded's serial service: its plugin registers itself in every
pytest run once installed (options and a `dut` fixture that collide with ours),
it has no MicroPython service, and all we need from it is "open the port, expect a
regex", which hil.sim.Dut already gives every target. mpremote is used where it
is the right tool: reading files off the board (the event queue) after a test,
through the raw REPL, which stops the app.
"""
import threading
import time
from pathlib import Path

from hil.sim import Dut

CONSOLE_BAUD = 115200        # MicroPython's REPL/console UART0 on the ESP32 port


class JigMissing(RuntimeError):
    """A test needs to drive inputs and no jig was given (--jig-port)."""


class SerialJig:
    """A test jig on its own serial port, speaking the sim control protocol one line
    at a time ("zone 3 alarm" -> "ok"): see docs/hil.md for the wiring and firmware."""

    def __init__(self, port, baud=115200, timeout=5):
        import serial
        self.serial = serial.Serial(port, baud, timeout=timeout)

    def send(self, command):
        self.serial.write((command + "\n").encode())
        reply = self.serial.readline().decode(errors="replace").strip()
        if not reply.startswith("ok"):
            raise RuntimeError("jig: %s -> %s" % (command, reply or "no answer"))
        return reply[2:].strip() or None

    def close(self):
        self.serial.close()


class BoardDut(Dut):
    def __init__(self, port, config, workdir, board="ESP32_GENERIC", jig=None, flash_baud=460800):
        super().__init__()
        self.port, self.config, self.board = port, dict(config), board
        self.workdir = Path(workdir)
        self.jig, self.flash_baud = jig, flash_baud
        self.serial = None
        self._stop = threading.Event()
        self.config.setdefault("target", "esp32")

    # -- provisioning ------------------------------------------------------------
    def provision(self):
        """Write the app + this config to the board, as `jifang flash` does."""
        from tools import images, partitions, provision
        from tools.esptool_link import EsptoolLink, HEAD_SIZE
        lay = partitions.layout(self.board)
        app = images.build_app(self.workdir / "mpy-cache")
        image, digest = images.build_image(app, provision.config_bytes(self.config), lay, "board")
        link = EsptoolLink(self.port, self.flash_baud, log=None)
        try:
            link.connect()
            marker = images.read_marker(link.read, lay)
            if not marker or marker.get("digest") != digest:
                link.write(lay.vfs_offset + HEAD_SIZE, image[HEAD_SIZE:images.used_length(image)])
                link.write(lay.vfs_offset, image[:HEAD_SIZE])
            link.reset()
        finally:
            link.close()

    # -- process-like interface -------------------------------------------------------
    def start(self, wait_ready=True, timeout=30, provision=True):
        import serial
        if provision:
            self.provision()
        self.serial = serial.Serial(self.port, CONSOLE_BAUD, timeout=0.2)
        self._stop.clear()
        self._eof = False
        threading.Thread(target=self._pump, daemon=True).start()
        self.power_loss()                       # boot from reset, so READY is this boot's
        if wait_ready:
            self.expect(r"READY", timeout)
        return self

    def _pump(self):
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self.serial.read(256)
            except Exception:                   # port gone (board unplugged): end of log
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._feed(line.decode(errors="replace").rstrip("\r"))
        self._eof = True

    def alive(self):
        return self.serial is not None and not self._eof

    def power_loss(self):
        """Reset through EN (RTS on the common auto-reset circuit), IO0 high (DTR
        released) so it boots the app, not the ROM loader."""
        self.serial.dtr = False
        self.serial.rts = True
        time.sleep(0.1)
        self.serial.rts = False
        self._feed("=== reset ===")

    def stop(self):
        self._stop.set()
        if self.serial is not None:
            time.sleep(0.3)
            self.serial.close()
        if self.jig is not None:
            self.jig.close()

    # -- inputs: the jig ----------------------------------------------------------------
    def ctrl(self, command):
        if self.jig is None:
            raise JigMissing("driving inputs on a board needs a test jig (--jig-port); see docs/hil.md")
        return self.jig.send(command)

    # -- after a test: files off the board ------------------------------------------------
    def read_file(self, path):
        """A file from the board's filesystem (e.g. "events.q"), through mpremote's
        raw REPL. Interrupts the app: call it at the end of a test."""
        from mpremote.transport_serial import SerialTransport
        self._stop.set()
        time.sleep(0.3)
        self.serial.close()
        transport = SerialTransport(self.port, baudrate=CONSOLE_BAUD)
        try:
            transport.enter_raw_repl(soft_reset=False)
            return transport.fs_readfile(path)
        finally:
            transport.exit_raw_repl()
            transport.close()
