"""Uplink from the vehicle to the center, as a JT/T 808 terminal.

    record(position) -> PositionStore (fsync'd) -> sender -> 0x0200 / 0x0704 -> center
                                                 <- 0x8001 result 0 -> delete from the store

The sender always sends the *oldest* unconfirmed reports first, so the center
gets every position in the order they were taken. With one report waiting it
is a plain 0x0200; with a backlog (the link was down) it is 0x0704 back-fill
batches of up to `batch_size` positions, in subpackages when a batch is longer
than one frame. A report leaves the store only when the center has answered it
with result 0, which the center does only after committing it.

Link: connect, authenticate with the stored code (register first when there is
none, or when the center refuses the code), heartbeat after `heartbeat` seconds
without traffic, reconnect with backoff on any failure. Platform commands are
answered: 0x8201 position query (0x0201), 0x8202 temporary tracking, 0x8203
alarm acknowledgement, 0x8300 text, each confirmed with 0x0001.
"""
import asyncio
import logging

from protocols import jt808

log = logging.getLogger("jifang.vehicles.uplink")

AUTH_CODE_KEY = "auth_code"
RESULT_FAIL, RESULT_BAD, RESULT_UNSUPPORTED = 1, 2, 3


class LinkError(Exception):
    pass


class JT808Uplink:
    def __init__(self, store, *, center, phone, plate, terminal_id, version=2013, heartbeat=30.0,
                 ack_timeout=10.0, batch_size=50, retry_initial=1.0, retry_max=30.0,
                 maker="JIFNG", model="JIFANG-EDGE", province=0, city=0, plate_color=2, imei="", software="jifang",
                 on_alarm_ack=None, on_tracking=None, on_text=None, current_position=None):
        self.store = store
        self.center = center
        self.phone, self.plate, self.terminal_id, self.version = str(phone), plate, terminal_id, version
        self.heartbeat = heartbeat
        self.ack_timeout = ack_timeout
        self.batch_size = batch_size
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.register_body = jt808.Register(province, city, maker, model, terminal_id, plate_color, plate)
        self.imei, self.software = imei, software
        self.on_alarm_ack = on_alarm_ack or (lambda bits: None)
        self.on_tracking = on_tracking or (lambda interval, validity: None)
        self.on_text = on_text or (lambda text: None)
        self.current_position = current_position
        self.connected = asyncio.Event()
        self.sent_batches = 0
        self._wakeup = asyncio.Event()
        self._flow = 0
        self._waiting = {}
        self._task = None
        self._writer = None

    # -- what the edge calls -----------------------------------------------------------

    async def record(self, position):
        """Keep one report durably and queue it for the center."""
        await self.store.append(position.encode(self.version))
        self._wakeup.set()

    def start(self):
        self._task = asyncio.create_task(self._run(), name="jt808-uplink")

    async def stop(self):
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- the link ------------------------------------------------------------------------

    def _next_flow(self):
        self._flow = (self._flow + 1) & 0xFFFF
        return self._flow

    def _message(self, msg_id, body=None):
        return jt808.Message(msg_id, self.phone, body, self._next_flow(), self.version)

    async def _send(self, msg):
        self._writer.write(jt808.encode_frame(msg))
        await self._writer.drain()

    async def _call(self, msg):
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg.flow] = future
        try:
            await self._send(msg)
            return await asyncio.wait_for(future, self.ack_timeout)
        except asyncio.TimeoutError:
            raise LinkError("no answer to 0x%04X within %ss" % (msg.msg_id, self.ack_timeout)) from None
        finally:
            self._waiting.pop(msg.flow, None)

    async def _run(self):
        delay = self.retry_initial
        while True:
            reader_task = None
            try:
                reader, self._writer = await asyncio.open_connection(*self.center)
                reader_task = asyncio.create_task(self._read(reader))
                await self._login()
                self.connected.set()
                delay = self.retry_initial
                log.info("uplink connected", extra={"center": "%s:%d" % self.center})
                await self._send_forever(reader_task)
            except (OSError, LinkError, jt808.JT808Error) as exc:
                log.warning("uplink down", extra={"center": "%s:%d" % self.center, "error": str(exc) or repr(exc)})
            finally:
                self.connected.clear()
                if reader_task is not None:
                    reader_task.cancel()
                    await asyncio.gather(reader_task, return_exceptions=True)
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                for future in self._waiting.values():
                    if not future.done():
                        future.set_exception(LinkError("connection closed"))
            await asyncio.sleep(delay)
            delay = min(self.retry_max, delay * 2)

    async def _login(self):
        code = await self.store.get(AUTH_CODE_KEY)
        if code is None:
            answer = await self._call(self._message(0x0100, self.register_body))
            if answer.result != 0:
                raise LinkError("registration refused: %s" % jt808.REGISTER_RESULTS.get(answer.result, answer.result))
            code = answer.auth_code
            await self.store.put(AUTH_CODE_KEY, code)
        body = jt808.Authenticate(code, self.imei, self.software) if self.version == 2019 else jt808.Authenticate(code)
        answer = await self._call(self._message(0x0102, body))
        if answer.result != 0:
            # The center no longer knows this code (new secret, terminal swapped): register again.
            await self.store.put(AUTH_CODE_KEY, None)
            raise LinkError("authentication refused")

    async def _send_forever(self, reader_task):
        while True:
            if reader_task.done():
                raise LinkError("center closed the connection")
            rows = await self.store.pending(self.batch_size)
            if not rows:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.heartbeat)
                except asyncio.TimeoutError:
                    await self._expect_ok(await self._call(self._message(0x0002)), "heartbeat")
                continue
            await self._send_reports(rows)
            await self.store.delete_through(rows[-1][0])

    async def _send_reports(self, rows):
        if len(rows) == 1:
            answer = await self._call(self._message(0x0200, jt808.Raw(rows[0][1])))
            return await self._expect_ok(answer, "position")
        positions = [jt808.Position.decode(body, self.version) for _, body in rows]
        whole = self._message(0x0704, jt808.Batch(1, positions))
        parts = jt808.fragment(whole) if len(jt808.encode_body(0x0704, whole.body, self.version)) > jt808.MAX_BODY \
            else [whole]
        self._flow = parts[-1].flow
        for part in parts:
            answer = await self._call(part)
        self.sent_batches += 1
        return await self._expect_ok(answer, "back-fill batch")

    async def _expect_ok(self, answer, what):
        if answer.result == RESULT_BAD:
            # The center will never take it; keeping it would block every later report.
            log.error("center refused a %s as malformed; dropped" % what)
            return
        if answer.result != 0:
            raise LinkError("center answered %s with result %d" % (what, answer.result))

    async def _read(self, reader):
        splitter = jt808.FrameSplitter()
        while True:
            data = await reader.read(4096)
            if not data:
                return
            for frame in splitter.feed(data):
                try:
                    msg = jt808.decode_frame(frame)
                except jt808.JT808Error as exc:
                    log.warning("frame from the center refused", extra={"error": str(exc)})
                    continue
                await self._dispatch(msg)

    async def _dispatch(self, msg):
        if msg.msg_id in (0x8001, 0x8100):
            future = self._waiting.get(msg.body.reply_flow)
            if future is not None and not future.done():
                future.set_result(msg.body)
            return
        result = 0
        if msg.msg_id == 0x8201 and self.current_position is not None:
            await self._send(self._message(0x0201, jt808.LocationReply(msg.flow, self.current_position())))
            return
        if msg.msg_id == 0x8203:
            self.on_alarm_ack(msg.body.alarm)
        elif msg.msg_id == 0x8202:
            self.on_tracking(msg.body.interval, msg.body.validity)
        elif msg.msg_id == 0x8300:
            self.on_text(msg.body.text)
        else:
            result = RESULT_UNSUPPORTED
        await self._send(jt808.terminal_response(msg, result, self._next_flow()))
