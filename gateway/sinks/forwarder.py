"""The delivery loop every forwarder shares: take the most urgent event from the
outbox, deliver it, and only on confirmation take it off the outbox.

A failed attempt backs off exponentially (retry_initial .. retry_max) and then asks
the outbox again, so an alarm that arrived meanwhile goes before the event that
failed. An event the upstream refuses for good (DC-09 DUH) is logged as an error,
counted, and taken off the outbox: retrying it forever would block every alarm
behind it.
"""
import asyncio
import logging
import time

from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.forward")


class DeliveryError(Exception):
    """This attempt failed; try again later (connection refused, timeout, NAK)."""

    def __init__(self, reason, message=""):
        super().__init__(message or reason)
        self.reason = reason


class Rejected(Exception):
    """The upstream understood the event and will never take it."""


class Forwarder:
    def __init__(self, spec, outbox, metrics):
        self.spec = spec
        self.name = spec.name
        self.outbox = outbox
        self.metrics = metrics
        self.connected = False
        self._task = None
        metrics.add_gauges(lambda: [("jifang_forwarder_connected", {"forwarder": self.name}, int(self.connected))])

    heartbeat_interval = None           # seconds between heartbeat() calls (DC-09 link tests)

    async def deliver(self, stored):
        """Deliver one event; return on confirmation, raise DeliveryError or Rejected."""
        raise NotImplementedError

    async def heartbeat(self):
        """Called every heartbeat_interval seconds, between deliveries."""

    async def _heartbeat(self):
        try:
            await self.heartbeat()
            self.connected = True
        except (DeliveryError, Rejected, OSError, asyncio.TimeoutError) as exc:
            self.connected = False
            reason = getattr(exc, "reason", type(exc).__name__)
            self.metrics.inc("jifang_forward_failures_total", forwarder=self.name, reason="link_test_" + reason)
            log.warning("link test failed", extra={"forwarder": self.name, "reason": reason, "error": str(exc)})

    async def close(self):
        """Release connections."""

    def start(self):
        self._task = asyncio.create_task(self.run(), name="forwarder-" + self.name)

    async def stop(self):
        await cancel_and_wait(self._task)
        await self.outbox.flush()
        await self.close()

    async def run(self):
        backoff = self.spec.retry_initial
        next_heartbeat = time.monotonic() + (self.heartbeat_interval or 0)
        while True:
            if self.heartbeat_interval:
                if time.monotonic() >= next_heartbeat:
                    await self._heartbeat()
                    next_heartbeat = time.monotonic() + self.heartbeat_interval
                    continue
                try:
                    stored = await asyncio.wait_for(self.outbox.next(), next_heartbeat - time.monotonic())
                except asyncio.TimeoutError:
                    continue
            else:
                stored = await self.outbox.next()
            try:
                await self.deliver(stored)
                self.connected = True
                self.metrics.inc("jifang_forwarded_total", forwarder=self.name)
            except Rejected as exc:
                self.metrics.inc("jifang_forward_rejected_total", forwarder=self.name)
                log.error("upstream refused event for good; dropped from this forwarder",
                          extra={"forwarder": self.name, "event_id": stored.id, "account": stored.event.account,
                                 "code": stored.event.code, "error": str(exc)})
            except (DeliveryError, OSError, asyncio.TimeoutError) as exc:
                reason = getattr(exc, "reason", type(exc).__name__)
                self.connected = False
                self.metrics.inc("jifang_forward_failures_total", forwarder=self.name, reason=reason)
                log.warning("delivery failed, retrying", extra={"forwarder": self.name, "event_id": stored.id,
                                                                "reason": reason, "error": str(exc), "retry_in_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.spec.retry_max)
                continue
            except Exception:
                # A bug must not silently stop forwarding: log it loudly and retry.
                self.connected = False
                self.metrics.inc("jifang_forward_failures_total", forwarder=self.name, reason="internal")
                log.exception("forwarder error, retrying", extra={"forwarder": self.name, "event_id": stored.id})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.spec.retry_max)
                continue
            backoff = self.spec.retry_initial
            self.outbox.delivered(stored)
