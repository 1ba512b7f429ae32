"""JT/T 808 terminal simulator (2013 and 2019), on the shared codec.

`Terminal` is one vehicle terminal: connect, register, authenticate, heartbeat,
report positions (0x0200), back-fill batches (0x0704), send subpackaged
messages, and answer the platform's commands the way a real terminal does
(0x8203 clears the acknowledged alarm bits, 0x8201 answers with 0x0201,
0x8202 and 0x8300 are confirmed with 0x0001). Tests and bench/fleet.py use it.

    python -m gateway.vehiclesim --center 127.0.0.1:7808 --count 100 --rate 1 --seconds 60

runs a fleet (phones 13900000000 + i, plates "SIM" + i) that registers,
authenticates and reports at `rate` Hz; the center must list those vehicles.
"""
import argparse
import asyncio
import math
import random
import signal
import time
from datetime import datetime

from protocols import jt808

EMERGENCY = 1 << 0


class TerminalError(Exception):
    pass


class Terminal:
    def __init__(self, phone, plate, *, version=2013, terminal_id="SIM0001", maker="JIFNG", model="SIM-808",
                 province=44, city=100, plate_color=2, imei="860000000000001", software="1.0", auth_code=None):
        self.phone = str(phone)
        self.plate = plate
        self.version = version
        self.terminal_id = terminal_id
        self.maker, self.model = maker, model
        self.province, self.city, self.plate_color = province, city, plate_color
        self.imei, self.software = imei, software
        self.auth_code = auth_code        # from the center's 0x8100, kept across logins
        self.alarm = 0                    # level-triggered bits, cleared by 0x8203 like a real terminal
        self.received = []                # platform commands, in arrival order
        self.lat, self.lon = 22.543, 114.057
        self._flow = 0
        self._waiting = {}
        self._resend = None               # future of a 0x8003's packet list, while sending subpackages
        self._reader_task = None
        self.reader = self.writer = None

    # -- link -----------------------------------------------------------------------

    async def connect(self, host, port, local_addr=None, sock=None):
        """local_addr: (host, port) to connect from (a test playing several hosts on
        loopback); sock: a socket already connected (one with its own buffer sizes)."""
        if sock is not None:
            self.reader, self.writer = await asyncio.open_connection(sock=sock)
        else:
            self.reader, self.writer = await asyncio.open_connection(host, port, local_addr=local_addr)
        self._splitter = jt808.FrameSplitter()
        self._reader_task = asyncio.create_task(self._read())
        return self

    async def close(self):
        if self.writer is not None:
            self.writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        self.writer = None

    async def go_silent(self):
        """Stop reading and answering, the socket left open: the half-dead link a
        terminal leaves behind when its network drops (what the center sees)."""
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)

    @property
    def connected(self):
        return self._reader_task is not None and not self._reader_task.done()

    def next_flow(self):
        self._flow = (self._flow + 1) & 0xFFFF
        return self._flow

    def message(self, msg_id, body=None, flow=None, packet=None):
        return jt808.Message(msg_id, self.phone, body, self.next_flow() if flow is None else flow, self.version, packet)

    async def send(self, msg):
        self.writer.write(jt808.encode_frame(msg))
        await self.writer.drain()

    async def call(self, msg, timeout=10.0):
        """Send and wait for the platform's answer to it (0x8001 or 0x8100)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg.flow] = future
        try:
            if not self.connected:       # the reader is gone: no answer can come
                raise TerminalError("connection closed")
            await self.send(msg)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the answer does, and a cancelled terminal would go on reporting.
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop(msg.flow, None)

    async def _read(self):
        try:
            while True:
                data = await self.reader.read(4096)
                if not data:
                    break
                for frame in self._splitter.feed(data):
                    await self._dispatch(jt808.decode_frame(frame))
        except (ConnectionError, jt808.JT808Error):
            pass
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(TerminalError("connection closed"))

    async def _dispatch(self, msg):
        if msg.msg_id in (0x8001, 0x8100):
            future = self._waiting.get(msg.body.reply_flow)
            if future is not None and not future.done():
                future.set_result(msg.body)
            return
        self.received.append(msg)
        if msg.msg_id == 0x8003:
            data = msg.body.data
            width = 2 if self.version == 2019 else 1
            count = int.from_bytes(data[2:2 + width], "big")
            wanted = [int.from_bytes(data[2 + width + 2 * i:4 + width + 2 * i], "big") for i in range(count)]
            if self._resend is not None and not self._resend.done():
                self._resend.set_result(wanted)
        elif msg.msg_id == 0x8203:
            self.alarm &= ~msg.body.alarm
            await self.send(jt808.terminal_response(msg, 0, self.next_flow()))
        elif msg.msg_id == 0x8201:
            body = jt808.LocationReply(msg.flow, self.position())
            await self.send(self.message(0x0201, body))
        else:
            await self.send(jt808.terminal_response(msg, 0, self.next_flow()))

    # -- the terminal's messages -------------------------------------------------------

    async def register(self):
        """(result, auth code)."""
        body = jt808.Register(self.province, self.city, self.maker, self.model, self.terminal_id,
                              self.plate_color, self.plate)
        answer = await self.call(self.message(0x0100, body))
        return answer.result, answer.auth_code

    async def authenticate(self, code):
        body = jt808.Authenticate(code, self.imei, self.software) if self.version == 2019 else jt808.Authenticate(code)
        return (await self.call(self.message(0x0102, body))).result

    async def login(self, host, port, local_addr=None):
        """Connect, register unless it holds a code, authenticate: what a terminal
        does at power-up. The code is kept (`auth_code`) for the next login, as a real
        terminal keeps it: the center answers one registration per terminal."""
        await self.connect(host, port, local_addr)
        if self.auth_code is None:
            result, code = await self.register()
            if result != 0:
                raise TerminalError("registration refused: %s" % jt808.REGISTER_RESULTS.get(result, result))
            self.auth_code = code
        if await self.authenticate(self.auth_code) != 0:
            raise TerminalError("authentication refused")
        return self.auth_code

    async def heartbeat(self):
        return (await self.call(self.message(0x0002))).result

    def position(self, when=None, speed=0.0, **extra):
        return jt808.position(self.lat, self.lon, when, speed=speed, alarm=self.alarm, version=self.version, **extra)

    async def report(self, position=None, timeout=10.0):
        """One 0x0200; returns the platform's result (0 = stored)."""
        return (await self.call(self.message(0x0200, position or self.position()), timeout)).result

    async def batch(self, positions, kind=1, timeout=30.0):
        return (await self.call(self.message(0x0704, jt808.Batch(kind, positions)), timeout)).result

    async def send_fragmented(self, msg_id, body, size, timeout=10.0, lose=()):
        """One message as subpackages of `size` bytes; the platform's result for it.
        `lose`: packet numbers (from 1) the network loses on the first try; the
        platform's 0x8003 asks for them and they are sent again, as a terminal does."""
        whole = self.message(msg_id, body)
        parts = jt808.fragment(whole, size)
        self._flow = parts[-1].flow
        for part in parts[:-1]:
            if part.packet[1] not in lose:
                await self.call(part, timeout)
        self._resend = asyncio.get_running_loop().create_future()
        last = asyncio.ensure_future(self.call(parts[-1], timeout))
        done, _ = await asyncio.wait([last, self._resend], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if last in done:
            return last.result().result
        last.cancel()
        if self._resend not in done:
            raise asyncio.TimeoutError()
        answer = None
        for index in self._resend.result():
            answer = await self.call(parts[index - 1], timeout)
        return answer.result

    async def press_panic(self, when=None):
        self.alarm |= EMERGENCY
        return await self.report(self.position(when))


# -- a fleet, for the bench and demos ------------------------------------------------------

def fleet_phone(i):
    return str(13900000000 + i)


def fleet_plate(i):
    return "SIM%05d" % i


async def run_terminal(i, host, port, rate, until, stats, version=2013, stop=None):
    t = Terminal(fleet_phone(i), fleet_plate(i), version=version, terminal_id="S%06d" % i)
    rng = random.Random(i)
    t.lat, t.lon = 22.5 + rng.random() * 0.3, 113.9 + rng.random() * 0.4
    try:
        await t.login(host, port)
        stats["connected"] += 1
        heading = rng.random() * 2 * math.pi
        # Spread the first report over one period so the fleet does not report in lockstep.
        await asyncio.sleep(rng.random() / rate)
        next_at = time.monotonic()
        while time.monotonic() < until and not (stop is not None and stop.is_set()):
            t.lat += 0.00005 * math.cos(heading)
            t.lon += 0.00005 * math.sin(heading)
            await t.report(t.position(datetime.now(jt808.GMT8), speed=40 + rng.random() * 20))
            stats["reports"] += 1
            next_at += 1 / rate
            if stop is not None:
                try:
                    async with asyncio.timeout(max(0.0, next_at - time.monotonic())):
                        await stop.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    except (OSError, TerminalError, jt808.JT808Error, asyncio.TimeoutError) as exc:
        stats["errors"] += 1
        stats.setdefault("last_error", repr(exc))
    finally:
        await t.close()


async def run_fleet(host, port, count, rate, seconds, first=0, version=2013, ramp_per_s=2000):
    """Run `count` terminals for `seconds` (or until SIGTERM: they stop cleanly)."""
    stats = {"connected": 0, "reports": 0, "errors": 0}
    until = time.monotonic() + seconds
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = []
    for i in range(first, first + count):
        tasks.append(asyncio.create_task(run_terminal(i, host, port, rate, until, stats, version, stop)))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(100 / ramp_per_s)   # a ramp, as a real fleet reconnecting after an outage
    await asyncio.gather(*tasks)
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gateway.vehiclesim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--center", required=True, help="HOST:PORT of the JT/T 808 server")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="index of the first vehicle")
    parser.add_argument("--rate", type=float, default=1.0, help="reports per second per terminal")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--version", type=int, choices=[2013, 2019], default=2013)
    args = parser.parse_args(argv)
    host, _, port = args.center.rpartition(":")
    stats = asyncio.run(run_fleet(host, int(port), args.count, args.rate, args.seconds, args.first, args.version))
    print(stats)


if __name__ == "__main__":
    main()
