"""The JT/T 808 server at the center: one TCP port for 2013 and 2019 terminals.

Per connection: bytes -> FrameSplitter -> decode_frame -> Reassembler (subpackages)
-> one handler per message id. Frames are handled in order, one at a time, so a
terminal's reports are stored in the order it sent them; thousands of
connections run side by side and the pipeline's group commit batches them.

Delivery: a report is answered (0x8001) only after its events are committed
(`submit` returns), so a terminal whose report was lost in a crash sends it
again. A report that cannot be committed is not answered at all, for the same
reason. An event the pipeline refuses as invalid is answered "bad message" (2),
since repeating it would not help.

Registration (0x0100) and authentication (0x0102) go against the registry; only
an authenticated session may report, and a second authenticated connection of
the same vehicle replaces the first (the terminal reconnected; the old socket is
half-dead).

Before authentication a connection costs the center almost nothing, whoever
opens it: it may register, authenticate and send heartbeats, nothing else (no
subpackage is held for it, not one byte); anything else is answered "failure"
(0x8001 result 1) and counted, and the connection is closed after
`unauthenticated_max_refused` such frames or `login_timeout` seconds without
authenticating. After authentication, subpackage reassembly is bounded per
session (messages, packets, bytes, age) and across sessions (bytes): a packet
over a bound is refused (result 1) and counted, and what a session held is given
back when it goes (see SessionLimits).

The listener is gateway/netlimits.py's, with its own limits (net_defaults(),
[jt808] max_connections and the other keys [receiver] has): total and
per-address connection limits with a reserve for addresses that authenticated
before, a deadline for the first complete frame and between frames, a bound on
answers a terminal leaves unread, a rate for undecodable frames, and accept()
backing off when the process is out of descriptors.

Sessions time out: a vehicle silent for `session_timeout` seconds is offline,
which raises a communication trouble (Contact ID 350) with its last position and
closes the socket; its next authentication raises the restore.
"""
import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass

from protocols import contactid
from protocols import jt808
from gateway import netlimits
from gateway.vehicles.codes import OFFLINE_CODE, SOURCE_JT808, EMERGENCY_BIT, make_event
from gateway.event import PRIORITY_LIFE_SAFETY
from gateway.pipeline import InvalidEvent
from gateway.vehicles.registry import RESULT_OK, describe_register_result, normalise_phone
from gateway.vehicles.reports import ReportLimits, report_events

log = logging.getLogger("jifang.vehicles.jt808")

RESULT_FAIL, RESULT_BAD, RESULT_UNSUPPORTED = 1, 2, 3
READ_SIZE = 4096
# What a connection may send before it has authenticated: register, authenticate,
# heartbeat (a terminal keeps its link up while it waits to retry a refused login).
PRE_AUTH = frozenset((0x0100, 0x0102, 0x0002))


@dataclass(frozen=True)
class SessionLimits:
    """Bounds on what one connection, and all of them together, may cost the
    center. Defaults: a terminal logs in within a second of connecting and sends
    0x0704 back-fills of tens of positions (a few KB, a few packets); the bounds are
    orders of magnitude above that and orders below what hurts the process.
    Config keys: [jt808] login_timeout_seconds, unauthenticated_max_refused,
    reassembly_max_messages, reassembly_max_packets, reassembly_session_bytes,
    reassembly_total_bytes, reassembly_timeout_seconds."""
    login_timeout: float = 30.0          # s connected without authenticating, then closed
    unauthenticated_max_refused: int = 3  # refused frames before authentication, then closed
    reassembly_max_messages: int = 4     # subpackaged messages being joined at once, per session
    reassembly_max_packets: int = 256    # packets in one message (the header's total)
    reassembly_session_bytes: int = 256 * 1024   # held per session (bodies + per-packet overhead)
    reassembly_total_bytes: int = 8 * 1024 * 1024  # held across all sessions
    reassembly_timeout: float = 60.0     # s without a packet, then the partial message is dropped
    liveness_probe: float = 5.0          # s the old session has to answer when its vehicle logs in again


def net_defaults():
    """The listener's limits (see netlimits.Limits for what each bounds). Not the
    DC-09 receiver's: a fleet center holds one connection per vehicle all day, so
    there are more of them (10,000 terminals, headroom for reconnect storms); a
    fleet on a private APN reaches the center from one NAT address, and after a
    center restart a thousand of them log in at once, so the per-address bound on
    unauthenticated connections is 1,000 (each is closed after 3 refused frames or
    login_timeout, and the reserve keeps 1,000 slots for addresses that
    authenticated before, whatever new addresses do); a terminal heartbeats every 30-60 s
    and session_timeout (180 s) raises "offline" well before the idle deadline
    closes a silent one. 12,000 connections plus the DC-09 receiver's 2,000 fit the
    usual 20,000-descriptor limit (check_file_limit warns when they do not)."""
    return netlimits.Limits(max_connections=12000, max_per_address=1000, reserved=1000,
                            first_frame_timeout=30.0, idle_timeout=600.0, read_limit=jt808.MAX_FRAME * 2)


def retransmission_request(last_packet, missing, flow):
    """0x8003 asking for the packets `missing` of the message whose last packet is
    `last_packet`: first packet's flow WORD, count (BYTE in 2013, WORD in 2019),
    packet numbers WORD each. Built here: the codec has no 0x8003 body yet.
    Packets of one message carry consecutive flow numbers (the standard's
    subpackage rule, and what jt808.fragment does)."""
    total = last_packet.packet[0]
    first_flow = (last_packet.flow - (total - 1)) & 0xFFFF
    count = len(missing).to_bytes(2 if last_packet.version == 2019 else 1, "big")
    body = first_flow.to_bytes(2, "big") + count + b"".join(i.to_bytes(2, "big") for i in missing)
    return jt808.Message(0x8003, last_packet.phone, jt808.Raw(body), flow, last_packet.version, None, 0,
                         last_packet.protocol_version)


def body_of_frame(frame, msg):
    """The body bytes of a single (not subpackaged) frame, without re-encoding it."""
    data = jt808.unescape(frame[1:-1])
    return data[(17 if msg.version == 2019 else 12):-1]


class VehicleState:
    """What the center knows of a vehicle across its connections."""

    def __init__(self, vehicle):
        self.vehicle = vehicle
        self.session = None
        self.online = False
        self.offline_raised = False
        self.last_heard = 0.0
        self.alarm_bits = 0          # the alarm word last committed, to see bits set and clear
        self.edge_alarms = frozenset()
        self.alarm_flow = 0          # flow of the report that last raised an alarm (for 0x8203)
        self.last_fix = None


class Session:
    """One terminal connection."""

    def __init__(self, server, conn):
        self.server = server
        self.conn = conn             # netlimits.Connection: reads under its deadline, writes under its bound
        self.writer = conn.writer
        self.peer = conn.peer
        self.state = None            # VehicleState once authenticated
        self.phone = None
        self.version = 2013
        self.protocol_version = None
        self._flow = 0
        self.opened = server.clock()
        self.refused = 0             # frames refused before authentication
        self.packets_refused = 0     # subpackages refused after it
        self.heard = None            # an asyncio.Event while a liveness probe waits for a frame
        limits = server.limits
        self.reassembler = jt808.Reassembler(timeout=limits.reassembly_timeout,
                                             max_pending=limits.reassembly_max_messages,
                                             max_packets=limits.reassembly_max_packets,
                                             max_bytes=limits.reassembly_session_bytes, clock=server.clock)
        self.waiting = {}            # our flow -> future of the terminal's 0x0001 result

    def next_flow(self):
        self._flow = (self._flow + 1) & 0xFFFF
        return self._flow

    async def send(self, msg):
        if not await self.conn.send(jt808.encode_frame(msg)):
            # cut for not reading its answers (max_output), or the link is gone
            raise ConnectionError("JT/T 808 connection %s closed (%s)" % (self.peer, self.conn.closed_reason or "lost"))

    async def request(self, msg_id, body, timeout):
        """Send a platform message and wait for the terminal's general response;
        returns its result code (0 ok), or None on timeout or a closed link."""
        flow = self.next_flow()
        msg = jt808.Message(msg_id, self.phone, body, flow, self.version, None, 0, self.protocol_version)
        future = asyncio.get_running_loop().create_future()
        self.waiting[flow] = future
        try:
            await self.send(msg)
            return await asyncio.wait_for(future, timeout)
        except (asyncio.TimeoutError, ConnectionError):
            return None
        finally:
            self.waiting.pop(flow, None)

    def close(self):
        self.writer.close()

    def abort(self):
        """Close now, dropping what is not sent: for a connection cut by a limit,
        which may not be reading (a plain close would wait to flush to it)."""
        self.writer.transport.abort()


class JT808Server:
    def __init__(self, registry, submit, *, rules=None, session_timeout=180.0, limits=SessionLimits(),
                 report_limits=ReportLimits(), net_limits=None, clock=time.monotonic):
        """`submit(event)`: the pipeline's submit (returns after commit).
        `rules`: a FleetRules run on every position, or None.
        `net_limits`: the listener's netlimits.Limits (default net_defaults())."""
        self.registry = registry
        self.submit = submit
        self.rules = rules
        self.session_timeout = session_timeout
        self.limits = limits
        self.net_limits = net_limits or net_defaults()
        self.report_limits = report_limits
        self.clock = clock
        self.reassembly_bytes = 0    # held by every session's reassembler together
        self.refused = Counter()     # reason -> frames refused (for /metrics)
        self.closed = Counter()      # reason -> connections closed by a limit
        self.vehicles = {v.account: VehicleState(v) for v in registry.by_account.values()}
        self.sessions = set()
        self.on_sessions_changed = None  # called (no argument) when a vehicle gains or loses its session
        self.frames_bad = 0
        self._listener = None
        self._watchdog = None
        self._tasks = set()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, host, port):
        self._listener = await netlimits.serve(self._serve, host, port, name="jt808", limits=self.net_limits)
        self._watchdog = asyncio.create_task(self._watch_sessions(), name="jt808-sessions")
        log.info("JT/T 808 server listening", extra={"listen": "%s:%d" % (host, self.port)})

    @property
    def port(self):
        return self._listener.address[1]

    def samples(self):
        """The listener's counters (connections open, refused and closed by a limit)."""
        return self._listener.samples() if self._listener is not None else []

    def degraded(self):
        """Limits that refused terminals lately (for /healthz)."""
        return self._listener.degraded() if self._listener is not None else []

    async def stop(self):
        if self._watchdog is not None:
            self._watchdog.cancel()
        sessions = list(self.sessions)
        for session in sessions:
            session.close()
        # A close first flushes what is queued; a terminal that does not read would
        # hold the stop forever: it gets 5 s, then its connection is aborted.
        loop = asyncio.get_running_loop()
        until = loop.time() + 5.0
        while loop.time() < until and any(s.writer.transport.get_write_buffer_size() for s in sessions):
            await asyncio.sleep(0.05)
        unflushed = [s for s in sessions if s.writer.transport.get_write_buffer_size()]
        for session in unflushed:
            session.abort()
        if unflushed:
            log.warning("JT/T 808 connections aborted at stop", extra={"sessions": len(unflushed)})
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        tasks = [t for t in (self._watchdog, *self._tasks) if t]
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- what the console / gateway calls ------------------------------------------

    def online(self, account):
        state = self.vehicles.get(account)
        return bool(state and state.session)

    async def acknowledge_alarm(self, account, alarm=1 << EMERGENCY_BIT, alarm_flow=None, timeout=10.0):
        """The operator's acknowledgement, sent to the terminal as 0x8203 (the
        terminal clears the emergency bit on it). alarm_flow: the flow of the
        report that raised it (default: the last one that raised an alarm; 0
        acknowledges every alarm of these types). True when the terminal
        confirmed it."""
        state = self.vehicles.get(account)
        if state is None or state.session is None:
            return False
        flow = state.alarm_flow if alarm_flow is None else alarm_flow
        result = await state.session.request(0x8203, jt808.AlarmAck(flow, alarm), timeout)
        log.info("alarm acknowledgement sent", extra={"account": account, "alarm": alarm, "result": result})
        return result == 0

    async def send_text(self, account, text, flags=0x0D, timeout=10.0):
        """A 0x8300 text to the driver (default flags: urgent, display, TTS)."""
        state = self.vehicles.get(account)
        if state is None or state.session is None:
            return False
        return await state.session.request(0x8300, jt808.Text(flags, text), timeout) == 0

    async def query_position(self, account):
        """0x8201: the terminal answers with 0x0201, stored like any report."""
        state = self.vehicles.get(account)
        if state is None or state.session is None:
            return False
        session = state.session
        await session.send(jt808.Message(0x8201, session.phone, None, session.next_flow(), session.version,
                                         None, 0, session.protocol_version))
        return True

    async def track(self, account, interval, validity, timeout=10.0):
        """0x8202 temporary tracking: report every `interval` s for `validity` s."""
        state = self.vehicles.get(account)
        if state is None or state.session is None:
            return False
        return await state.session.request(0x8202, jt808.TrackingControl(interval, validity), timeout) == 0

    # -- connections ------------------------------------------------------------------

    async def _serve(self, conn):
        session = Session(self, conn)
        self.sessions.add(session)
        splitter = jt808.FrameSplitter()
        try:
            while True:
                data = await conn.read(READ_SIZE)      # b"" at EOF, past a deadline, or once cut
                if not data:
                    break
                frames = splitter.feed(data)
                decoded = 0
                for frame in frames:
                    decoded += await self._frame(session, frame)
                    if session.writer.is_closing():
                        return
                # Only frames that decode are progress: a stream of well-delimited
                # garbage does not keep a connection open, and is read more slowly.
                conn.progress(decoded, pending=splitter.pending)
                await conn.throttle(len(frames) - decoded)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            # A bug must cost one connection (the terminal reconnects), not the server.
            log.exception("JT/T 808 session failed", extra={"peer": session.peer})
        finally:
            self.sessions.discard(session)
            self._release_reassembly(session)
            if session.state is not None and session.state.session is session:
                session.state.session = None
                self._sessions_changed()

    def _release_reassembly(self, session):
        self.reassembly_bytes -= session.reassembler.bytes
        session.reassembler.clear()

    async def _refuse_unauthenticated(self, session, msg, reason):
        """Answer "failure" to a frame a connection may not send before it has
        authenticated, and close the connection at the limit."""
        self.refused[reason] += 1
        session.refused += 1
        await self._respond(session, msg, RESULT_FAIL)
        if session.refused >= self.limits.unauthenticated_max_refused:
            self.closed["unauthenticated_refused"] += 1
            log.warning("unauthenticated connection closed", extra={
                "peer": session.peer, "refused": session.refused, "last_reason": reason,
                "limit": self.limits.unauthenticated_max_refused})
            session.abort()

    async def _frame(self, session, frame):
        """Handle one frame; True when it decoded (whatever the answer was)."""
        if session.heard is not None:
            session.heard.set()
        try:
            msg = jt808.decode_frame(frame)
        except jt808.JT808Error as exc:
            # No trustworthy header to answer; the terminal's own retry covers it.
            self.frames_bad += 1
            log.warning("JT/T 808 frame refused", extra={"peer": session.peer, "reason": exc.reason, "error": str(exc)})
            return False
        await self._handle(session, frame, msg)
        return True

    async def _handle(self, session, frame, msg):
        if session.state is None and (msg.packet is not None or msg.encryption or msg.msg_id not in PRE_AUTH):
            # Not one byte is held for a connection that has not authenticated.
            await self._refuse_unauthenticated(
                session, msg, "subpackage before authentication" if msg.packet is not None
                else "message 0x%04X before authentication" % msg.msg_id)
            return
        if msg.packet is not None:
            reassembler = session.reassembler
            held = reassembler.bytes
            try:
                if self.reassembly_bytes + len(msg.body.data) + reassembler.packet_overhead \
                        > self.limits.reassembly_total_bytes:
                    raise jt808.JT808Error("limit", "%d bytes in reassembly across sessions (limit %d)"
                                           % (self.reassembly_bytes, self.limits.reassembly_total_bytes))
                whole = reassembler.feed(msg)
            except jt808.JT808Error as exc:
                over = exc.reason == "limit"
                self.refused["subpackage over a reassembly limit" if over else "subpackage invalid"] += 1
                session.packets_refused += 1
                await self._respond(session, msg, RESULT_FAIL if over else RESULT_BAD)
                # One line for the first refusal of a session, then one per 1000 with the
                # count: a terminal pushing past a bound must not flood the log as well.
                if session.packets_refused % 1000 in (0, 1):
                    log.warning("subpackage refused", extra={
                        "peer": session.peer, "account": session.state.vehicle.account, "error": str(exc),
                        "refused_in_session": session.packets_refused})
                return
            finally:
                self.reassembly_bytes += reassembler.bytes - held
            if whole is None:
                total, index = msg.packet
                missing = session.reassembler.missing(msg.phone, msg.msg_id)
                if index == total and missing:
                    # The last packet came but some before it did not (dropped as
                    # corrupt): ask for exactly those (0x8003) instead of answering.
                    await session.send(retransmission_request(msg, missing, session.next_flow()))
                else:
                    await self._respond(session, msg, 0)  # this packet arrived
                return
            await self._message(session, whole, reply_to=msg)
            return
        await self._message(session, msg, reply_to=msg, frame=frame)

    async def _respond(self, session, to, result):
        await session.send(jt808.general_response(to, result, flow=session.next_flow()))

    async def _message(self, session, msg, reply_to, frame=None):
        session.version, session.protocol_version = msg.version, msg.protocol_version
        if msg.encryption:
            # RSA bodies (attribute bit 10) need the terminal's key exchange, which
            # no terminal in these fleets uses: refuse rather than guess.
            await self._respond(session, reply_to, RESULT_UNSUPPORTED)
            return
        if msg.msg_id == 0x0001:
            future = session.waiting.get(msg.body.reply_flow) if msg.body else None
            if future is not None and not future.done():
                future.set_result(msg.body.result)
            return
        if msg.msg_id == 0x0100:
            await self._register(session, msg)
            return
        if msg.msg_id == 0x0102:
            await self._authenticate(session, msg, reply_to)
            return
        state = session.state
        if state is None:            # a heartbeat (the rest was refused in _frame): answered, no state
            await self._respond(session, reply_to, 0)
            return
        if normalise_phone(msg.phone) != state.vehicle.phone:
            # Another vehicle's phone on this authenticated link: nothing accepted.
            await self._respond(session, reply_to, RESULT_FAIL)
            return
        state.last_heard = self.clock()
        if msg.msg_id == 0x0002:
            await self._respond(session, reply_to, 0)
        elif msg.msg_id in (0x0200, 0x0201, 0x0704):
            await self._reports(session, state, msg, reply_to, frame)
        elif msg.msg_id == 0x0003:
            # The terminal gives its registration up (on its authenticated link): its
            # code is forgotten and it may register again, as the standard expects.
            await self._registry(self.registry.release, state.vehicle.account, "terminal (0x0003)",
                                 "terminal unregistered")
            await self._respond(session, reply_to, 0)
            state.session, session.state, session.opened = None, None, self.clock()
            self._sessions_changed()
            log.info("terminal unregistered", extra={"account": state.vehicle.account})
        elif msg.msg_id == 0x0104:
            pass                     # parameter query answer: nothing to store yet
        else:
            await self._respond(session, reply_to, RESULT_UNSUPPORTED)

    async def _register(self, session, msg):
        if not isinstance(msg.body, jt808.Register):
            if session.state is None:
                await self._refuse_unauthenticated(session, msg, "registration not decodable")
            else:
                await self._respond(session, msg, RESULT_BAD)
            return
        vehicle = self.registry.vehicle(msg.phone)
        alive = vehicle is not None and self._alive(self.vehicles[vehicle.account].session)
        result, code = await self._registry(self.registry.register, msg.phone, msg.body, alive)
        session.phone = msg.phone
        await session.send(jt808.register_response(msg, result, code, flow=session.next_flow()))
        if result != RESULT_OK and session.state is None:
            self.refused["registration refused"] += 1
            session.refused += 1
            if session.refused >= self.limits.unauthenticated_max_refused:
                self.closed["unauthenticated_refused"] += 1
                session.abort()
        log_fn = log.info if result == RESULT_OK else log.warning
        log_fn("terminal registration: " + describe_register_result(result),
               extra={"peer": session.peer, "phone": msg.phone, "plate": msg.body.plate})

    async def _authenticate(self, session, msg, reply_to):
        code = msg.body.code if isinstance(msg.body, jt808.Authenticate) else ""
        vehicle = await self._registry(self.registry.authenticate, msg.phone, code)
        if vehicle is None:
            self.refused["authentication refused"] += 1
            self.closed["authentication_refused"] += 1
            await self._respond(session, reply_to, RESULT_FAIL)
            log.warning("authentication refused", extra={"peer": session.peer, "phone": msg.phone})
            session.close()
            return
        state = self.vehicles[vehicle.account]
        old = state.session
        if old is not None and old is not session and self._alive(old):
            # A second login while the vehicle has a session. Most often the terminal
            # reconnected and the old link is half-dead; but it may be a clone using a
            # stolen code. Ask the old link (0x8201): if it answers, it is alive and
            # this login is refused; if not, it is dead and this one replaces it.
            if await self._answers(old):
                self.refused["login while the session is alive"] += 1
                self.closed["login_while_alive"] += 1
                await self._respond(session, reply_to, RESULT_FAIL)
                log.warning("authentication refused: the vehicle's session is alive", extra={
                    "peer": session.peer, "account": vehicle.account, "session_peer": old.peer})
                session.abort()
                return
        if state.session is not None and state.session is not session:
            state.session.close()    # the terminal reconnected: the old link is dead
        state.session, session.state, session.phone = session, state, msg.phone
        self._sessions_changed()
        session.conn.authenticated()     # off its address's unauthenticated count; the address is known
        state.last_heard = self.clock()
        state.online = True
        await self._respond(session, reply_to, 0)
        if state.offline_raised:
            state.offline_raised = False
            self._record_later(self._link_event(state, contactid.QUALIFIER_RESTORE, "Vehicle back online"))

    def _sessions_changed(self):
        if self.on_sessions_changed is not None:
            self.on_sessions_changed()

    def held(self):
        """Accounts whose terminal holds a session here."""
        return {account for account, state in self.vehicles.items() if state.session is not None}

    async def _registry(self, fn, *args):
        """A registry call; off the event loop when it is a database round trip
        (cluster mode), so the receivers' ACKs never wait on it."""
        if getattr(self.registry, "blocking", False):
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    @staticmethod
    def _alive(session):
        return session is not None and not session.writer.is_closing()

    async def _answers(self, session):
        """True when `session` sends any frame within liveness_probe seconds of a
        location query (0x8201, which every terminal answers)."""
        session.heard = asyncio.Event()
        try:
            await session.send(jt808.Message(0x8201, session.phone, None, session.next_flow(), session.version,
                                             None, 0, session.protocol_version))
            await asyncio.wait_for(session.heard.wait(), self.limits.liveness_probe)
            return True
        except (asyncio.TimeoutError, ConnectionError):
            return False
        finally:
            session.heard = None

    async def _reports(self, session, state, msg, reply_to, frame):
        if msg.msg_id == 0x0704:
            positions = msg.body.positions
        elif msg.msg_id == 0x0201:
            positions = (msg.body.position,)
        else:
            positions = (msg.body,)
        vehicle = state.vehicle
        bits, edge, last_fix = state.alarm_bits, state.edge_alarms, state.last_fix
        events = []
        for pos in positions:
            # The frame as received when there is one frame per position (0x0200);
            # a batch or a reassembled message keeps each position's own body.
            if frame is not None and msg.msg_id == 0x0200:
                body, raw = body_of_frame(frame, msg), frame.hex()
            else:
                body = pos.encode(msg.version)
                raw = body.hex()
            new_events, bits, edge = report_events(vehicle, bits, edge, pos, msg.version, raw, body, last_fix,
                                                   self.report_limits)
            events += new_events
            position_event = new_events[0]
            if position_event.position is not None:
                last_fix = position_event.position
            if "refused" in position_event.values:
                # stored as refused, with its reason: no rule may act on an impossible position
                self.refused["report with impossible values"] += 1
            elif self.rules is not None:
                events += self.rules.observe(vehicle, position_event.device_time, pos.lat, pos.lon, pos.speed,
                                             position_event.position is not None)
        try:
            await self._commit(vehicle, events)
        except InvalidEvent as exc:        # the report itself is wrong: repeating it will not help
            await self._respond(session, reply_to, RESULT_BAD)
            log.warning("report refused", extra={"account": vehicle.account, "error": str(exc)})
            return
        except Exception as exc:
            log.error("report not committed, not answered (the terminal will retry)",
                      extra={"account": vehicle.account, "error": repr(exc)})
            return
        raised = bits & ~state.alarm_bits or edge - state.edge_alarms
        state.alarm_bits, state.edge_alarms, state.last_fix = bits, edge, last_fix
        if raised:
            state.alarm_flow = msg.flow
        if msg.msg_id != 0x0201:             # 0x0201 is itself the answer to our 0x8201
            await self._respond(session, reply_to, 0)

    async def _commit(self, vehicle, events):
        """Submit a report's events together (one group commit) and return when the
        terminal may be answered. With a life-safety alarm among them, that is as
        soon as the alarms are committed: under load the routine events (the
        position, rule events) queue behind thousands of other positions, and an
        SOS must not wait for them, not even for its acknowledgement. They are
        committed right after; were the center to crash before that, the alarm
        event holds the same position."""
        if not any(e.priority == PRIORITY_LIFE_SAFETY for e in events):
            if len(events) == 1:             # the common case: one position, no task to create
                await self.submit(events[0])
            else:
                await asyncio.gather(*(self.submit(e) for e in events))
            return
        submits = [asyncio.ensure_future(self.submit(e)) for e in events]
        urgent = [f for f, e in zip(submits, events) if e.priority == PRIORITY_LIFE_SAFETY]
        await asyncio.gather(*urgent)
        for future, event in zip(submits, events):
            if future not in urgent:
                self._tasks.add(future)
                future.add_done_callback(self._routine_done(event))

    def _routine_done(self, event):
        def done(future):
            self._tasks.discard(future)
            if not future.cancelled() and future.exception() is not None:
                log.error("event of an alarm report not recorded",
                          extra={"account": event.account, "code": event.code, "error": repr(future.exception())})
        return done

    # -- offline ---------------------------------------------------------------------

    def _link_event(self, state, qualifier, name):
        return make_event(state.vehicle.account, OFFLINE_CODE, name=name, qualifier=qualifier,
                          device_time=time.time(), source=SOURCE_JT808, position=state.last_fix,
                          site=state.vehicle.site, values={"timeout_s": self.session_timeout})

    def _record_later(self, event):
        task = asyncio.create_task(self._record(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, event):
        try:
            await self.submit(event)
        except Exception as exc:
            log.error("vehicle link event not recorded", extra={"account": event.account, "error": repr(exc)})

    def check_sessions(self):
        now = self.clock()
        for session in list(self.sessions):
            if session.writer.is_closing():
                continue
            if session.state is None and now - session.opened > self.limits.login_timeout:
                self.closed["login_timeout"] += 1
                log.warning("connection closed: no authentication in time",
                            extra={"peer": session.peer, "login_timeout_s": self.limits.login_timeout})
                session.abort()
                continue
            held = session.reassembler.bytes
            if held:
                session.reassembler.expire(now)
                self.reassembly_bytes += session.reassembler.bytes - held
        for state in self.vehicles.values():
            if state.online and now - state.last_heard > self.session_timeout:
                state.online = False
                state.offline_raised = True
                if state.session is not None:
                    state.session.close()
                    state.session = None
                    self._sessions_changed()
                log.warning("vehicle offline", extra={"account": state.vehicle.account})
                self._record_later(self._link_event(state, contactid.QUALIFIER_NEW, "Vehicle offline"))

    async def _watch_sessions(self):
        while True:
            await asyncio.sleep(min(1.0, self.session_timeout / 4, self.limits.login_timeout / 4))
            self.check_sessions()
