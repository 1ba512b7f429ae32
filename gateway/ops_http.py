"""/healthz and /metrics on aiohttp.

/healthz answers 200 {"status": "ok", ...} while the store answers, every
forwarder has either nothing queued or its upstream reachable, and no connection
limit refused clients in the last minute (gateway/netlimits.py); otherwise 503
{"status": "degraded", ...} naming what is wrong, for a load balancer or a watchdog.

The listener is netlimits' (ops_limits()): a few connections, a few per address, a
reserve for clients that made a valid request before (the monitoring system), and a
lifetime bound, so a flood of idle or trickling connections at this port can neither
take the process's file descriptors nor keep the monitor out.

Both say things an outsider should not learn (how many panels are connected, which
NAK reasons an attack produces, forwarder names): with `[http] token` set they answer
only requests carrying `Authorization: Bearer <token>`. Bound to anything but a
loopback address without a token, the gateway says so at start-up.
"""
import hmac
import ipaddress
import json
import logging

from aiohttp import web

from gateway import netlimits

log = logging.getLogger("jifang.ops")


def ops_limits():
    """A monitor and a scraper or two use this port: 64 connections, 8 per address
    not yet known, 16 kept for addresses that made a valid request, each connection
    closed after 30 s (a scraper's keep-alive connection is opened again at no cost)."""
    return netlimits.Limits(max_connections=64, max_per_address=8, reserved=16, max_lifetime=30.0)


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False       # a name other than localhost, or "" / "0.0.0.0"-like wildcards


class OpsServer:
    def __init__(self, gateway):
        self.gateway = gateway
        self.runner = None
        self.listener = None
        self.address = None

    async def start(self, host, port):
        token = self.gateway.config.http_token
        if not token and not is_loopback(host):
            log.warning("/metrics and /healthz are served on a non-loopback address without a token: "
                        "anyone who can reach it reads them",
                        extra={"listen": "%s:%d" % (host, port),
                               "fix": 'set [http] token = "..." (sent as Authorization: Bearer ...), '
                                      'or listen on 127.0.0.1'})
        app = web.Application(middlewares=([self._require_token] if token else []) + [self._known])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.listener = await netlimits.serve_protocol(self.runner.server, host, port, name="ops",
                                                       limits=ops_limits())
        self.address = self.listener.address
        self.gateway.metrics.add_gauges(self.listener.samples)

    @web.middleware
    async def _known(self, request, handler):
        """A request that got this far (past the token, when there is one) makes its
        address known: it may use the reserve when a flood fills the rest."""
        response = await handler(request)
        self.listener.known(request.transport)
        return response

    @web.middleware
    async def _require_token(self, request, handler):
        expected = "Bearer " + self.gateway.config.http_token
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected.encode()):
            return web.Response(status=401, text="token required", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    async def stop(self):
        if self.listener is not None:
            await self.listener.close()
        if self.runner:
            await self.runner.cleanup()

    async def healthz(self, request):
        problems = []
        try:
            await self.gateway.store.events(after=10**18)
        except Exception as exc:
            problems.append("store: %r" % exc)
        forwarders = {}
        for fw in self.gateway.forwarders:
            depth = fw.outbox.depth()
            forwarders[fw.name] = {"queued": depth, "oldest_s": round(fw.outbox.oldest_age(), 1),
                                   "connected": fw.connected}
            if self.gateway.leases is not None:      # cluster: only the lease holder forwards
                forwarders[fw.name]["lease_held"] = self.gateway.leases.held("forwarder:" + fw.name)
            if depth and not fw.connected:
                problems.append("forwarder %s: %d queued, upstream unreachable" % (fw.name, depth))
        problems += self.gateway.degraded()      # connection limits refusing clients lately
        body = {"status": "degraded" if problems else "ok", "gateway": self.gateway.config.name,
                "problems": problems, "forwarders": forwarders}
        return web.Response(status=503 if problems else 200, text=json.dumps(body), content_type="application/json")

    async def metrics(self, request):
        return web.Response(text=self.gateway.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type": "text/plain; version=0.0.4"})
