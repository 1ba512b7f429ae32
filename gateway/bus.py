"""The durable bus between cluster nodes: NATS JetStream, replicated streams.

    receiver --submit--> Pipeline.accept (validate, enrich, heard-from)
             --Bus.publish--> stream (R3) --PubAck--> the receiver ACKs the device
    stream --Ingest (durable pull consumer, one per stream)--> Pipeline.commit --> store
           --msg ack only after the store commit--

One lane per kind of traffic, so a lane's backlog is its own (lane_of() is the only
place that decides, on the priority tier gateway/event.py gives every Event):

    lane       stream(s)                          subjects
    alarms     JIFANG_ALARMS, JIFANG_ALARMS_B     jifang.alarms.<class>.<account>, jifang.alarms_b....
    events     JIFANG_EVENTS                      jifang.events.<class>.<account>
    positions  JIFANG_POSITIONS                   jifang.positions.<class>.<account>

Life-safety alarms and troubles are published to two R3 streams at once and the
first PubAck answers the device. One R3 stream survives a NATS node's death, but
when that node led the stream (or its consumer) nothing moves until Raft elects a
new leader, measured at about 5 s on nats-server 2.9: too long for an alarm. The
two copies keep their leaders on different nodes (Ingest.keep_leaders_apart), so
one node's death stalls at most one of them; the store's dedup key records the
alarm once whichever copies arrive. Alarms are a trickle next to positions: the
second copy costs nothing that matters.

The ACK point. A device is answered once the replicated stream's PubAck arrives,
not after the store commit on whichever node ingests it: in JetStream clustered
mode the stream leader sends the PubAck only after the message's Raft entry is
held by a quorum of the stream's replicas (2 of 3 for R3), so the loss of any one
NATS node, or of the gateway node that published, loses nothing acknowledged; the
ingest consumer carries it into the store from whichever node is alive. Waiting
for the store as well would put the store's commit latency (and its outages) back
on the device's ACK path, which is what the bus is there to absorb.
(nats-server 2.9 holds a quorum's copy in the OS page cache, fsync'd on its own
schedule: that survives kill -9 of any process and the loss of one machine; losing
power to two of three machines at once within the sync interval does not. 2.10's
`sync_interval: always` closes that, at a cost per message; see docs/cluster.md, "The bus".)

Deduplication. Every message carries the header Nats-Msg-Id = Event.dedup_key, the
same key the store's unique constraint uses. A panel retrying on its backup
receiver (the other node) produces the same key: the stream drops the second copy
within its duplicate window (PubAck.duplicate), and anything older than the window,
or redelivered by the consumer after a crash between commit and ack, is dropped by
the store (append() returns None for a key already recorded).

Lanes never wait on each other. The alarms lane has its own NATS connection (its
publishes never queue behind a flood of position publishes in one socket's write
buffer) and its own consumer loop (a backlog of positions never sits in front of an
alarm); the store's commit queue serves alarms first (gateway/pipeline.py).
"""
import asyncio
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from gateway.event import PRIORITY_TROUBLE, Event
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.bus")

LANE_ALARMS = "alarms"
LANE_EVENTS = "events"
LANE_POSITIONS = "positions"
LANES = (LANE_ALARMS, LANE_EVENTS, LANE_POSITIONS)

# (lane, stream, subject root): every stream the bus uses, alarms' first.
STREAMS = (
    (LANE_ALARMS, "JIFANG_ALARMS", "jifang.alarms"),
    (LANE_ALARMS, "JIFANG_ALARMS_B", "jifang.alarms_b"),
    (LANE_EVENTS, "JIFANG_EVENTS", "jifang.events"),
    (LANE_POSITIONS, "JIFANG_POSITIONS", "jifang.positions"),
)
CONSUMER = "ingest"            # one durable per stream, shared by every node: each message goes to one of them
MSG_ID = "Nats-Msg-Id"         # JetStream's deduplication header

# How long a pull request waits on the server. A pull request lives on the
# consumer's leader: when that NATS node dies, the request dies with it, and the
# loop learns it only when the request would have expired. Short enough that this
# adds well under a second to an alarm after a NATS node loss; two small requests
# per second per stream and node when idle.
PULL_EXPIRES = 0.5
# Client liveness: a NATS node whose process died closes the socket at once, but a
# machine that vanished (power, network) leaves a half-open TCP connection that only
# pings detect: 1 s pings, 2 unanswered -> reconnect to another node.
PING_INTERVAL = 1
MAX_OUTSTANDING_PINGS = 2
RECONNECT_WAIT = 0.1
# An Event's JSON with its raw frame is well under 2 KiB; a bigger message is refused.
MAX_MSG_SIZE = 64 * 1024
# How often Ingest checks that the two alarm streams' leaders are on different nodes.
LEADER_CHECK_INTERVAL = 5.0
# JetStream API calls made while NATS elects a leader (a fresh cluster, a node just
# killed) time out or find no responder for a moment; a gateway starting then waits
# this long for the election instead of failing its start.
ELECTION_WAIT = 30.0
# nats-py's close() flushes and then waits for the socket to close; on a connection
# whose peer stopped reading it can wait forever (seen in CI: a stopping node hung
# for 300 s). Shutting down must end: past this, the socket is dropped.
CLOSE_TIMEOUT = 5.0
# nats-py blocks a publish once 2 MiB wait unsent, until the flusher gets them out,
# for ever by default, and swallows the cancellation of that wait: a peer that stops
# reading would stall every publisher on the connection past any timeout. This bounds
# it; the publish then goes on to wait for its PubAck, bounded by its own timeout.
FLUSH_TIMEOUT = 1.0
# The errors that mean "a leader is being elected, ask again shortly".
ELECTION_ERRORS = (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                   nats.js.errors.ServiceUnavailableError)


def lane_of(event):
    """The lane an Event travels on, from its priority tier (gateway/event.py) and,
    among routine events, whether it is telemetry (positions, readings)."""
    if event.priority <= PRIORITY_TROUBLE:
        return LANE_ALARMS
    if event.event_class == "telemetry":
        return LANE_POSITIONS
    return LANE_EVENTS


def streams_of(lane, alarm_copies=2):
    """[(stream, subject root)] of a lane (the first `alarm_copies` for alarms)."""
    found = [(name, root) for lane_, name, root in STREAMS if lane_ == lane]
    return found[:alarm_copies] if lane == LANE_ALARMS else found


def active_streams(settings):
    """[(lane, stream, subject root)] a bus with these settings uses."""
    return [(lane, name, root) for lane in LANES for name, root in streams_of(lane, settings.alarm_copies)]


def subject_token(text):
    """A subject token: accounts are hex digits or terminal phone numbers, but a
    subject must never gain a '.', '*', '>' or blank from one."""
    return text if text.isalnum() and text.isascii() else "x" + text.encode().hex()


def subject_for(event, root=None):
    """The subject of an Event on the stream with subject root `root` (default: its
    lane's first stream)."""
    if root is None:
        root = streams_of(lane_of(event))[0][1]
    return "%s.%s.%s" % (root, event.event_class, subject_token(event.account))


@dataclass
class BusSettings:
    servers: list                         # ["nats://host:port", ...]; any node will do, the client learns the rest
    replicas: int = 3                     # R3 on a 3-node cluster; 1 for a single-node dev setup
    duplicate_window: float = 600.0       # seconds; matches the store's 10-minute retry window
    publish_timeout: float = 5.0          # seconds a publish keeps retrying before the device gets no ACK
    publish_attempt: float = 0.5          # seconds one attempt waits for its PubAck
    # Per stream; when full, publishes fail (no ACK) rather than drop. A count, not
    # bytes: nats-server 2.9 under-counts a message's headers in the DiscardNew
    # max_bytes check, then enforces max_bytes by deleting the oldest messages,
    # acknowledged ones included (nats-io/nats-server#4771, #4775, fixed in 2.10).
    # Bytes stay bounded by max_stream_messages x MAX_MSG_SIZE.
    max_stream_messages: int = 1_000_000
    ack_wait: float = 30.0                # seconds before an unacked event or position is delivered again
    # Alarms: short, because a delivery in flight to a node's connection when that
    # NATS node dies is lost and comes back only after this. A commit slower than
    # this means one more delivery, which the store's dedup key absorbs.
    alarm_ack_wait: float = 1.0
    ingest_batch: int = 256               # messages one pull asks for, and commits in flight per lane
    alarm_copies: int = 2                 # alarm streams published at once (1: no hedge against a leader's death)


async def _close_bounded(nc):
    """nc.close(), over in CLOSE_TIMEOUT even when the peer stopped reading. Not
    asyncio.timeout(): nats-py's close() swallows a CancelledError while it waits for
    its reconnect task and then waits on drain() for good."""
    closing = asyncio.ensure_future(nc.close())
    done, _ = await asyncio.wait([closing], timeout=CLOSE_TIMEOUT)
    if not done:
        log.warning("bus connection did not close in %.0f s; dropping its socket", CLOSE_TIMEOUT,
                    extra={"connection": nc.options.get("name")})
        _abort_socket(nc)
        done, _ = await asyncio.wait([closing], timeout=1.0)
        if not done:
            closing.cancel()
            return
    if closing.exception() is not None:      # the dropped socket's error, or the peer's
        log.info("bus connection closed with %r", closing.exception(), extra={"connection": nc.options.get("name")})


def _abort_socket(nc):
    # nats-py 2.16.0 (pinned in pyproject.toml) offers no public way to drop a
    # connection whose peer stopped reading: close() awaits drain() on it. This aborts
    # the asyncio transport under its TcpTransport; tests/cluster/test_bus_faults.py
    # proves it with the pinned version against a frozen NATS cluster.
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    if writer is not None:
        writer.transport.abort()


def _url(nc):
    """host:port of the node a connection is on (never the credentials in its URL)."""
    url = nc.connected_url
    return "%s:%s" % (url.hostname, url.port) if url is not None else ""


def _address(server):
    url = urlsplit(server if "://" in server else "nats://" + server)
    return "%s:%s" % (url.hostname, url.port)


class BusUnavailable(RuntimeError):
    """The event is not durable on the bus: its source must not ACK the device."""


class Bus:
    """Publishing side, and the connections both sides use."""

    def __init__(self, settings, metrics=None, name="gateway"):
        self.settings = settings
        self.metrics = metrics
        self.name = name
        self.connections = {}        # stream -> NATS connection (the alarm streams' own, the rest share one)
        self._background = set()     # an alarm's second copy, still being published after the first PubAck

    async def connect(self):
        """One connection per alarm stream, each to a different NATS node when it can,
        so one node's death cuts at most one alarm copy off; one for the rest."""
        servers = list(self.settings.servers)
        taken = []
        for lane, name, _ in active_streams(self.settings):
            if lane == LANE_ALARMS:
                # Nodes not yet used by the other alarm copy first, in a fixed order.
                order = ([u for u in servers if _address(u) not in taken]
                         + [u for u in servers if _address(u) in taken])
                nc = await self._connect(name, order, randomize=not taken)
                taken.append(_url(nc))
            else:
                nc = self.connections.get("bulk") or await self._connect("bulk", servers, randomize=True)
                self.connections["bulk"] = nc
            self.connections[name] = nc

    def command_connection(self):
        """The connection for core-NATS requests between nodes (JT/T 808 downlink):
        the first alarm stream's, so a command never queues behind a flood of
        position publishes in the bulk connection's write buffer."""
        return self.connections[active_streams(self.settings)[0][1]]

    async def _connect(self, role, servers, randomize):
        async def disconnected():
            log.warning("bus connection lost", extra={"connection": role})

        async def reconnected():
            log.info("bus connection back", extra={"connection": role, "server": _url(nc)})

        async def error(exc):
            log.warning("bus connection error", extra={"connection": role, "error": repr(exc)})

        nc = await nats.connect(
            servers=servers, name="%s-%s" % (self.name, role), dont_randomize=not randomize,
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=RECONNECT_WAIT,
            ping_interval=PING_INTERVAL, max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            connect_timeout=2, flush_timeout=FLUSH_TIMEOUT, disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
        return nc

    @property
    def bulk(self):
        return self.connections["bulk"]

    async def close(self):
        for task in list(self._background):
            await cancel_and_wait(task)
        for nc in {id(c): c for c in self.connections.values()}.values():
            await _close_bounded(nc)
        self.connections = {}

    def stream_config(self, name):
        s = self.settings
        root = next(r for _, n, r in STREAMS if n == name)
        return api.StreamConfig(
            name=name, subjects=[root + ".>"],
            # Work queue: a message is removed once the ingest consumer acked it (it is
            # in the store then); the stream holds only what is not stored yet.
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE, num_replicas=s.replicas,
            duplicate_window=s.duplicate_window,
            max_msgs=s.max_stream_messages, max_msg_size=MAX_MSG_SIZE,
            # Full (the store has been down for long): refuse new messages so their
            # devices get no ACK and keep them, rather than drop acknowledged ones.
            discard=api.DiscardPolicy.NEW)

    async def ensure_streams(self):
        """Create the streams, or bring an existing one to this config (every node does
        this at start; the same config twice is a no-op for the server)."""
        jsm = self.bulk.jsm()
        for _, name, _ in active_streams(self.settings):
            config = self.stream_config(name)
            deadline = time.monotonic() + ELECTION_WAIT
            while True:
                try:
                    try:
                        await jsm.add_stream(config)
                    except nats.js.errors.BadRequestError as exc:
                        if exc.err_code != 10058:       # "stream name already in use with a different configuration"
                            raise
                        await jsm.update_stream(config)
                    break
                except ELECTION_ERRORS as exc:
                    # Asking again is safe: the same config twice is a no-op.
                    if time.monotonic() > deadline:
                        raise BusUnavailable("JetStream did not answer for stream %s within %.0f s: %r"
                                             % (name, ELECTION_WAIT, exc)) from exc
                    log.info("JetStream busy electing, asking again", extra={"stream": name, "error": repr(exc)})
                    await asyncio.sleep(0.5)

    async def publish(self, event):
        """Put one Event on its lane; returns the first PubAck, sent once a replicated
        stream holds it. Each copy retries (same message id, so a stream keeps at most
        one) until publish_timeout; when no copy made it, raises BusUnavailable and
        the caller must not ACK."""
        lane = lane_of(event)
        copies = [asyncio.ensure_future(self._publish(lane, name, root, event)) for name, root in streams_of(lane, self.settings.alarm_copies)]
        if len(copies) == 1:
            return await copies[0]
        pending, failure = set(copies), None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None:
                        # The device may be answered. The other copy goes on by itself
                        # (bounded by publish_timeout); it is what saves the next alarm
                        # if this stream's leader dies now.
                        for other in pending:
                            self._background.add(other)
                            other.add_done_callback(self._copy_done)
                        pending = set()
                        return task.result()
                    failure = task.exception()
            raise failure
        finally:
            for task in pending:                  # cancelled ourselves: take the copies down too
                task.cancel()

    def _copy_done(self, task):
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("second alarm copy not published (the first one was)", extra={"error": repr(task.exception())})

    async def _publish(self, lane, name, root, event):
        js = self.connections[name].jetstream()
        subject, payload = subject_for(event, root), event.to_json().encode()
        s = self.settings
        deadline = time.monotonic() + s.publish_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                ack = await js.publish(subject, payload, timeout=max(0.01, min(s.publish_attempt, remaining)),
                                       stream=name, headers={MSG_ID: event.dedup_key})
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                # No responders while a stream elects a leader, a timeout while the
                # connection moves to another node, "stream full": all may pass.
                if time.monotonic() + 0.05 >= deadline:
                    self._count("jifang_bus_publish_failed_total", lane)
                    raise BusUnavailable("event not durable on %s after %d attempts: %r" % (name, attempt, exc)) from exc
                self._count("jifang_bus_publish_retries_total", lane)
                await asyncio.sleep(min(0.05 * attempt, 0.25))
                continue
            self._count("jifang_bus_duplicate_total" if ack.duplicate else "jifang_bus_published_total", lane)
            return ack

    def _count(self, name, lane):
        if self.metrics is not None:
            self.metrics.inc(name, lane=lane)


class Ingest:
    """The consuming side: one durable pull consumer per stream, each with its own
    loop, committing into the store through the pipeline (Pipeline.commit: group
    commit, alarms first) and acking a message only after that commit returned.

    Several nodes run it on the same durables: JetStream hands each message to one
    of them. A node that dies between commit and ack has its messages delivered
    again after ack_wait; the store's dedup key makes that a no-op."""

    def __init__(self, bus, pipeline, lanes=LANES):
        self.bus = bus
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.lanes = lanes
        self._tasks = []

    def consumer_config(self, lane):
        s = self.bus.settings
        return api.ConsumerConfig(
            durable_name=CONSUMER, ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=s.alarm_ack_wait if lane == LANE_ALARMS else s.ack_wait,
            max_deliver=-1,                       # an alarm is never given up on
            # Bounds what is delivered and not yet committed, across all nodes.
            max_ack_pending=s.ingest_batch * 4)

    async def start(self):
        jsm = self.bus.bulk.jsm()
        streams = [(lane, name) for lane, name, _ in active_streams(self.bus.settings) if lane in self.lanes]
        for lane, name in streams:
            config = self.consumer_config(lane)
            try:
                await jsm.add_consumer(name, config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != 10148:       # "consumer already exists" with another config: take this one
                    raise
                await jsm.delete_consumer(name, CONSUMER)
                await jsm.add_consumer(name, config)
        # Alarms first: their loops start before the bulk lanes have pulled anything.
        for lane, name in streams:
            self._tasks.append(asyncio.create_task(self._consume(lane, name), name="ingest-" + name))
        if LANE_ALARMS in self.lanes and self.bus.settings.alarm_copies > 1 and self.bus.settings.replicas > 1:
            self._tasks.append(asyncio.create_task(self._keep_leaders_apart(), name="bus-leaders"))

    async def stop(self):
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    async def leaders(self, name):
        """(stream leader, consumer leader) of one stream, NATS server names."""
        jsm = self.bus.bulk.jsm()
        stream = await jsm.stream_info(name)
        consumer = await jsm.consumer_info(name, CONSUMER)
        return (stream.cluster.leader if stream.cluster else None,
                consumer.cluster.leader if consumer.cluster else None)

    async def keep_leaders_apart(self, attempts=10):
        """Move the second alarm stream's Raft leaders (stream, consumer) off the nodes
        that lead the first one, so no single NATS node stalls both copies. Returns
        whether they are apart. Asks the leader to step down (a new one is elected
        among the replicas) until the draw lands well; a single node (R1) has nothing
        to spread."""
        alarms = streams_of(LANE_ALARMS, self.bus.settings.alarm_copies)
        if len(alarms) < 2:
            return False
        (first, _), (second, _) = alarms
        nc = self.bus.bulk
        for _ in range(attempts):
            try:
                a, b = await self.leaders(first), await self.leaders(second)
            except ELECTION_ERRORS:                 # right after a step-down or a node loss, for a moment
                await asyncio.sleep(0.5)
                continue
            if self.bus.settings.replicas < 2:
                return False
            if None in a + b:                      # an election is under way
                await asyncio.sleep(0.5)
                continue
            if not set(a) & set(b):
                return True
            subject = ("$JS.API.STREAM.LEADER.STEPDOWN." + second if b[0] in a
                       else "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s" % (second, CONSUMER))
            try:
                await nc.request(subject, b"", timeout=2)
            except ELECTION_ERRORS:                 # the next round looks again
                pass
            await asyncio.sleep(0.5)                  # the election
        return False

    async def _keep_leaders_apart(self):
        # Every node runs this; two nodes stepping the same leader down at once only
        # cost one more election. After a NATS node's death the survivors' leaders
        # may have landed together: this spreads them again within the interval.
        while True:
            try:
                await self.keep_leaders_apart()
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("could not check the alarm streams' leaders", extra={"error": repr(exc)})
            await asyncio.sleep(LEADER_CHECK_INTERVAL)

    async def _consume(self, lane, name):
        nc = self.bus.connections[name]
        batch = self.bus.settings.ingest_batch
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, pending_msgs_limit=batch * 8)
        next_subject = "$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (name, CONSUMER)
        request = json.dumps({"batch": batch, "expires": int(PULL_EXPIRES * 1e9)}).encode()
        slots = asyncio.Semaphore(batch)
        running = set()
        try:
            while True:
                # One pull request at a time; its messages are committed as they
                # arrive (not when the batch is complete), so a lone alarm waits for
                # nothing, and a flood streams through in batches.
                try:
                    await nc.publish(next_subject, request, reply=inbox)
                except nats.errors.Error as exc:   # reconnecting: the client buffers, or refuses while closed
                    log.warning("bus pull not sent", extra={"stream": name, "error": repr(exc)})
                    await asyncio.sleep(PULL_EXPIRES)
                    continue
                ends = time.monotonic() + PULL_EXPIRES + 0.25
                received = 0
                while received < batch:
                    try:
                        msg = await sub.next_msg(timeout=max(0.01, ends - time.monotonic()))
                    except nats.errors.TimeoutError:
                        break           # request expired, or died with its consumer leader: ask again
                    status = msg.headers.get(api.Header.STATUS) if msg.headers else None
                    if status is not None:
                        if status == "100":
                            continue    # idle heartbeat
                        break           # 404 no messages, 408 expired, 409 leader changed: ask again
                    received += 1
                    await slots.acquire()
                    task = asyncio.create_task(self._store(lane, msg))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _t: slots.release())
        finally:
            for task in list(running):
                await cancel_and_wait(task)
            await sub.unsubscribe()

    async def _store(self, lane, msg):
        try:
            event = Event.from_dict(json.loads(msg.data))
            # Checked again here: whoever can publish on the bus is not a receiver.
            self.pipeline.validate(event)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:   # InvalidEvent is a ValueError
            # Not an Event: delivering it again would fail again, and must not hold
            # back the messages behind it.
            log.error("bus message is not an event, dropped", extra={"lane": lane, "subject": msg.subject,
                                                                      "error": repr(exc)})
            self._count("jifang_bus_rejected_total", lane)
            await msg.term()
            return
        if msg.metadata.num_delivered > 1:
            self._count("jifang_bus_redelivered_total", lane)
        try:
            stored = await self.pipeline.commit(event)
        except Exception as exc:
            # Not committed: no ack. Ask for it again shortly rather than after ack_wait.
            log.error("bus message not committed, will be delivered again",
                      extra={"lane": lane, "error": repr(exc)})
            self._count("jifang_bus_commit_failed_total", lane)
            await self._settle(msg.nak(delay=1))
            return
        # The ack goes out only now, after the store's commit returned. Lost, it means
        # one more delivery, which the store's dedup key turns into nothing.
        await self._settle(msg.ack())
        self._count("jifang_bus_ingested_total" if stored is not None else "jifang_bus_ingest_duplicate_total", lane)

    async def _settle(self, coro):
        try:
            await coro
        except nats.errors.Error as exc:
            log.warning("bus ack not sent (the message will be delivered again)", extra={"error": repr(exc)})

    def _count(self, name, lane):
        if self.metrics is not None:
            self.metrics.inc(name, lane=lane)
