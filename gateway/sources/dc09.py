"""SIA DC-09 receiver: TCP and UDP on the same port, frames -> Events.

What each frame gets back (the answers the standard defines):
  ACK  the event is durably committed (or was already: a retry), or a NULL link test
  NAK  (with the receiver's time) CRC, length or format fault, timestamp outside the
       window, wrong key / undecryptable, unknown account, unencrypted frame for an
       account that has a key
  DUH  understood but not handled here: RSP/XNM and other tokens, SIA-DCS codes
       outside protocols/sia_codes.py
  none the store failed: the device keeps the event and retries, which is safer than
       any answer that could make it drop it

Unknown account -> NAK (the choice DC-09 leaves open; pysiaalarm does the same): a DUH
tells the panel to give up on the event, a NAK makes it retry and show a
communication fault, so a mis-provisioned panel is noticed instead of silently losing
alarms.

A bad frame never closes the connection: it is answered, logged with its reason,
counted, and the next frame on the stream is read. What does close it is a limit
(gateway/netlimits.py, [receiver] keys): no complete authenticated frame within
first_frame_timeout_seconds of connecting, half a frame left that long, nothing
authenticated for idle_timeout_seconds, or answers left unread past max_output_bytes.
Connections past max_connections (with reserved_connections kept for addresses that
authenticated before) or past max_connections_per_address are refused at accept; UDP
datagrams past udp_max_in_flight are dropped. Only authenticated frames count as
progress: frames that get NAKs, and replays, keep no connection open.

Only the encrypted part of an encrypted frame is trusted (DESIGN.md, "Trust only what
is authenticated"): the clear header (sequence, receiver, prefix, account) can be
rewritten by anyone on the path without breaking the CRC, since the CRC is not a MAC.
  - the account stored is the `#acct` inside the encrypted data; a header account that
    disagrees with it is refused (NAK, reason "account_mismatch"). Under a shared key
    (the "*" peering entry) an event whose encrypted data names no account is refused
    too (reason "account_unauthenticated"): nothing then binds it to the header's
    account. With a device's own key the key itself names the account.
  - a message seen again within the timestamp window is a replay (see ReplayCache):
    ACKed, so a panel retrying the very same bytes stops, and neither stored nor
    forwarded again, whatever its clear sequence number says.
"""
import asyncio
import binascii
import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict

from protocols import contactid, dc09
from gateway import netlimits
from gateway.event import from_contact_id, now_ms
from gateway.pipeline import InvalidEvent
from protocols.sia_codes import SIA_TO_CONTACT_ID
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.dc09")

# How long after a frame without a time of its own a copy of it counts as a retry.
# A panel retries within seconds to minutes; reusing a sequence number in that time
# would take it 10,000 messages.
RETRY_WINDOW_SECONDS = 600


# Replay cache entries kept at most (see ReplayCache); [receiver] replay_cache_size.
DEFAULT_REPLAY_CACHE_SIZE = 65536


class ReplayCache:
    """The authenticated messages recently committed, to tell a replay from a new
    message. An encrypted message is accepted only while its timestamp is within
    [now - behind, now + ahead], so an entry is needed for ahead + behind seconds
    after it is first seen, and no longer: past that the timestamp check refuses
    the copy anyway.

    Each message is entered under two digests:
      - of the ciphertext (binary, so rewriting the hex in lower case changes nothing);
      - of what decryption gave: token, data, extended data, timestamp. AES-CBC is
        malleable: prepending any 16-byte block to the ciphertext, or changing bytes
        of the first block that only hide the random pad, makes a different
        ciphertext that decrypts to the same message (the receiver discards the pad).
        The ciphertext digest alone would take that for a new message.
    A message whose data names no account (a NULL link test) also has its clear
    account and sequence in the second digest: two panels under one shared key, or
    one panel link-testing twice in a second, send identical encrypted NULLs. So a
    NULL replayed through the CBC trick under a new sequence is not caught; the most
    it can do is make an account look heard from up to the window (60 s) later than
    it was, which the genuine link test had already proved.

    An entry counts only once its message is committed: while the first copy is in
    flight a second copy waits for its outcome, and if the first was not committed
    (store failure, NAK) the entry is dropped, so the retry is handled as new. That
    keeps "ACK only after commit" true for a panel resending the very same bytes.

    Bounded to `size` entries (each about 250 bytes): past it the oldest is evicted
    and counted. Eviction can only let an old copy through to the store's own
    duplicate check (account, sequence, device time, code, zone), never lose an
    alarm: a full cache refuses nothing."""

    def __init__(self, size, lifetime, clock=time.monotonic):
        self.size = size
        self.lifetime = lifetime
        self.clock = clock
        self.evicted = 0
        self._entries = OrderedDict()     # digest -> entry [expires, future or True]

    def __len__(self):
        return len(self._entries)

    @staticmethod
    def digests(msg, frame, data_account):
        start = frame.find(b"[", 7)      # after the header (a binary CRC may be b"[")
        cipher = binascii.unhexlify(bytes(frame[start + 1:-1]))
        content = repr((msg.token, msg.data, tuple(msg.xdata), tuple(msg.timestamp),
                        None if data_account else (msg.account.upper(), msg.seq)))
        return (b"c" + hashlib.sha256(cipher).digest(),
                b"m" + hashlib.sha256(content.encode()).digest())

    def _prune(self):
        now = self.clock()
        entries = self._entries
        # Entries live a fixed time from insertion: insertion order is expiry order.
        while entries:
            digest, entry = next(iter(entries.items()))
            if entry[0] > now:
                break
            del entries[digest]

    async def claim(self, digests):
        """None when the message was already committed (a replay); else a claim to
        settle(committed) once the message is handled."""
        while True:
            self._prune()
            entry = next((self._entries[d] for d in digests if d in self._entries), None)
            if entry is None:
                entry = [self.clock() + self.lifetime, asyncio.get_running_loop().create_future()]
                for d in digests:
                    self._entries[d] = entry
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
                    self.evicted += 1
                return _Claim(self, digests, entry)
            if entry[1] is True:
                return None
            await asyncio.shield(entry[1])   # the first copy is in flight: its outcome decides

    def _settle(self, digests, entry, committed):
        future = entry[1]
        if committed:
            entry[1] = True
        else:
            for d in digests:
                if self._entries.get(d) is entry:
                    del self._entries[d]
        future.set_result(committed)


class _Claim:
    def __init__(self, cache, digests, entry):
        self.cache, self.digests, self.entry = cache, digests, entry

    def settle(self, committed):
        self.cache._settle(self.digests, self.entry, committed)


def data_account(data):
    """The account a data block names (`#1234|...`), or None."""
    if data.startswith("#"):
        bar = data.find("|")
        if bar > 1:
            return data[1:bar]
    return None


class Unsupported(Exception):
    """Understood, but not something this receiver turns into events: answered DUH."""


class ReceiverError(Exception):
    """A frame refused with a NAK; `reason` as DC09Error's, plus "account"."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class DC09Receiver:
    def __init__(self, config, port, metrics):
        self.config = config
        self.port = port                # gateway.sources.SourcePort: all it uses of the gateway
        self.metrics = metrics
        self._listener = None
        self._udp = None
        self.address = None
        self.udp_limiter = netlimits.ConnectionLimiter(
            "dc09/udp", config.udp_limits.max_connections, config.udp_limits.max_per_address,
            config.udp_limits.reserved, config.udp_limits.known_addresses, config.udp_limits.degraded_for)
        self.replays = ReplayCache(config.replay_cache_size,
                                   config.timestamp_ahead + config.timestamp_behind + 1)

    @property
    def connections(self):
        return self._listener.connections if self._listener is not None else set()

    async def start(self, host, port):
        limits = self.config.receiver_limits
        # Descriptors for every connection allowed, plus the store, the other listeners,
        # the forwarders' connections and the console's.
        jt808 = self.config.vehicles.jt808 if self.config.vehicles is not None else None
        needed = limits.max_connections + 512 + (jt808.net_limits.max_connections if jt808 is not None else 0)
        netlimits.check_file_limit(needed, "receiver.max_connections + jt808.max_connections")
        self._listener = await netlimits.serve(self._serve_tcp, host, port, name="dc09", limits=limits)
        self.address = self._listener.address
        loop = asyncio.get_running_loop()
        self._udp, self.udp_protocol = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(self), local_addr=(host, self.address[1]))
        self.metrics.add_gauges(lambda: [("jifang_connections", {}, len(self.connections)),
                                         ("jifang_dc09_replay_cache_entries", {}, len(self.replays)),
                                         ("jifang_dc09_replay_evictions_total", {}, self.replays.evicted)])
        self.metrics.add_gauges(self._listener.samples)
        self.metrics.add_gauges(self.udp_limiter.samples)
        log.info("DC-09 receiver listening", extra={"host": host, "port": self.address[1], "transports": "tcp+udp"})

    def degraded(self):
        """Limits that refused clients lately (for /healthz)."""
        return (self._listener.degraded() if self._listener else []) + self.udp_limiter.degraded()

    async def stop(self):
        if self._udp:
            self._udp.close()
            await cancel_and_wait(*self.udp_protocol.tasks)
        if self._listener:
            await self._listener.close()

    async def _serve_tcp(self, conn):
        frames = dc09.FrameReader()
        authenticated = proven = 0

        def on_authenticated(encrypted):
            nonlocal authenticated, proven
            authenticated += 1
            proven += encrypted
            conn.authenticated()

        while True:
            data = await conn.read(4096)
            if not data:
                break
            discarded = frames.discarded
            authenticated = proven = 0
            batch = frames.feed(data)
            # Frames that arrived together are committed together (one group commit,
            # in arrival order within a priority) and answered in the order sent.
            responses = await asyncio.gather(*(self.handle_frame(frame, "dc09/tcp", conn.peer,
                                                                 on_authenticated=on_authenticated)
                                               for frame in batch))
            conn.progress(authenticated, pending=bool(frames.buf))
            if frames.discarded > discarded:
                log.warning("bytes outside any frame dropped", extra={"peer": conn.peer, "bytes": frames.discarded - discarded})
            answer = b"".join(r for r in responses if r)
            if answer and not await conn.send(answer):
                break
            # Frames only the key could have made are never slowed down; anyone can
            # make the others, as fast as the receiver answers them.
            await conn.throttle(len(batch) - proven)

    async def handle_frame(self, frame, source, peer, nak_budget=None, on_authenticated=None):
        """The bytes to send back for one frame (None: send nothing). `nak_budget`: a
        NakBudget, the bytes NAKs may take (UDP, see _nak). `on_authenticated()` is
        called when the frame proved to come from a known device (decoded, known
        account, right key, timestamp in the window, not a replay): its source
        address may then use the connections reserved for known clients. Its
        argument says whether the proof was the encryption (a plain-text frame
        proves only that its sender knows an account)."""
        try:
            msg, key, account = self._decode(frame)
        except ReceiverError as exc:
            return self._nak(exc.reason, str(exc), frame, peer, nak_budget)
        self.metrics.inc("jifang_frames_total", token=msg.token)
        if not msg.encrypted:
            if on_authenticated is not None:
                on_authenticated(False)
            return (await self._handle(msg, key, account, frame, source, peer, nak_budget))[0]
        claim = await self.replays.claim(ReplayCache.digests(msg, frame, data_account(msg.data)))
        if claim is not None and on_authenticated is not None:
            on_authenticated(True)
        if claim is None:
            self.metrics.inc("jifang_dc09_replays_total", token=msg.token)
            if msg.token != "NULL":     # an event received again and recorded once, as a retry is
                self.metrics.inc("jifang_events_duplicate_total", source=source)
            log.warning("replayed message ACKed as a duplicate, not recorded again",
                        extra={"peer": peer, "account": account, "token": msg.token, "seq": msg.seq})
            return dc09.encode(dc09.make_ack(msg), key)
        committed = False
        try:
            response, committed = await self._handle(msg, key, account, frame, source, peer, nak_budget)
            return response
        finally:
            claim.settle(committed)

    async def _handle(self, msg, key, account, frame, source, peer, nak_budget):
        """(answer, committed) for a decoded, authenticated message."""
        if msg.token == "NULL":
            self.port.heard_from(account, link_test=True)
            return dc09.encode(dc09.make_ack(msg), key), True
        try:
            events = self._events(msg, account, frame, source)
        except Unsupported as exc:
            self.metrics.inc("jifang_duhs_total", token=msg.token)
            log.warning("DUH: " + str(exc), extra={"peer": peer, "account": account, "token": msg.token})
            return dc09.encode(dc09.make_duh(msg)), False
        except dc09.DC09Error as exc:
            return self._nak("format", str(exc), frame, peer, nak_budget), False
        try:
            for event in events:
                if not self._dated(msg):
                    event = await self._as_retry_of_recent(event)
                await self.port.submit(event)
        except InvalidEvent as exc:
            return self._nak("format", str(exc), frame, peer, nak_budget), False
        except Exception as exc:
            log.error("event not committed, no answer sent (the device will retry)",
                      extra={"peer": peer, "account": account, "error": repr(exc)})
            return None, False
        return dc09.encode(dc09.make_ack(msg), key), True

    def _decode(self, frame):
        asked = {}

        def key_for(account):
            asked["device"] = self.config.device(account.upper())
            return self.config.key_for(account.upper())

        try:
            msg = dc09.decode(frame, key_for)
        except dc09.DC09Error as exc:
            if exc.reason == "key" and asked.get("device", True) is None:
                raise ReceiverError("account", "unknown account (encrypted frame)")
            raise ReceiverError(exc.reason, exc.message)
        if self.config.device(msg.account.upper()) is None:
            raise ReceiverError("account", "unknown account %s" % msg.account)
        key = self.config.key_for(msg.account.upper())
        if key is not None and not msg.encrypted:
            raise ReceiverError("key", "account %s has a key but the frame is not encrypted" % msg.account)
        if msg.timestamp is not None:
            try:
                dc09.check_timestamp(msg.timestamp, dc09.timestamp_now(),
                                     self.config.timestamp_ahead, self.config.timestamp_behind)
            except dc09.DC09Error as exc:
                raise ReceiverError("timestamp", exc.message)
        return msg, (key if msg.encrypted else None), self._account(msg)

    def _account(self, msg):
        """The account the message is recorded under: for an encrypted message, the
        one its encrypted data names (see the module's docstring)."""
        header = msg.account.upper()
        if not msg.encrypted:
            return header
        named = data_account(msg.data)
        if named is not None:
            if named.upper() != header:
                raise ReceiverError("account_mismatch", "clear header account %s, encrypted data account %s"
                                    % (msg.account, named))
            return header
        own = self.config.devices.get(header)
        if msg.token != "NULL" and (own is None or own.key is None):
            raise ReceiverError("account_unauthenticated", "encrypted under the shared key with no #account "
                                "in the encrypted data: header account %s is not authenticated" % msg.account)
        return header

    def _nak(self, reason, message, frame, peer, budget=None):
        """The NAK, with the receiver's time. Over UDP (`budget` = bytes of the
        datagram left to answer with) a NAK never carries more bytes than the
        datagram that caused it: a NAK answers a datagram nobody authenticated, whose
        source address may be forged, and a bigger answer would make the receiver an
        amplifier for floods aimed at that address. When the NAK with the time does
        not fit, the one without it (27 bytes) is sent; when that does not fit
        either, nothing (the panel retries, as after a lost datagram)."""
        self.metrics.inc("jifang_naks_total", reason=reason)
        log.warning("NAK: " + message, extra={"peer": peer, "reason": reason, "frame": frame[:120].decode("ascii", "replace")})
        nak = dc09.encode(dc09.make_nak(dc09.timestamp_now()))
        if budget is not None:
            if len(nak) > budget.left:
                self.metrics.inc("jifang_dc09_udp_naks_shrunk_total")
                nak = dc09.encode(dc09.Message("NAK", 0, "0", "0", "0", "", None, None))
                if len(nak) > budget.left:
                    return None
            budget.left -= len(nak)
        return nak

    @staticmethod
    def _dated(msg):
        return msg.timestamp is not None or any(letter == "H" for letter, _ in msg.xdata)

    async def _as_retry_of_recent(self, event):
        """A frame with no time of its own (many panels send plain frames without one)
        is dated on arrival, so a retry after a lost ACK would look new. Within the
        retry window, the same account, sequence, code, zone and qualifier is that
        retry: it takes the first copy's device time, hence the same dedup key."""
        since = event.received_at_ms - RETRY_WINDOW_SECONDS * 1000
        earlier = await self.port.recent_device_time(
            event.account, event.sequence, event.code, event.zone, event.qualifier, since)
        return event if earlier is None else dataclasses.replace(event, device_time=earlier)

    def _events(self, msg, account, frame, source):
        """The Events a message carries: one for ADM-CID, one per event for SIA-DCS."""
        if msg.token == "ADM-CID":
            reports = [msg.contact_id()]
        elif msg.token == "SIA-DCS":
            reports = []
            for sia in msg.sia_events():
                if sia["code"] not in SIA_TO_CONTACT_ID:
                    raise Unsupported("SIA code %s not handled" % sia["code"])
                code, qualifier = SIA_TO_CONTACT_ID[sia["code"]]
                reports.append(contactid.Report(msg.account, qualifier, code, sia["partition"] or 0,
                                                (sia["address"] or sia["user"] or 0) % 1000))
        else:
            raise Unsupported("token %s not handled" % msg.token)
        occurred = dict(msg.xdata).get("H")
        if occurred is not None:       # time of occurrence: stable across retries and relays
            device_time = dc09.to_seconds(dc09.parse_timestamp(occurred))
        elif msg.timestamp is not None:
            device_time = dc09.to_seconds(msg.timestamp)
        else:
            device_time = now_ms() // 1000
        raw = frame.decode("ascii", "replace").strip()
        events = []
        for report in reports:
            report.account = account
            events.append(from_contact_id(report, sequence=msg.seq, device_time=device_time, source=source,
                                          raw=raw, position=msg.position()))
        return events


class NakBudget:
    """Bytes of NAK one datagram may still cause, shared by the frames it carries."""

    def __init__(self, left):
        self.left = left


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver):
        self.receiver = receiver
        self.transport = None
        self.tasks = set()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        # Each datagram holds a task until its event is committed: past the in-flight
        # limits it is dropped here (counted), before any work, and the panel retries.
        ticket = self.receiver.udp_limiter.admit(addr[0])
        if ticket is None:
            log.warning("datagram dropped by the in-flight limit", extra={"peer": "%s:%s" % addr[:2]})
            return
        task = asyncio.create_task(self._handle(data, addr, ticket))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, data, addr, ticket):
        peer = "%s:%s" % addr[:2]
        budget = NakBudget(len(data))    # NAK bytes this datagram may cause (see DC09Receiver._nak)
        try:
            for frame in dc09.FrameReader().feed(data):
                response = await self.receiver.handle_frame(frame, "dc09/udp", peer, nak_budget=budget,
                                                            on_authenticated=lambda _: ticket.promote())
                if response and self.transport is not None and not self.transport.is_closing():
                    self.transport.sendto(response, addr)
        finally:
            ticket.release()
