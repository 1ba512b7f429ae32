"""Receiving peers for the firmware's reports, run in a background thread.

SiaReceiver wraps pysiaalarm (an independent DC-09 receiver, the one Home Assistant
uses): note its key is given as text characters (our key_from_text convention).
"""
import asyncio
import threading
import time

from gateway.cluster_local import free_port   # the product's, not tests/support's: hil ships without tests/


class SiaReceiver:
    def __init__(self, account="1234", key_text=None, port=None, udp=False):
        self.account = account
        self.key_text = key_text
        self.port = port or free_port()
        self.udp = udp
        self.events = []
        self._cond = threading.Condition()
        self._loop = None
        self._thread = None
        self._stop = None

    # each event: dict(token, code (Contact ID int or None), q, partition, zone, raw)
    async def _on_event(self, event):
        adm = event.event_type is not None and event.event_qualifier is not None
        rec = {"token": str(getattr(event.message_type, "value", event.message_type)),
               "raw": event.full_message, "sequence": event.sequence,
               "timestamp": event.timestamp, "x_data": event.x_data, "sia_code": event.code,
               "q": int(event.event_qualifier) if adm else None,
               "code": int(event.event_type) if adm else None,
               "partition": int(event.partition) if adm else None,
               "zone": int(event.ri) if adm else None,
               "at": time.monotonic()}
        with self._cond:
            self.events.append(rec)
            self._cond.notify_all()

    def start(self):
        from pysiaalarm import CommunicationsProtocol, SIAAccount
        from pysiaalarm.aio import SIAClient
        ready = threading.Event()

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            acct = SIAAccount(self.account, self.key_text)
            proto = CommunicationsProtocol.UDP if self.udp else CommunicationsProtocol.TCP
            client = SIAClient("127.0.0.1", self.port, [acct], self._on_event, protocol=proto)
            self._stop = asyncio.Event()

            async def main():
                await client.async_start()
                ready.set()
                await self._stop.wait()
                await client.async_stop()
            loop.run_until_complete(main())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("pysiaalarm receiver did not start")
        return self

    def stop(self):
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5)

    def wait_for(self, pred, timeout=10):
        """First event (in arrival order) for which pred(event) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching event within %ss; got %r" % (
                        timeout, [(e["token"], e["q"], e["code"], e["zone"]) for e in self.events]))
                self._cond.wait(min(left, 0.1))

    def codes(self):
        with self._cond:
            return [(e["q"], e["code"], e["partition"], e["zone"]) for e in self.events if e["code"] is not None]


class Dc09UdpReceiver:
    """A minimal DC-09 receiver over UDP built on protocols.dc09 (pysiaalarm's UDP
    server fails on Python 3.11: it asserts the transport type). Same event dicts as
    SiaReceiver."""

    def __init__(self, account="1234", key=None, port=None):
        import socket
        self.key = key
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.events = []
        self._cond = threading.Condition()
        self._run = True
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _loop(self):
        import socket
        from protocols import dc09
        while self._run:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                msg = dc09.decode(data, self.key)
            except dc09.DC09Error:
                self.sock.sendto(dc09.encode(dc09.make_nak()), addr)
                continue
            self.sock.sendto(dc09.encode(dc09.make_ack(msg), self.key), addr)
            rep = msg.contact_id() if msg.token == "ADM-CID" else None
            rec = {"token": msg.token, "raw": data, "sequence": msg.seq, "timestamp": msg.timestamp,
                   "x_data": msg.xdata, "q": rep.qualifier if rep else None,
                   "code": rep.code if rep else None, "partition": rep.partition if rep else None,
                   "zone": rep.zone if rep else None, "at": time.monotonic()}
            with self._cond:
                self.events.append(rec)
                self._cond.notify_all()

    def stop(self):
        self._run = False
        self._thread.join(2)
        self.sock.close()

    wait_for = SiaReceiver.wait_for
    codes = SiaReceiver.codes
