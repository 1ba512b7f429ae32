"""The console as an aiohttp application: `create_app(event_source, console_db_path, dispatch, config)`.

    event_source   gateway.console.source.EventSource (EventSource.from_gateway(gw)
                   for a running gateway): the log to read, the pipeline to listen
                   to, the device registry
    console_db_path  the console's own SQLite file (users, sessions, dispositions,
                   access register ...), e.g. next to the event log
    dispatch       async fn(event_id, operator, note) -> str: hands one alarm to the
                   forwarding side (110 center) and returns its reference; raises to
                   report failure. None: the console offers no dispatch.
    config         gateway.console.settings.ConsoleSettings
    release_vehicle  fn(account, by, reason) -> dict: lets a vehicle's terminal
                   register again (gateway.vehicles.runtime.VehicleCenter.release);
                   None: no JT/T 808 center here.

The app opens its databases and starts listening and escalating on startup, and
closes them on cleanup, so it can run alone (`web.run_app`, tests) or inside the
gateway's process.
"""
import asyncio
import logging
from pathlib import Path

from aiohttp import web

from gateway.console import (
    api_alarms,
    api_devices,
    api_records,
    api_session,
    api_users,
    live,
    pages,
)
from gateway.console.auth import access_middleware, client_of, security_headers_middleware
from gateway.console.db import AsyncConsoleDB
from gateway.console.keys import CONSOLE, REGISTERED, USER
from gateway.console.passwords import HashPool
from gateway.console.settings import ConsoleSettings
from gateway.console.state import QUEUE_MAX_PRIORITY, LiveState, apply_handling, belongs_in_queue
from gateway.logreader import log_reader
from gateway.dburl import is_postgres_url

log = logging.getLogger("jifang.console")

STATIC_DIR = Path(__file__).parent / "static"
ESCALATION_LEASE = "console-escalation"


class Console:
    """Everything a request handler needs, as `request.app[CONSOLE]`."""

    def __init__(self, source, db_path, dispatch, settings, on_disposed=None, release_vehicle=None):
        self.source = source
        self.release_vehicle = release_vehicle
        self.settings = settings
        self.dispatch = dispatch
        self.on_disposed = on_disposed     # async fn(alarm item): e.g. 0x8203 back to a vehicle
        self.background = set()
        self.db = AsyncConsoleDB(db_path)
        self.passwords = HashPool(settings.hash_workers, settings.hash_queue, settings.hash_niceness)
        self.reader = log_reader(source.log_path)
        self.state = LiveState(source.devices)
        self.hub = live.Hub()
        self.state.listeners.append(self.hub.publish)
        self._early = []          # events committed while the state was loading
        self._loaded = False
        self._housekeeper = None
        # Cluster mode: the console's records are shared (PostgreSQL), so what an
        # operator did on another node's console is read back into this node's
        # queue, and escalation runs on the one node holding its lease.
        self.shared = is_postgres_url(db_path)
        self.leases = None
        self.escalating = not self.shared
        self._handling_follower = None
        self.walk_tests_seen = set()      # walk-test row ids already in the state (ours and followed)

    async def start(self):
        await self.db.open()
        await self.reader.open()
        # Listen before loading, so no event committed meanwhile is missed; those
        # already in what we load are skipped by id.
        subscribed = self.source.subscribe(self._on_committed)
        if asyncio.iscoroutine(subscribed) or asyncio.isfuture(subscribed):   # a tail or a follower starting
            await subscribed
        start_id = await self.db.start_event_id(await self.reader.head_id())
        head, last_report, state_events, queueable = await self.reader.snapshot(start_id, QUEUE_MAX_PRIORITY)
        disposed = await self.db.disposed_ids(start_id)
        queued = [e for e in queueable if belongs_in_queue(e) and e["id"] not in disposed]
        handling = await self.db.handling([e["id"] for e in queued])
        walk_tests = await self.db.walk_tests_after(0)
        self.walk_tests_seen = {row["id"] for row in walk_tests}
        self.state.load(last_report, state_events, queued, handling, walk_tests)
        self._loaded = True
        for row in self._early:
            if row["id"] > head:
                self.state.on_event(row)
        self._early = []
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="console-housekeeping")
        if self.shared:
            self._handling_follower = asyncio.create_task(self._follow_handling(), name="console-handling")
            self._start_lease()
        log.info("console started", extra={"queued": len(self.state.queue), "devices": len(self.state.devices)})

    def _start_lease(self):
        from gateway.lease import Leases
        cluster = self.source.cluster
        node = (cluster.node if cluster else "console") + "/console"
        self.leases = Leases(self.db.path, node, poll=cluster.lease_poll if cluster else 1.0,
                             timeout=cluster.lease_timeout if cluster else 2.0)

        async def acquired():
            self.escalating = True

        async def lost():
            self.escalating = False
        self.leases.add(ESCALATION_LEASE, acquired, lost)
        self.leases.start()

    async def stop(self):
        for task in (self._housekeeper, self._handling_follower):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.leases is not None:
            await self.leases.stop()
        if self.source.close is not None:
            await self.source.close()
        await self.reader.close()
        await self.db.close()
        await asyncio.get_running_loop().run_in_executor(None, self.passwords.close)

    def _on_committed(self, row):
        # Runs inside the pipeline's commit loop (or the log tail's): an exception
        # here would stop the gateway committing events, so it is logged and
        # contained, never raised.
        try:
            if self._loaded:
                self.state.on_event(row)
            else:
                self._early.append(row)
        except Exception:
            log.exception("console could not take a committed event", extra={"event_id": row.get("id")})

    async def escalate_due(self):
        """Escalate every queued alarm older than the escalation time (once each)."""
        now = self.settings.now_ms()
        after_s = self.settings.escalate_after_seconds
        due = [item for item in self.state.queue.values()
               if item["escalated_at_ms"] is None and now - item["received_at_ms"] >= after_s * 1000]
        for item in due:
            await self.db.escalate(item["id"], now, after_s)
            if item["id"] in self.state.queue:      # disposed of while we wrote
                self.state.escalated(item["id"], now)
            log.warning("alarm escalated: not disposed of in time",
                        extra={"event_id": item["id"], "account": item["account"], "after_s": after_s})
        return [item["id"] for item in due]

    async def drop_expired_sessions(self):
        """Sessions nobody presents again would otherwise stay in the table forever."""
        s = self.settings
        now = s.now_ms()
        await self.db.drop_expired_sessions(now - int(s.session_idle_minutes * 60_000),
                                            now - int(s.session_max_hours * 3_600_000))

    async def _housekeeping(self):
        interval = max(0.2, min(5.0, self.settings.escalate_after_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            if not self.escalating:        # cluster mode: another node's console escalates
                continue
            try:
                await self.escalate_due()
                await self.drop_expired_sessions()
            except Exception as exc:
                log.error("console housekeeping failed", extra={"error": repr(exc)})

    async def refresh_handling(self):
        """Cluster mode: fold what operators did on other nodes' consoles (takes,
        assignments, dispatches, escalations, disposals; walk tests started or
        ended) into this node's queue and device states.
        Reads the handling of the alarms queued here: a bounded set (the open
        alarms), whatever the order in which other nodes' rows were committed."""
        await self._refresh_walk_tests()
        ids = list(self.state.queue)
        if not ids:
            return
        handling = await self.db.handling(ids)
        for event_id, done in handling.items():
            item = self.state.queue.get(event_id)
            if item is None:
                continue
            d = done["disposition"]
            if d is not None:
                self.state.disposed(event_id, {"id": event_id, "outcome": d["outcome"], "note": d["note"],
                                               "operator": d["operator"], "at_ms": d["at_ms"]})
                continue
            before = (item["assignee"], item["assigned_at_ms"], item["escalated_at_ms"], len(item["dispatches"]))
            apply_handling(item, done)
            if (item["assignee"], item["assigned_at_ms"], item["escalated_at_ms"], len(item["dispatches"])) != before:
                self.state._emit("alarm", item)

    # Ids are drawn at insert, rows become visible at commit: a row of another node
    # may appear below the highest id seen. Reading back this many ids below it
    # (walk tests are a handful a day) catches those; the ids seen skip the rest.
    WALK_TEST_LOOKBACK = 64

    async def _refresh_walk_tests(self):
        mark = max(self.walk_tests_seen, default=0) - self.WALK_TEST_LOOKBACK
        for row in await self.db.walk_tests_after(max(0, mark)):
            if row["id"] not in self.walk_tests_seen:
                self.walk_tests_seen.add(row["id"])
                self.state.walk_test(row["account"], row["action"], row["username"], row["at_ms"])

    async def _follow_handling(self):
        interval = max(0.05, self.settings.live_poll_ms / 1000)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_handling()
            except Exception as exc:       # the database restarting: read again at the next round
                log.warning("console could not read the shared alarm handling", extra={"error": repr(exc)})

    async def register(self, request, action, what, purpose, records=0):
        """Write one entry in the access register (who, when, what, why)."""
        user = request[USER]
        request[REGISTERED] = True
        await self.db.register(self.settings.now_ms(), user["username"], user["role"], action, what, purpose,
                               client_of(request), records)


def create_app(event_source, console_db_path, dispatch=None, config=None, on_disposed=None, release_vehicle=None):
    console = Console(event_source, console_db_path, dispatch, config or ConsoleSettings(), on_disposed,
                      release_vehicle)
    app = web.Application(middlewares=[security_headers_middleware, access_middleware])
    app[CONSOLE] = console
    pages.add_routes(app, STATIC_DIR)
    api_session.add_routes(app)
    api_alarms.add_routes(app)
    api_devices.add_routes(app)
    api_records.add_routes(app)
    api_users.add_routes(app)
    live.add_routes(app)

    async def start(_app):
        await console.start()

    async def close_feeds(_app):
        await console.hub.close()

    async def stop(_app):
        await console.stop()
    app.on_startup.append(start)
    app.on_shutdown.append(close_feeds)
    app.on_cleanup.append(stop)
    return app
