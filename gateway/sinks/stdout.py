"""Stdout sink (forwarder type "stdout"; "console" is its older name, still read):
the live feed printed for an operator watching a terminal (the 110-center gateway
in `jifang demo`). Not the web console (gateway/console/). It reads its own outbox like any forwarder, so the feed shows
exactly what was committed, once, in priority order."""
import sys

from gateway.event import describe_line
from gateway.sinks.forwarder import Forwarder


class StdoutForwarder(Forwarder):
    def __init__(self, spec, outbox, metrics, stream=None, prefix=""):
        super().__init__(spec, outbox, metrics)
        self.stream = stream or sys.stdout
        self.prefix = prefix

    async def deliver(self, stored):
        self.stream.write(self.prefix + describe_line(stored.event) + "\n")
        self.stream.flush()
