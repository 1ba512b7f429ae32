"""The `sim` target: the firmware on the MicroPython unix port as a device under test.

    dut = SimDut(config, workdir, heap="128K").start()
    dut.expect(r"READY")                     # regex on the console log, like pytest-embedded
    dut.trip(3)                              # zone 3 to alarm, through the control socket
    dut.keys("1234A")                        # type on keypad 1
    dut.swipe(0x12ABCD, bits=26)             # Wiegand card
    dut.net(False); dut.power_loss(); dut.start()   # kill -9 and boot again, same flash
    dut.stop()

The firmware runs as it would on a board: from .mpy files (compiled by mpy-cross
into build/mpy, as the flash tool will write them) with the heap capped, its state
(event queue, reset markers) in `workdir/state`, which survives restarts.

A DUT has the same interface on every target: `start()`, `expect()`,
`expect_exact()`, the control calls (`ctrl()` and its helpers), `power_loss()`,
`stop()`. The `board` target (an ESP32 on a serial port) and `qemu` implement
`_spawn()` / `_send_control()` / `_kill()` differently: see docs/firmware.md.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from hil import micropython
from hil.manifest import ROOT, sim_files
from tools.mpy import compile_to, mpy_name
from protocols.crc import pin_hash  # noqa: F401  (the sims' configs, the tests and the bench take it from here)

BUILD = ROOT / "build" / "mpy"
_build_lock = threading.Lock()


def build_mpy(dest=BUILD):
    """Compile the sim's files (hil/sim_manifest.py: what ships, and the tests' clock)
    with tools/mpy.py into `dest`, laid out as on the device: protocols/ as a package,
    firmware/'s contents at the top. Incremental: a .mpy newer than its source is
    kept; a .mpy of a module no manifest lists any more is removed (it would still
    import in the sim, and not on a device)."""
    with _build_lock:
        wanted = set()
        for src, target in sim_files():
            out = dest / mpy_name(target)
            wanted.add(out)
            if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
                continue
            compile_to(src, out, target)
        for old in Path(dest).rglob("*.mpy"):
            if old not in wanted:
                old.unlink()
    return dest


def wiegand(nbits, number):
    """Wiegand frame (parity bits included) for a card number."""
    half = (nbits - 2) // 2
    first, second = number >> half, number & ((1 << half) - 1)
    p_even = bin(first).count("1") & 1
    p_odd = 1 - (bin(second).count("1") & 1)
    return (p_even << (nbits - 1)) | (number << 1) | p_odd


class ExpectTimeout(AssertionError):
    pass


class Dut:
    """Target-independent part: the console log and expect()."""

    def __init__(self):
        self._lines = []
        self._pos = 0
        self._cond = threading.Condition()

    def _feed(self, line):
        with self._cond:
            self._lines.append(line)
            self._cond.notify_all()

    def log_text(self):
        with self._cond:
            return "\n".join(self._lines)

    def lines(self):
        with self._cond:
            return list(self._lines)

    def expect(self, pattern, timeout=30):
        """Wait for a console line matching `pattern` (regex) after the last match;
        returns the re.Match (pytest-embedded convention)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._pos < len(self._lines):
                    line = self._lines[self._pos]
                    self._pos += 1
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (not self.alive() and self._pos >= len(self._lines) and self._eof):
                    tail = "\n".join(self._lines[-30:])
                    raise ExpectTimeout("no line matching %r within %ss; log tail:\n%s" % (pattern, timeout, tail))
                self._cond.wait(min(left, 0.1))

    def expect_exact(self, text, timeout=30):
        return self.expect(re.escape(text), timeout)

    def seek_end(self):
        """Forget unmatched output: the next expect() sees only new lines."""
        with self._cond:
            self._pos = len(self._lines)

    def alive(self):
        return False

    _eof = True

    # -- inputs, the same on every target: each target's ctrl() carries them (the sim's
    # control socket, a board's test jig) --------------------------------------------
    def trip(self, zone, state="alarm"):
        return self.ctrl("zone %d %s" % (zone, state))

    def restore(self, zone):
        return self.ctrl("zone %d normal" % zone)

    def keys(self, chars, keypad=1):
        return self.ctrl("key %d %s" % (keypad, chars))

    def swipe(self, number, bits=26, reader=1, frame=None):
        value = wiegand(bits, number) if frame is None else frame
        return self.ctrl("card %d %d %d" % (reader, bits, value))

    def button(self, name, level):
        return self.ctrl("button %s %d" % (name, level))

    def door(self, is_open):
        return self.ctrl("door %s" % ("open" if is_open else "closed"))

    def net(self, up):
        return self.ctrl("net %s" % ("up" if up else "down"))

    def ac(self, on):
        return self.ctrl("ac %d" % (1 if on else 0))

    def battery(self, mv):
        return self.ctrl("battery %d" % mv)

    def tamper(self, on):
        return self.ctrl("tamper %d" % (1 if on else 0))

    def get(self):
        return self.ctrl("get")

    def stats(self):
        return self.ctrl("stats")


class SimDut(Dut):
    def __init__(self, config, workdir, heap=micropython.DEFAULT_HEAP, name="dut"):
        super().__init__()
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.heap = heap
        self.name = name
        self.config = dict(config)
        self.config["state_dir"] = str(self.state_dir)
        sim = dict(self.config.get("sim") or {})
        sim.setdefault("control_port", _free_port())
        self.config["sim"] = sim
        self.port = sim["control_port"]
        self.config_path = self.workdir / "config.json"
        self.config_path.write_text(json.dumps(self.config, indent=1))
        self.proc = None
        self._sock = None
        self._rfile = None
        self.boots = 0
        self.logfile = self.workdir / ("%s.log" % name)

    def reconfigure(self, **sim):
        """Change the sim section (e.g. net=False: boot with the network down) for
        the next start()."""
        self.config["sim"].update(sim)
        self.config_path.write_text(json.dumps(self.config, indent=1))

    # -- process --------------------------------------------------------------
    def start(self, wait_ready=True, timeout=20):
        build_mpy()
        env = dict(os.environ)
        # The app is imported from the cwd, as on the device (sys.path '' first there):
        # module paths stay short ("core/app.mpy").
        env["MICROPYPATH"] = ".frozen:"
        cmd = [micropython.micropython_binary(), "-X", "heapsize=" + self.heap, "-m", "main",
               str(self.config_path)]
        self._eof = False
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=str(BUILD), env=env)
        self.boots += 1
        self._feed("=== boot %d (pid %d, heap %s) ===" % (self.boots, self.proc.pid, self.heap))
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if wait_ready:
            self.expect(r"READY", timeout)
        return self

    def _pump(self, proc):
        with open(self.logfile, "a") as log:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(line + "\n")
                self._feed(line)
        proc.wait()
        self._feed("=== exit %s ===" % proc.returncode)
        self._eof = True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _disconnect(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = self._rfile = None

    def power_loss(self):
        """kill -9: the process dies wherever it is, as a board losing power."""
        self._disconnect()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        time.sleep(0.05)

    def stop(self, timeout=10):
        if self.alive():
            try:
                self.ctrl("quit")
                self.proc.wait(timeout)
            except Exception:
                pass
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        self._disconnect()
        return None if self.proc is None else self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- control socket --------------------------------------------------------------
    def ctrl(self, command, timeout=10):
        """Send one control command; returns the reply after "ok" (JSON decoded when
        there is any). Raises on "err"."""
        if self._sock is None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                    break
                except OSError:
                    if time.monotonic() > deadline or not self.alive():
                        raise
                    time.sleep(0.05)
            self._rfile = self._sock.makefile("rb")
        self._sock.sendall((command + "\n").encode())
        reply = self._rfile.readline().decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError("%s -> %s" % (command, reply or "connection closed"))
        rest = reply[2:].strip()
        return json.loads(rest) if rest else None

    def ctrl_nowait(self, command):
        """Send a control command without waiting for its reply (to pull the plug
        while the firmware is busy with it)."""
        if self._sock is None:
            self.ctrl("get")
        self._sock.sendall((command + "\n").encode())

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_queue_file(path, capacity=None):
    """Independent reader of the firmware's queue file (core/equeue.py layout):
    returns (records, corrupt) where records are dicts of every valid slot."""
    import struct
    from protocols.crc import crc16_arc
    data = Path(path).read_bytes()
    recs, corrupt = [], 0
    for i in range(len(data) // 24):
        s = data[i * 24:(i + 1) * 24]
        if s[0] == 0 and s[1] == 0:
            continue
        if s[0] != 0xA5 or s[1] != 16 or crc16_arc(s[:18]) != s[18] | (s[19] << 8):
            corrupt += 1
            continue
        seq, when, q, part, code, zone, prio, flags = struct.unpack_from("<IIBBHHBB", s, 2)
        recs.append({"slot": i, "seq": seq, "time": when, "q": q, "partition": part, "code": code,
                     "zone": zone, "prio": prio, "pending": s[20] == 0xFF})
    return recs, corrupt
