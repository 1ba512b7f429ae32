"""HTTP webhook forwarder: POSTs each event as JSON; any 2xx confirms delivery.

The receiver authenticates the body with the shared secret:
    X-Jifang-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
The body carries `id` (the event's row id here) and `gateway` (our name), which
together identify the event: a receiver can dedupe retries on them, or on the
event's own dedup_key.
"""
import hashlib
import hmac
import json

from gateway.sinks.forwarder import DeliveryError, Forwarder, Rejected

SIGNATURE_HEADER = "X-Jifang-Signature"


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_for(stored, gateway_name):
    payload = {"id": stored.id, "gateway": gateway_name, "dedup_key": stored.event.dedup_key,
               "priority": stored.event.priority, "event": stored.event.to_dict()}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()


class WebhookForwarder(Forwarder):
    def __init__(self, spec, outbox, metrics, gateway_name):
        super().__init__(spec, outbox, metrics)
        self.gateway_name = gateway_name
        self.session = None

    async def deliver(self, stored):
        import aiohttp
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = body_for(stored, self.gateway_name)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.spec.secret, body)}
        try:
            async with self.session.post(self.spec.url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return
                if response.status in (400, 409, 410, 422):
                    raise Rejected("HTTP %d" % response.status)
                raise DeliveryError("http_%d" % response.status)
        except aiohttp.ClientError as exc:
            raise DeliveryError("connection", str(exc))

    async def close(self):
        if self.session is not None:
            await self.session.close()
            self.session = None
