"""Where the console gets events: the gateway's event log (read-only) and the
pipeline's live listener.

Queries (search by time, device, class; a device's history; positions; the
snapshot the console's state is rebuilt from) go through the store layer's log
reader (gateway/logreader.py: `log_reader(location)`, a read-only connection of
its own, SQLite or PostgreSQL); the console writes no SQL against the log.

Live events come from `Pipeline.add_listener`, which calls us once per committed
event; the console never sees an event before it is durably stored.

Cluster mode: the log is the shared PostgreSQL one (`PgLogReader`, the same reader
on a read-only session) and live events come from following it
(`Gateway.subscribe_committed`), so an operator on any node sees every node's events.
In its own process (gateway/console/process.py) a `LogTail` reads the rows the
gateway appended, every `live_poll_ms`. Either way the console never sees an event
before it is durably stored, and gets each one once, in log order, as an `event_row` dict.
"""
import asyncio
import logging
from dataclasses import dataclass, field

from gateway.logreader import log_reader, stored_row

log = logging.getLogger("jifang.console")


@dataclass
class EventSource:
    log_path: object                  # the gateway's event log (SQLite file)
    subscribe: object                 # fn(listener): calls listener(event_row dict) per committed event;
                                      # may return an awaitable (awaited before the console loads)
    devices: dict = field(default_factory=dict)   # account -> gateway.config.Device (the registry)
    geofences: tuple = ()                         # gateway.vehicles.geofence.Geofence, drawn on the map
    close: object = None                          # async fn(): stop what subscribe started
    cluster: object = None                        # gateway.config.Cluster in cluster mode: the node's name
                                                  # and lease timings (escalation runs on one node)

    @classmethod
    def from_gateway(cls, gateway, geofences=()):
        """The source for a running gateway.app.Gateway; `geofences`: the fleet's
        (the vehicles config's rule settings), so the map shows what the rules enforce."""
        def subscribe(listener):
            # The gateway hands over Stored events; the console works on event rows.
            return gateway.subscribe_committed(lambda stored: listener(stored_row(stored)))
        return cls(gateway.config.store_url or gateway.config.store_path, subscribe,
                   {a: d for a, d in gateway.config.devices.items() if a != "*"}, tuple(geofences),
                   cluster=gateway.config.cluster)

    @classmethod
    def from_log(cls, config, geofences=(), poll_s=0.2):
        """The source for a console in its own process: the log of the gateway that
        `config` (gateway.config.GatewayConfig) describes, tailed every `poll_s`."""
        tail = LogTail(config.store_url or config.store_path, poll_s)
        return cls(config.store_url or config.store_path, tail.start, {a: d for a, d in config.devices.items() if a != "*"},
                   tuple(geofences), tail.close, cluster=config.cluster)


class LogTail:
    """New events in the log, read every `poll_s` through a read-only connection of
    its own, handed to the listener in log order (ids only grow: one writer)."""

    BATCH = 1000        # rows per read; a backlog is caught up batch after batch, without a pause

    def __init__(self, path, poll_s):
        self.reader = log_reader(path)
        self.poll_s = poll_s
        self.last_id = 0
        self._task = None

    async def start(self, listener):
        await self.reader.open()
        self.last_id = await self.reader.head_id()
        self._task = asyncio.create_task(self._run(listener), name="console-log-tail")

    async def _run(self, listener):
        while True:
            try:
                rows = await self.reader.after(self.last_id, self.BATCH)
            except Exception as exc:
                # The log unreachable (PostgreSQL restarting, a locked file): read
                # again from the same id at the next poll; nothing is skipped.
                log.warning("console cannot read the log; retrying", extra={"after": self.last_id,
                                                                            "error": repr(exc)})
                await asyncio.sleep(self.poll_s)
                continue
            for row in rows:
                listener(row)
                self.last_id = row["id"]
            if len(rows) < self.BATCH:
                await asyncio.sleep(self.poll_s)

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.reader.close()
