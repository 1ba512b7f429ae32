"""Simulated vehicle devices for the edge tests: a pseudo-terminal pair (a null
modem cable between two serial ports), an NMEA talker, and Modbus sensors served
by pymodbus's own server, their registers laid out by the map under test."""
import asyncio
import contextlib
import os
import tty

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols import nmea
from protocols.modbus_maps import BIT_TABLES, encode_values

_READ_CODES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


class NullModem:
    """Two pseudo-terminals whose masters are cross-connected: what one side's
    program writes to `a`, the other side's reads from `b`, and back. `cut`
    drops every byte, like a pulled cable."""

    def __init__(self):
        self.masters, self._slaves, self.paths = [], [], []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self.masters.append(master)
            self._slaves.append(slave)
            self.paths.append(os.ttyname(slave))
        self.a, self.b = self.paths
        self.cut = False

    def _pump(self, src, dst):
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if not self.cut:
            os.write(dst, data)

    def start(self):
        loop = asyncio.get_running_loop()
        loop.add_reader(self.masters[0], self._pump, self.masters[0], self.masters[1])
        loop.add_reader(self.masters[1], self._pump, self.masters[1], self.masters[0])
        return self

    def close(self):
        loop = asyncio.get_running_loop()
        for fd in self.masters:
            loop.remove_reader(fd)
        for fd in self.masters + self._slaves:
            os.close(fd)


class NmeaTalker:
    """A GNSS receiver on the master side of one pseudo-terminal."""

    def __init__(self):
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)

    def send(self, *bodies):
        os.write(self.master, b"".join((nmea.with_checksum(b) + "\r\n").encode() for b in bodies))

    def fix(self, lat, lon, knots=0.0, when="101500", date="231126"):
        ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
        lat_dm = "%02d%07.4f" % (int(abs(lat)), (abs(lat) % 1) * 60)
        lon_dm = "%03d%07.4f" % (int(abs(lon)), (abs(lon) % 1) * 60)
        self.send("GNGGA,%s.00,%s,%s,%s,%s,1,09,0.9,12.5,M,-3.0,M,," % (when, lat_dm, ns, lon_dm, ew),
                  "GNRMC,%s.00,A,%s,%s,%s,%s,%.1f,90.0,%s,,,A" % (when, lat_dm, ns, lon_dm, ew, knots, date))

    def no_fix(self, when="101500", date="231126"):
        self.send("GNRMC,%s.00,V,,,,,,,%s,,,N" % (when, date))

    def close(self):
        os.close(self.master)
        os.close(self._slave)


class Sensors:
    """One Modbus device (unit 1) whose points hold `values` (engineering units)."""

    def __init__(self, device_map, values):
        self.map = device_map
        self.values = dict(values)
        self.server = None
        blocks = encode_values(device_map, self.values)
        layout = device_map.blocks
        tables = []
        for table in ("coil", "discrete", "holding", "input"):   # SimDevice's order of distinct blocks
            kind = DataType.BITS if table in BIT_TABLES else DataType.REGISTERS
            if table in blocks:
                values = [bool(v) for v in blocks[table]] if table in BIT_TABLES else list(blocks[table])
                tables.append([SimData(layout[table].start, values=values, datatype=kind)])
            else:
                tables.append([SimData(0, 1, False if table in BIT_TABLES else 0, kind)])
        self.device = SimDevice(1, simdata=tuple(tables))

    async def set(self, **changes):
        """Change readings while the server runs (as the sensor would)."""
        self.values.update(changes)
        blocks = encode_values(self.map, self.values)
        for table, values in blocks.items():
            if table in BIT_TABLES:
                values = [bool(v) for v in values]
            await self.server.context.async_setValues(1, _READ_CODES[table], self.map.blocks[table].start, values)

    @contextlib.asynccontextmanager
    async def _serving(self, server):
        self.server = server
        task = asyncio.create_task(server.serve_forever())
        try:
            yield server
        finally:
            await server.shutdown()
            await asyncio.gather(task, return_exceptions=True)

    def serving_rtu(self, port_path):
        return self._serving(ModbusSerialServer(self.device, port=port_path, baudrate=115200, timeout=0.2))

    def serving_tcp(self, port):
        return self._serving(ModbusTcpServer(self.device, address=("127.0.0.1", port)))
