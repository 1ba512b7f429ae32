"""A simulated compound's panel running the real firmware (sim target), with the
interface of gateway.panelsim.Panel (`start()`, `stop()`, `silent`, `acked`,
`buffer`), so `jifang demo` and the tests can put firmware in place of the simulator.

Each panel is one MicroPython process (heap 128 KB) with its own flash directory.
`config` completes the firmware config (zones, partitions, users, delays: see
hil/compound.py for a real resident's panel); `silent = True` pulls the panel's
network (a cut line), False restores it. Inputs are driven through the sim's
control socket: `ctrl()` (thread-safe) or `await act()` (off the event loop).

report() queues an event straight into the firmware's queue (control command
`event`), bypassing zones, keypads and the state machine: for tests of the
reporter only. The demo's compound (hil/compound.py) never calls it: there every
report comes from the panel's own logic.
"""
import asyncio
import logging
import signal
import tempfile
import threading
from pathlib import Path

from hil.sim import SimDut

log = logging.getLogger("jifang.firmware_panel")


class FirmwarePanel:
    def __init__(self, account, key, receiver, transport="tcp", link_test_interval=30.0,
                 ack_timeout=3.0, retry_max=5.0, workdir=None, heap="128K", config=None):
        self.account = account
        host, port = receiver
        rc = {"receivers": [{"host": host, "port": port}], "transport": transport,
              "ack_timeout": ack_timeout, "retry_max": retry_max, "supervision": link_test_interval}
        if key:
            rc["key_hex"] = key.hex()
        cfg = {"role": "panel", "device_id": "panel-" + account, "account": account,
               "test_interval": 0, "reporter": rc}
        cfg.update(config or {})
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jf-panel-%s-" % account)
            workdir = self._tmp.name
        self.dut = SimDut(cfg, Path(workdir), heap=heap, name=account)
        self.config = self.dut.config
        self._silent = False
        self._lock = threading.Lock()       # one control command at a time
        self.stopping = False

    def start(self):
        """Boot the firmware (returns at once; wait_ready() waits for READY).

        A Ctrl-C in the terminal goes to the whole foreground process group: the
        panel is started with SIGINT blocked (a child inherits the signal mask) so it
        does not die with the demo's Ctrl-C but is stopped by it, cleanly (`quit`)."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.dut.start(wait_ready=False)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def wait_ready(self, timeout=60):
        self.dut.expect(r" READY ", timeout)

    def alive(self):
        return self.dut.alive()

    def ctrl(self, command):
        with self._lock:
            return self.dut.ctrl(command)

    async def act(self, command):
        """A control command sent from a worker thread (the socket call blocks)."""
        return await asyncio.to_thread(self.ctrl, command)

    def report(self, code, qualifier=1, zone=0, partition=1, position=None):
        self.ctrl("event %d %d %d %d" % (qualifier, code, partition, zone))

    def _count(self, tag):
        tag = " %s " % tag
        return sum(1 for line in self.dut.lines() if tag in line)

    @property
    def acked(self):
        """Events the receiver ACKed (from the firmware's DELIVERED log lines)."""
        return [line for line in self.dut.lines() if " DELIVERED " in line]

    @property
    def buffer(self):
        """Events queued by the firmware and not yet ACKed (EVENT minus DELIVERED lines)."""
        return range(max(0, self._count("EVENT") - self._count("DELIVERED")))

    @property
    def silent(self):
        return self._silent

    @silent.setter
    def silent(self, value):
        self._silent = bool(value)
        try:
            self.ctrl("net %s" % ("down" if value else "up"))
        except (OSError, RuntimeError) as exc:
            log.warning("panel %s: net %s failed: %r", self.account, "down" if value else "up", exc)

    def _stop(self):
        self.stopping = True
        with self._lock:
            self.dut.stop()

    async def stop(self):
        await asyncio.to_thread(self._stop)
        if self._tmp is not None:
            self._tmp.cleanup()
