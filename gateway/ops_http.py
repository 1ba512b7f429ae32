"""/healthz and /metrics on aiohttp.

/healthz answers 200 {"status": "ok", ...} while the store answers and every
forwarder has either nothing queued or its upstream reachable; otherwise 503
{"status": "degraded", ...} naming what is wrong, for a load balancer or a watchdog.
"""
import json

from aiohttp import web


class OpsServer:
    def __init__(self, gateway):
        self.gateway = gateway
        self.runner = None
        self.address = None

    async def start(self, host, port):
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.address = self.runner.addresses[0][:2]

    async def stop(self):
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
        body = {"status": "degraded" if problems else "ok", "gateway": self.gateway.config.name,
                "problems": problems, "forwarders": forwarders}
        return web.Response(status=503 if problems else 200, text=json.dumps(body), content_type="application/json")

    async def metrics(self, request):
        return web.Response(text=self.gateway.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type": "text/plain; version=0.0.4"})
