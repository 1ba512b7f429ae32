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
counted, and the next frame on the stream is read.
"""
import asyncio
import dataclasses
import logging

from protocols import contactid, dc09
from gateway.event import from_contact_id, now_ms
from gateway.pipeline import InvalidEvent
from protocols.sia_codes import SIA_TO_CONTACT_ID
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.dc09")

# How long after a frame without a time of its own a copy of it counts as a retry.
# A panel retries within seconds to minutes; reusing a sequence number in that time
# would take it 10,000 messages.
RETRY_WINDOW_SECONDS = 600


class Unsupported(Exception):
    """Understood, but not something this receiver turns into events: answered DUH."""


class ReceiverError(Exception):
    """A frame refused with a NAK; `reason` as DC09Error's, plus "account"."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class DC09Receiver:
    def __init__(self, config, pipeline, supervision, metrics):
        self.config = config
        self.pipeline = pipeline
        self.supervision = supervision
        self.metrics = metrics
        self.connections = set()
        self._server = None
        self._udp = None
        self.address = None

    async def start(self, host, port):
        self._server = await asyncio.start_server(self._serve_tcp, host, port)
        self.address = self._server.sockets[0].getsockname()[:2]
        loop = asyncio.get_running_loop()
        self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(self), local_addr=(host, self.address[1]))
        self.metrics.add_gauges(lambda: [("jifang_connections", {}, len(self.connections))])
        log.info("DC-09 receiver listening", extra={"host": host, "port": self.address[1], "transports": "tcp+udp"})

    async def stop(self):
        if self._udp:
            self._udp.close()
            await cancel_and_wait(*self._udp_protocol.tasks)
        if self._server:
            self._server.close()
            for writer in list(self.connections):
                writer.close()
            await self._server.wait_closed()

    async def _serve_tcp(self, reader, writer):
        peer = "%s:%s" % writer.get_extra_info("peername")[:2]
        self.connections.add(writer)
        frames = dc09.FrameReader()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                discarded = frames.discarded
                # Frames that arrived together are committed together (one group commit,
                # in arrival order within a priority) and answered in the order sent.
                responses = await asyncio.gather(*(self.handle_frame(frame, "dc09/tcp", peer)
                                                   for frame in frames.feed(data)))
                for response in responses:
                    if response:
                        writer.write(response)
                await writer.drain()
                if frames.discarded > discarded:
                    log.warning("bytes outside any frame dropped", extra={"peer": peer, "bytes": frames.discarded - discarded})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()

    async def handle_frame(self, frame, source, peer):
        """The bytes to send back for one frame (None: send nothing)."""
        try:
            msg, key = self._decode(frame)
        except ReceiverError as exc:
            return self._nak(exc.reason, str(exc), frame, peer)
        self.metrics.inc("jifang_frames_total", token=msg.token)
        account = msg.account.upper()

        if msg.token == "NULL":
            self.supervision.heard_from(account, link_test=True)
            return dc09.encode(dc09.make_ack(msg), key)
        try:
            events = self._events(msg, frame, source)
        except Unsupported as exc:
            self.metrics.inc("jifang_duhs_total", token=msg.token)
            log.warning("DUH: " + str(exc), extra={"peer": peer, "account": account, "token": msg.token})
            return dc09.encode(dc09.make_duh(msg))
        except dc09.DC09Error as exc:
            return self._nak("format", str(exc), frame, peer)
        try:
            for event in events:
                if not self._dated(msg):
                    event = await self._as_retry_of_recent(event)
                await self.pipeline.submit(event)
        except InvalidEvent as exc:
            return self._nak("format", str(exc), frame, peer)
        except Exception as exc:
            log.error("event not committed, no answer sent (the device will retry)",
                      extra={"peer": peer, "account": account, "error": repr(exc)})
            return None
        return dc09.encode(dc09.make_ack(msg), key)

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
        return msg, (key if msg.encrypted else None)

    def _nak(self, reason, message, frame, peer):
        self.metrics.inc("jifang_naks_total", reason=reason)
        log.warning("NAK: " + message, extra={"peer": peer, "reason": reason, "frame": frame[:120].decode("ascii", "replace")})
        return dc09.encode(dc09.make_nak(dc09.timestamp_now()))

    @staticmethod
    def _dated(msg):
        return msg.timestamp is not None or any(letter == "H" for letter, _ in msg.xdata)

    async def _as_retry_of_recent(self, event):
        """A frame with no time of its own (many panels send plain frames without one)
        is dated on arrival, so a retry after a lost ACK would look new. Within the
        retry window, the same account, sequence, code, zone and qualifier is that
        retry: it takes the first copy's device time, hence the same dedup key."""
        since = event.received_at_ms - RETRY_WINDOW_SECONDS * 1000
        earlier = await self.pipeline.store.recent_device_time(
            event.account, event.sequence, event.code, event.zone, event.qualifier, since)
        return event if earlier is None else dataclasses.replace(event, device_time=earlier)

    def _events(self, msg, frame, source):
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
        account = msg.account.upper()
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


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver):
        self.receiver = receiver
        self.transport = None
        self.tasks = set()

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        task = asyncio.create_task(self._handle(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, data, addr):
        peer = "%s:%s" % addr[:2]
        for frame in dc09.FrameReader().feed(data):
            response = await self.receiver.handle_frame(frame, "dc09/udp", peer)
            if response and self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(response, addr)
