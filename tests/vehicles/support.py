"""Shared pieces for the vehicle tests: a registry, a JT/T 808 center on a free
loopback port, and an in-memory submit that records events (for tests that do
not need the real pipeline)."""
import contextlib

from gateway.vehicles.registry import Registry, Vehicle
from gateway.vehicles.server import JT808Server
from gateway.vehiclesim import Terminal
from tests.gateway.helpers import wait_for

SECRET = "test-secret-not-for-production"   # [jt808] auth_secret in configs (accepted, unused)
ESCORT = Vehicle(phone="13800000001", plate="粤B12345", kind="escort")
HAZMAT = Vehicle(phone="13800000002", plate="粤B99999", kind="hazmat", terminal_id="HZ00002")
FLEET = (ESCORT, HAZMAT)

__all__ = ["Recorder", "center", "terminal", "wait_for", "SECRET", "ESCORT", "HAZMAT", "FLEET"]


class Recorder:
    """submit() that keeps every event, like a pipeline that always commits."""

    def __init__(self):
        self.events = []

    async def submit(self, event):
        self.events.append(event)
        return event

    def of(self, code=None, account=None):
        return [e for e in self.events if (code is None or e.code == code) and (account is None or e.account == account)]


@contextlib.asynccontextmanager
async def center(submit, vehicles=FLEET, port=0, registry=None, **kwargs):
    server = JT808Server(registry or Registry(vehicles), submit, **kwargs)
    server.test_codes = {}               # phone -> code, so a later terminal() logs in as the same terminal
    await server.start("127.0.0.1", port)
    try:
        yield server
    finally:
        await server.stop()
        server.registry.close()


@contextlib.asynccontextmanager
async def terminal(server, vehicle, version=2013, login=True, **kwargs):
    """A terminal of `vehicle`, logged in (or only connected). Terminals of one vehicle
    share the code its first registration got, as one physical terminal does across
    reconnections."""
    kwargs.setdefault("terminal_id", vehicle.terminal_id or "T-%s" % vehicle.phone[-4:])
    codes = getattr(server, "test_codes", {})
    kwargs.setdefault("auth_code", codes.get(vehicle.phone))
    t = Terminal(vehicle.phone, vehicle.plate, version=version, **kwargs)
    if login:
        codes[vehicle.phone] = await t.login("127.0.0.1", server.port)
    else:
        await t.connect("127.0.0.1", server.port)
    try:
        yield t
    finally:
        await t.close()
