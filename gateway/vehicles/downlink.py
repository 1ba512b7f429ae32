"""Platform commands to a terminal whose connection another node holds (issue 12).

In cluster mode a terminal is connected to one node, whichever it reached; an
operator's command (0x8203 after a disposal, 0x8300 text, 0x8201 position query,
0x8202 tracking) may start on any node. Each node subscribes, for every terminal
it holds a session for, to the subject

    jifang.downlink.<account>

and a command for a terminal not held here is a NATS request on that subject,
answered by the holder with the terminal's own result. Nobody subscribed means no
node holds the terminal: NATS says so at once (a "no responders" status, which
nats-server sends to clients that speak headers) instead of after the timeout, and
the command is "not delivered", as it is for an offline vehicle on one node.

Why core request/reply and not a JetStream stream: a command is worth sending only
while the terminal is connected and an operator waits for its answer. Queued
durably for an offline vehicle it would reach the terminal hours later, out of
context (the 0x8203 of an alarm disposed long ago); the operator instead sees "not
delivered" at once and acts (the disposal itself is in the log either way).

The subscriptions follow the sessions through one reconcile task, woken by the
server whenever a vehicle gains or loses its session, so a quick logout/login never
leaves them out of order. nats-py subscribes again by itself after a reconnect.
"""
import asyncio
import functools
import json
import logging

import nats.errors

from gateway.bus import subject_token
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.vehicles.downlink")

SUBJECT = "jifang.downlink."
# op -> the keyword arguments it takes (with their JSON types): nothing else is run.
COMMANDS = {
    "acknowledge_alarm": {"alarm": int, "alarm_flow": int},
    "send_text": {"text": str, "flags": int},
    "query_position": {},
    "track": {"interval": int, "validity": int},
    "probe": {},         # does the link held there answer a 0x8201? (a login on another node)
}
TERMINAL_TIMEOUT = 10.0      # what the holder waits for the terminal's answer
MAX_REQUEST = 4096           # bytes of a command (a 0x8300 text is at most ~1 KB)


def subject(account):
    return SUBJECT + subject_token(account)


def check(op, kwargs):
    """The command, refused (ValueError) unless it is one of COMMANDS with its own arguments."""
    allowed = COMMANDS.get(op)
    if allowed is None:
        raise ValueError("unknown command %r" % (op,))
    for key, value in kwargs.items():
        kind = allowed.get(key)
        if kind is None or not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError("command %s: argument %s=%r not allowed" % (op, key, value))
    return op, kwargs


class Downlink:
    """One node's side: answers for the terminals held here, asks for the others."""

    def __init__(self, server, nc, node):
        self.server = server             # the JT808Server of this node
        self.nc = nc                     # a NATS connection (the bus's)
        self.node = node
        self.subscriptions = {}          # account -> nats Subscription
        self._wake = asyncio.Event()
        self._task = None

    async def start(self):
        self.server.on_sessions_changed = self._wake.set
        self.server.remote_probe = self.probe
        self._wake.set()
        self._task = asyncio.create_task(self._reconcile(), name="jt808-downlink")

    async def stop(self):
        self.server.on_sessions_changed = None
        self.server.remote_probe = None
        await cancel_and_wait(self._task)
        for sub in self.subscriptions.values():
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass
        self.subscriptions.clear()

    async def _reconcile(self):
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
            except Exception as exc:     # NATS away: nats-py resubscribes what it has; retry the rest
                log.warning("downlink subscriptions not in step, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _sync(self):
        held = self.server.held()
        for account in list(self.subscriptions):
            if account not in held:
                await self.subscriptions.pop(account).unsubscribe()
        added = {}
        for account in held:
            if account not in self.subscriptions:
                added[account] = await self.nc.subscribe(subject(account), cb=functools.partial(self._command, account))
        if added:
            # subscribe() only queues the SUB: until the server has it, a command from
            # another node would get "no responders" for a terminal that is here.
            await self.nc.flush()
            self.subscriptions.update(added)

    async def _command(self, account, msg):
        """A command from another node for `account`'s terminal, held here."""
        try:
            if len(msg.data) > MAX_REQUEST:
                raise ValueError("command of %d bytes" % len(msg.data))
            request = json.loads(msg.data)
            op, kwargs = check(request.get("op"), request.get("args") or {})
            if not self.server.online(account):
                return       # not held here any more: the holder, if any, answers
            result = await getattr(self.server, op)(account, **kwargs)
            answer = {"result": result, "node": self.node}
        except (ValueError, TypeError, AttributeError) as exc:
            answer = {"error": str(exc), "node": self.node}
        await msg.respond(json.dumps(answer).encode())

    async def probe(self, account):
        """True when another node holds `account`'s session and its link answers
        (JT808Server refuses the login then, as it does on one node)."""
        return await self.request("probe", account, wait=self.server.limits.liveness_probe + 2.0) is True

    async def request(self, op, account, wait=TERMINAL_TIMEOUT + 2.0, **kwargs):
        """Run `op` on the node holding `account`'s terminal: its result, or False
        when no node holds it or the holder did not answer within `wait` seconds."""
        check(op, kwargs)
        data = json.dumps({"op": op, "args": kwargs}).encode()
        try:
            reply = await self.nc.request(subject(account), data, timeout=wait)
        except nats.errors.NoRespondersError:
            return False
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            log.warning("downlink command not answered", extra={"account": account, "op": op})
            return False
        answer = json.loads(reply.data)
        if "error" in answer:
            raise ValueError(answer["error"])
        log.info("downlink command run on another node", extra={"account": account, "op": op,
                                                               "node": answer.get("node")})
        return answer["result"]
