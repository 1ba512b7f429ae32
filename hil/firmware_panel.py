"""A simulated compound's panel running the real firmware (sim target), with the
interface of gateway.panelsim.Panel, so the demo can run on the firmware:

    from hil.firmware_panel import FirmwarePanel as Panel    # in gateway/demo.py

Each panel is one MicroPython process (heap 128 KB) with its own flash directory;
report() queues an event in the firmware (control command `event`), which then goes
through the firmware's persistent queue and DC-09 reporter like any zone alarm;
`silent = True` pulls the panel's network (a cut line), False restores it.
"""
import asyncio
import tempfile
from pathlib import Path

from hil.sim import SimDut


class FirmwarePanel:
    def __init__(self, account, key, receiver, transport="tcp", link_test_interval=30.0,
                 ack_timeout=3.0, retry_max=5.0, workdir=None, heap="128K"):
        self.account = account
        host, port = receiver
        rc = {"receivers": [{"host": host, "port": port}], "transport": transport,
              "ack_timeout": ack_timeout, "retry_max": retry_max, "supervision": link_test_interval}
        if key:
            rc["key_hex"] = key.hex()
        cfg = {"role": "panel", "device_id": "panel-" + account, "account": account,
               "test_interval": 0, "reporter": rc}
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jf-panel-%s-" % account)
            workdir = self._tmp.name
        self.dut = SimDut(cfg, Path(workdir), heap=heap, name=account)
        self._silent = False

    def start(self):
        self.dut.start(wait_ready=False)

    def report(self, code, qualifier=1, zone=0, partition=1, position=None):
        self.dut.ctrl("event %d %d %d %d" % (qualifier, code, partition, zone))

    @property
    def acked(self):
        """Events the receiver ACKed (from the firmware's DELIVERED log lines)."""
        return [l for l in self.dut.lines() if " DELIVERED " in l]

    @property
    def silent(self):
        return self._silent

    @silent.setter
    def silent(self, value):
        self._silent = bool(value)
        self.dut.net(not value)

    async def stop(self):
        await asyncio.to_thread(self.dut.stop)
        if self._tmp is not None:
            self._tmp.cleanup()
