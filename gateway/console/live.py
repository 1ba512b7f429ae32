"""GET /api/live: a WebSocket that pushes queue and device changes as they happen.

Messages (JSON): {"type": "alarm", "item": {...}} (new or changed queue item),
{"type": "alarm-disposed", "item": {"id", "outcome", "operator"}},
{"type": "device", "item": {...}}. A client loads the queue and the devices once
over HTTP and applies these on top; after a reconnect it loads again.

Each client gets only what its role may read. Opening the feed is registered in
the access register; the pushes themselves are not (they are the same records
the registered page load showed, kept current). The feed closes when the
session ends (logout, expiry, disabled account): the session is checked again
before each push.

The Origin header must match the console's own host: WebSockets are not covered
by SameSite cookies, and without this check any web page could open the feed
with the operator's cookie.
"""
import asyncio
import json
import logging
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from gateway.console import auth
from gateway.console.keys import CONSOLE, USER
from gateway.console.roles import allowed

log = logging.getLogger("jifang.console")

PERMISSION_FOR = {"alarm": "queue.read", "alarm-disposed": "queue.read", "device": "devices.read"}
MAX_BACKLOG = 1000       # a client this far behind is disconnected; it reloads on reconnect


def add_routes(app):
    app.router.add_get("/api/live", live)


class Client:
    def __init__(self, ws, user):
        self.ws = ws
        self.user = user
        self.outbox = asyncio.Queue()


class Hub:
    def __init__(self):
        self.clients = set()

    def publish(self, kind, payload):
        """Called by the live state for every change; never blocks."""
        message = json.dumps({"type": kind, "item": payload})
        for client in list(self.clients):
            if allowed(client.user["role"], PERMISSION_FOR[kind]):
                if client.outbox.qsize() >= MAX_BACKLOG:
                    client.outbox.put_nowait(None)
                else:
                    client.outbox.put_nowait(message)

    async def close(self):
        for client in list(self.clients):
            client.outbox.put_nowait(None)
            await client.ws.close(code=1001, message=b"console shutting down")


def same_origin(request):
    origin = request.headers.get("Origin")
    if origin is None:
        return True           # not a browser: no ambient cookie was sent on someone else's behalf
    return urlsplit(origin).netloc == request.host


async def _send(client, session_key, ctx):
    while True:
        message = await client.outbox.get()
        if message is None or await auth.active_session(ctx, session_key) is None:
            break
        await client.ws.send_str(message)
    await client.ws.close()


@auth.logged_in
async def live(request):
    ctx = request.app[CONSOLE]
    if not same_origin(request):
        raise web.HTTPForbidden(text='{"error": "cross-origin WebSocket refused"}', content_type="application/json")
    role = request[USER]["role"]
    if not any(allowed(role, p) for p in set(PERMISSION_FOR.values())):
        raise web.HTTPForbidden(text='{"error": "your role (%s) has no live feed"}' % role,
                                content_type="application/json")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    client = Client(ws, request[USER])
    ctx.hub.clients.add(client)
    await ctx.register(request, "view", "live feed of queue and device changes", "live monitoring")
    sender = asyncio.create_task(_send(client, request[USER]["session_key"], ctx))
    try:
        async for msg in ws:          # the browser sends nothing we act on; this waits for the close
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        ctx.hub.clients.discard(client)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws
