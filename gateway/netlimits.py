"""Limits for the gateway's listeners, whatever protocol they speak (issue 11, 3).

Threat: anyone who can reach a port can open connections and leave them idle, send
half a frame and stop, send frames and never read the answers, or exhaust the
process's file descriptors so that accept() fails. Seen on main: 21,000 idle TCP
connections reached the 20,000-file limit, and then new panels, /healthz and the
console all timed out. Everything here keeps a listener answering its real clients
through that, and says so (counters for /metrics, reasons for /healthz).

The API (the DC-09 receiver uses all of it; the JT/T 808 center, the MQTT and the
ops listeners are meant to):

    limits = Limits(max_connections=2000, max_per_address=32, reserved=200, ...)
    listener = await serve(handler, host, port, name="dc09", limits=limits)
    async def handler(conn):          # conn: Connection
        while data := await conn.read(4096):     # b"" at EOF or when a deadline passed
            frames = splitter.feed(data)
            conn.progress(len(frames), pending=bool(splitter.buf))
            if <a frame authenticated>: conn.authenticated()
            if not await conn.send(answer): return   # cut: a reader too slow
    listener.samples()   -> [(metric, labels, value)] for Metrics.add_gauges
    listener.degraded()  -> ["dc09: ...", ...] for /healthz, empty when all is well
    await listener.close()

For UDP (no connections), ConnectionLimiter alone bounds the datagrams in flight:
`ticket = limiter.admit(address)`, then `ticket.release()` when handled.

For a listener whose protocol is a library's (aiohttp's web server for /healthz and
/metrics), serve_protocol(factory, ...) applies the same admission and accept
backoff, and bounds each connection's lifetime (max_lifetime) instead of reading
for it; `listener.known(transport)` marks a client that made a valid request.
"""
import asyncio
import errno
import logging
import socket
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

log = logging.getLogger("jifang.net")

# accept() failures that mean "out of a resource", not "this one connection failed":
# retrying at once would spin (asyncio's own loop retries after 1 s, with a traceback each time).
RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# accept() failures that concern only the connection being accepted.
TRANSIENT_ERRORS = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ECONNRESET, errno.EAGAIN)


@dataclass
class Limits:
    """One listener's limits; the defaults suit the DC-09 receiver (see docs/security.md).

    max_connections: all connections open at once. Kept well under the process's
        file limit (see check_file_limit) so the ops and console listeners, the store
        and the forwarders always have descriptors left.
    max_per_address: connections from one source address that have not
        authenticated yet. Authenticated ones do not count: 50 panels behind one NAT
        router are fine, 33 silent connections from one host are not.
    reserved: of max_connections, the slots only addresses that authenticated before
        may take: a flood from new addresses leaves room for the known panels.
    first_frame_timeout: seconds a connection may stay open without a complete
        frame, and seconds a frame may take to arrive once it has started. A panel
        writes its frame as soon as it is connected; 30 s covers a slow cellular link
        with retransmissions, and a frame of at most 4 KB never needs more.
    idle_timeout: seconds between frames on a connection. Panels that keep their
        connection link-test every 1-5 minutes; 10 min keeps any of them connected
        and frees the slot of one that went away without closing.
    max_output: bytes of answers waiting for a client that does not read them; past
        it the connection is cut. A drain that does not finish within
        first_frame_timeout cuts it too, so one client's slowness never holds memory
        or the client's own next frames for long.
    read_limit: the stream buffer of a connection (asyncio pauses reading at twice it).
    send_buffer: SO_SNDBUF of each accepted socket (Linux doubles it), bounding the
        kernel memory a client that does not read holds, and making such a client
        feel back-pressure after a few thousand answers instead of the ~4 MB the
        kernel's autotuning would let pile up first (while the gateway kept reading
        and answering its frames at full speed). DC-09 answers are under 200 bytes
        and a sender waits for each one, so 64 KB never slows a real client. 0 leaves
        the kernel's autotuning.
    accept_backoff_max: longest pause after accept() failed for want of resources
        (starts at 50 ms, doubles while it keeps failing).
    known_addresses: addresses remembered as authenticated (oldest forgotten first).
    degraded_for: seconds /healthz stays degraded after a limit last refused something.
    frame_rate, frame_burst: frames a second (and at once) a connection may send
        that did not prove themselves (for DC-09: anything but an encrypted frame that
        decrypted under its account's key and is no replay: NAKed frames, replays,
        plain-text frames). Past it the connection is not read for a while (the
        sender feels back-pressure; nothing is dropped). Without it 20 clients
        sending valid plain link tests as fast as they could, and never reading the
        answers (the kernel buffered half a megabyte of them per client), kept the
        receiver at 87 % of a core and a real alarm's ACK at 400 ms. A panel sends a
        frame at a time and waits for its ACK; 100 at once and 20 a second cover a
        plain-text panel emptying its offline queue.
    """
    max_connections: int = 2000
    max_per_address: int = 32
    reserved: int = 200
    first_frame_timeout: float = 30.0
    idle_timeout: float = 600.0
    max_output: int = 65536
    read_limit: int = 16384
    send_buffer: int = 65536
    accept_backoff_max: float = 2.0
    known_addresses: int = 65536
    degraded_for: float = 60.0
    frame_rate: float = 20.0
    frame_burst: int = 100
    max_lifetime: float = 0.0       # serve_protocol only: seconds a connection may live (0: no bound)


class Ticket:
    """One admitted connection (or datagram in flight)."""

    __slots__ = ("limiter", "address", "promoted", "released")

    def __init__(self, limiter, address):
        self.limiter, self.address = limiter, address
        self.promoted = self.released = False

    def promote(self):
        """The client authenticated: it stops counting against its address's limit,
        and the address may use the reserve from now on."""
        if not self.promoted and not self.released:
            self.promoted = True
            self.limiter._promoted(self)

    def release(self):
        if not self.released:
            self.released = True
            self.limiter._released(self)


class ConnectionLimiter:
    """Counts what is open, refuses past the limits, and remembers why.

    Refusals for `total` (everything in use) and `reserved` (only the reserve left,
    and the address is not known) make degraded() report: they mean real clients may
    be turned away. Refusals for `per_address` are counted but do not degrade the
    node: they are the limit doing its job against one host, and a health check that
    any single host could flip would let it take a node out of a load balancer."""

    def __init__(self, name, max_total, max_per_address, reserved=0, known_addresses=65536,
                 degraded_for=60.0, clock=time.monotonic):
        if reserved >= max_total:
            raise ValueError("the reserve (%d) must leave room under the total (%d)" % (reserved, max_total))
        self.name = name
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.reserved = reserved
        self.known_size = known_addresses
        self.degraded_for = degraded_for
        self.clock = clock
        self.in_use = 0
        self.unauthenticated = Counter()       # address -> admitted, not yet promoted
        self.known = OrderedDict()             # address -> None, most recent last
        self.counts = Counter()                # (metric, reason) -> n
        self._bites = {}                       # reason -> [first, last, count] of the current streak

    # -- admission ---------------------------------------------------------------------

    def admit(self, address):
        """A Ticket, or None when refused (counted, and logged by the caller if it likes)."""
        reason = None
        if self.unauthenticated[address] >= self.max_per_address:
            reason = "per_address"
        elif self.in_use >= self.max_total:
            reason = "total"
        elif self.in_use >= self.max_total - self.reserved and address not in self.known:
            reason = "reserved"
        if reason is not None:
            self.count("refused", reason)
            if reason != "per_address":
                self.bite(reason)
            return None
        self.in_use += 1
        self.unauthenticated[address] += 1
        return Ticket(self, address)

    def mark_known(self, address):
        self.known[address] = None
        self.known.move_to_end(address)
        while len(self.known) > self.known_size:
            self.known.popitem(last=False)

    def _promoted(self, ticket):
        self._forget_unauthenticated(ticket.address)
        self.mark_known(ticket.address)

    def _released(self, ticket):
        self.in_use -= 1
        if not ticket.promoted:
            self._forget_unauthenticated(ticket.address)

    def _forget_unauthenticated(self, address):
        self.unauthenticated[address] -= 1
        if self.unauthenticated[address] <= 0:
            del self.unauthenticated[address]

    # -- what happened -----------------------------------------------------------------

    def count(self, metric, reason):
        self.counts[(metric, reason)] += 1

    def bite(self, reason):
        """A limit that may cost real clients bit: degraded() reports it for a while."""
        now = self.clock()
        streak = self._bites.get(reason)
        if streak is None or now - streak[1] > self.degraded_for:
            self._bites[reason] = [now, now, 1]
        else:
            streak[1] = now
            streak[2] += 1

    def degraded(self):
        now = self.clock()
        reasons = []
        for reason, (first, last, n) in sorted(self._bites.items()):
            if now - last <= self.degraded_for:
                reasons.append("%s: %s (%d times in the last %d s)" % (
                    self.name, _DESCRIPTIONS.get(reason, reason).format(self=self), n, int(now - first) + 1))
        return reasons

    def samples(self):
        labels = {"listener": self.name}
        out = [("jifang_net_open", labels, self.in_use),
               ("jifang_net_known_addresses", labels, len(self.known))]
        for (metric, reason), n in sorted(self.counts.items()):
            out.append(("jifang_net_%s_total" % metric, dict(labels, reason=reason), n))
        return out


_DESCRIPTIONS = {
    "total": "connection limit reached ({self.max_total}), new clients refused",
    "reserved": "only the {self.reserved} slots reserved for known clients are left, unknown clients refused",
    "accept": "accept() is out of file descriptors or memory, backing off",
}


# -------------------------------------------------------------------- deadlines

class Deadline:
    """When a connection that sends nothing useful is closed.

    Before its first complete frame, and while a frame is incomplete, a connection
    has `first` seconds (counted from the connection, and from the first byte of the
    incomplete frame: trickling one byte at a time does not extend it). Between
    complete frames it has `idle` seconds. Bytes that are no frame at all do not
    count as progress."""

    def __init__(self, first, idle, clock=time.monotonic):
        self.first, self.idle, self.clock = first, idle, clock
        self.started = clock()
        self.last_frame = None
        self.partial_since = None

    def progress(self, frames, pending):
        """After each read: `frames` complete frames came out, `pending` says whether
        bytes of an incomplete frame are buffered."""
        now = self.clock()
        if frames:
            self.last_frame = now
        if not pending:
            self.partial_since = None
        elif frames or self.partial_since is None:
            self.partial_since = now

    @property
    def reason(self):
        """Why the connection would be closed at `when`."""
        if self.partial_since is not None:
            return "partial_frame"
        return "idle" if self.last_frame is not None else "no_frame"

    def _base(self):
        return self.last_frame + self.idle if self.last_frame is not None else self.started + self.first

    @property
    def when(self):
        base = self._base()
        if self.partial_since is not None:
            return min(base, self.partial_since + self.first)
        return base

    def remaining(self):
        return max(0.0, self.when - self.clock())


class FrameRate:
    """A token bucket: `rate` a second, `burst` at most; delay(n) takes n tokens
    and says how long to wait before taking more (0 while within the bucket)."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.at = clock()

    def delay(self, n):
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# -------------------------------------------------------------------- connections

class Connection:
    """What a handler gets for one TCP connection: reads bounded by the deadline,
    writes bounded by max_output."""

    def __init__(self, listener, reader, writer, ticket, peer):
        self.listener = listener
        self.limits = listener.limits
        self.reader, self.writer = reader, writer
        self.ticket = ticket
        self.peer = peer                    # "host:port"
        self.address = ticket.address       # host
        self.deadline = Deadline(self.limits.first_frame_timeout, self.limits.idle_timeout,
                                 asyncio.get_running_loop().time)
        self.closed_reason = None
        self.rate = FrameRate(self.limits.frame_rate, self.limits.frame_burst, asyncio.get_running_loop().time)

    async def throttle(self, frames):
        """Count `frames` that did not prove themselves (see Limits.frame_rate); past
        the rate, wait before the next read."""
        wait = self.rate.delay(frames) if frames else 0.0
        if wait > 0:
            self.listener.limiter.count("throttled", "frame_rate")
            # Never past the deadline: a connection sending nothing but such frames
            # is closed when its deadline comes, not when its penalty ends.
            await asyncio.sleep(min(wait, self.deadline.remaining()))

    async def read(self, n):
        """Up to n bytes; b"" at EOF, when the deadline passed, or once cut."""
        if self.closed_reason is not None:
            return b""
        try:
            async with asyncio.timeout_at(self.deadline.when):
                return await self.reader.read(n)
        except TimeoutError:
            self._cut(self.deadline.reason, abort=False)
            return b""
        except ConnectionError:
            return b""

    def progress(self, frames, pending):
        self.deadline.progress(frames, pending)

    def authenticated(self):
        self.ticket.promote()

    async def send(self, data):
        """Write and drain. False when the client was cut for not reading (its
        unread answers passed max_output, or the drain outlasted first_frame_timeout)."""
        if self.closed_reason is not None:
            return False
        transport = self.writer.transport
        self.writer.write(data)
        if transport.get_write_buffer_size() > self.limits.max_output:
            self._cut("slow_reader")
            return False
        try:
            async with asyncio.timeout(self.limits.first_frame_timeout):
                await self.writer.drain()
        except TimeoutError:
            self._cut("slow_reader")
            return False
        except ConnectionError:
            return False
        return True

    def _cut(self, reason, abort=True):
        self.closed_reason = reason
        self.listener.limiter.count("closed", reason)
        log.info("connection closed by a limit", extra={"listener": self.listener.name, "peer": self.peer,
                                                        "reason": reason})
        if abort:
            self.writer.transport.abort()    # drop what it would not read
        else:
            self.writer.close()


class Listener:
    """A TCP listener with its own accept loop (see serve)."""

    def __init__(self, handler, name, limits, limiter=None):
        self.handler = handler
        self.name = name
        self.limits = limits
        self.limiter = limiter or ConnectionLimiter(name, limits.max_connections, limits.max_per_address,
                                                    limits.reserved, limits.known_addresses, limits.degraded_for)
        self.connections = set()
        self.sockets = []
        self.address = None
        self._accept_task = None
        self._tasks = set()

    async def start(self, host, port, backlog=1024):
        sock = socket.create_server((host, port), backlog=backlog, reuse_port=False)
        sock.setblocking(False)
        self.sockets = [sock]
        self.address = sock.getsockname()[:2]
        self._accept_task = asyncio.create_task(self._accept_loop(sock), name="accept-" + self.name)

    async def _accept_loop(self, sock):
        """accept() ourselves rather than through asyncio.start_server: a refused
        connection is closed before any stream object is made for it, and accept()
        failures are counted, back off and show in /healthz instead of asyncio
        retrying with one multi-line traceback per failure."""
        loop = asyncio.get_running_loop()
        backoff = 0.05
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in RESOURCE_ERRORS:
                    self.limiter.count("accept_errors", errno.errorcode.get(exc.errno, str(exc.errno)))
                    self.limiter.bite("accept")
                    log.error("accept() failed, backing off", extra={"listener": self.name, "error": str(exc),
                                                                     "backoff_s": backoff})
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.limits.accept_backoff_max)
                    continue
                if exc.errno in TRANSIENT_ERRORS:
                    continue
                raise
            backoff = 0.05
            ticket = self.limiter.admit(addr[0])
            if ticket is None:
                log.warning("connection refused by a limit", extra={"listener": self.name,
                                                                    "peer": "%s:%s" % addr[:2]})
                _close_now(conn)
                continue
            task = asyncio.create_task(self._run(conn, addr, ticket))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, sock, addr, ticket):
        connection = None
        try:
            if self.limits.send_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
            reader, writer = await asyncio.open_connection(sock=sock, limit=self.limits.read_limit)
            # Past this many unread bytes drain() waits; send() cuts past max_output.
            writer.transport.set_write_buffer_limits(high=max(self.limits.max_output // 2, 1))
            connection = Connection(self, reader, writer, ticket, "%s:%s" % addr[:2])
            self.connections.add(connection)
            await self.handler(connection)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            # A bug must cost one connection (the client reconnects), not the listener.
            log.exception("connection handler failed", extra={"listener": self.name})
        finally:
            ticket.release()
            if connection is not None:
                self.connections.discard(connection)
                connection.writer.close()
            else:
                sock.close()

    def samples(self):
        return self.limiter.samples()

    def degraded(self):
        return self.limiter.degraded()

    async def close(self):
        """Stop accepting, then end every connection."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            await asyncio.gather(self._accept_task, return_exceptions=True)
        for sock in self.sockets:
            sock.close()
        await self._close_connections()

    async def _close_connections(self):
        for connection in list(self.connections):
            connection.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(handler, host, port, *, name, limits=None):
    """Listen on host:port; handler(Connection) runs for each admitted connection."""
    listener = Listener(handler, name, limits or Limits())
    await listener.start(host, port)
    return listener


class _Counted(asyncio.Protocol):
    """Wraps a library's protocol: hands every call through, and gives the
    connection's ticket back when it is lost. Also closes the connection when its
    lifetime ends: an HTTP client that sends its request one byte a minute, or none,
    would otherwise hold its slot for ever (aiohttp has no such deadline)."""

    def __init__(self, inner, listener, ticket):
        self.inner, self.listener, self.ticket = inner, listener, ticket
        self.transport = self.timer = None

    def connection_made(self, transport):
        self.transport = transport
        self.listener.connections.add(self)
        self.listener.by_transport[transport] = self
        if self.listener.limits.max_lifetime:
            self.timer = asyncio.get_running_loop().call_later(self.listener.limits.max_lifetime, self._expire)
        self.inner.connection_made(transport)

    def _expire(self):
        self.listener.limiter.count("closed", "lifetime")
        self.transport.abort()

    def data_received(self, data):
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def pause_writing(self):
        self.inner.pause_writing()

    def resume_writing(self):
        self.inner.resume_writing()

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()
        self.listener.connections.discard(self)
        self.listener.by_transport.pop(self.transport, None)
        self.ticket.release()
        self.inner.connection_lost(exc)


class ProtocolListener(Listener):
    """A Listener handing admitted sockets to a protocol factory (see serve_protocol)."""

    def __init__(self, factory, name, limits, ssl=None):
        super().__init__(None, name, limits)
        self.factory = factory
        self.ssl = ssl
        self.by_transport = {}       # transport -> _Counted: known() runs on every logged-in request

    async def _run(self, sock, addr, ticket):
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _Counted(self.factory(), self, ticket), sock, ssl=self.ssl)
        except OSError:
            ticket.release()
            sock.close()

    def known(self, transport):
        """The client on `transport` proved itself (a valid request): its address may
        use the reserve from now on."""
        conn = self.by_transport.get(transport)
        if conn is not None:
            conn.ticket.promote()

    async def _close_connections(self):
        for conn in list(self.connections):     # the library's protocol ends its own work
            conn.transport.close()


class ListenerSlot:
    """Where an app made before its listener finds it later (to mark clients known)."""

    listener = None

    def known(self, transport):
        if self.listener is not None:
            self.listener.known(transport)


async def serve_protocol(factory, host, port, *, name, limits, ssl=None):
    """Listen on host:port; each admitted connection gets factory()'s protocol
    (over TLS with `ssl`, an SSLContext)."""
    listener = ProtocolListener(factory, name, limits, ssl)
    await listener.start(host, port)
    return listener


def _close_now(sock):
    """Close a refused connection with a reset: nothing is sent, and the socket
    leaves no TIME_WAIT behind on this side."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


def check_file_limit(needed, name):
    """Raise the soft file limit towards the hard one when `needed` descriptors (the
    listeners' max_connections plus a margin) would not fit, and warn when even the
    hard limit is too low: then accept() would fail before the connection limit bites."""
    try:
        import resource
    except ImportError:      # pragma: no cover (not POSIX)
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("file descriptor limit below what the connection limits need",
                    extra={"limit": soft, "needed": needed, "for": name,
                           "fix": "raise the limit (ulimit -n, LimitNOFILE= in the systemd unit) "
                                  "or lower max_connections"})
    return soft
