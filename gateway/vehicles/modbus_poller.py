"""Modbus RTU and TCP poller: reads a device's blocks through its register map.

Every `interval` seconds the poller reads each register table the map uses (one
request per table, as `DeviceMap.blocks` lays them out), decodes them with
`protocols.modbus_maps.decode_registers` and hands {point: value} to
`on_values`. A device that does not answer (timeout, exception response, a
closed link) for `silent_after` consecutive polls calls `on_silent(True)`;
its first good answer after that calls `on_silent(False)`: a sensor that stops
answering is a trouble, not silence.
"""
import asyncio
import logging

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from protocols.modbus_maps import ModbusMapError, decode_registers

log = logging.getLogger("jifang.vehicles.modbus")

_READERS = {"coil": "read_coils", "discrete": "read_discrete_inputs",
            "holding": "read_holding_registers", "input": "read_input_registers"}


def make_client(*, serial=None, baudrate=9600, tcp=None, timeout=1.0):
    """A pymodbus client for an RTU line (serial) or a Modbus TCP device."""
    if serial is not None:
        # retries=0: the poller itself decides when silence is a trouble.
        return AsyncModbusSerialClient(serial, baudrate=baudrate, timeout=timeout, retries=0)
    host, port = tcp
    return AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0)


class ModbusPoller:
    def __init__(self, name, device_map, client, *, unit=1, interval=1.0, silent_after=3,
                 on_values, on_silent):
        self.name = name
        self.map = device_map
        self.client = client
        self.unit = unit
        self.interval = interval
        self.silent_after = silent_after
        self.on_values = on_values
        self.on_silent = on_silent
        self.failures = 0
        self.silent = False
        self.values = None
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._run(), name="modbus-" + self.name)

    async def stop(self):
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.client.close()

    async def poll_once(self):
        """Read and decode every block once; None when the device did not answer."""
        try:
            if not self.client.connected:
                await self.client.connect()
                if not self.client.connected:
                    return None
            blocks = {}
            for table, block in self.map.blocks.items():
                reply = await getattr(self.client, _READERS[table])(block.start, count=block.count, device_id=self.unit)
                if reply.isError():
                    log.warning("Modbus exception response", extra={"device": self.name, "table": table,
                                                                   "reply": str(reply)})
                    return None
                blocks[table] = reply.bits if table in ("coil", "discrete") else reply.registers
            return decode_registers(self.map, blocks)
        except (ModbusException, OSError, asyncio.TimeoutError) as exc:
            log.warning("Modbus device did not answer", extra={"device": self.name, "error": repr(exc)})
            return None
        except ModbusMapError as exc:
            log.error("Modbus reply does not fit the map", extra={"device": self.name, "error": str(exc)})
            return None

    async def poll(self):
        values = await self.poll_once()
        if values is None:
            self.failures += 1
            if not self.silent and self.failures >= self.silent_after:
                self.silent = True
                self.on_silent(True)
            return
        self.failures = 0
        if self.silent:
            self.silent = False
            self.on_silent(False)
        self.values = values
        self.on_values(values)

    async def _run(self):
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)
