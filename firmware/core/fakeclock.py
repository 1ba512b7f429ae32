# A clock for tests (device-side and CPython): advance() moves ticks and wall time.
import time
from core.compat import ticks_add


class FakeClock:
    """Clock for tests: advance() moves both ticks and wall time."""

    def __init__(self, wall=1795430000, ticks=0):
        self.t = ticks
        self.wall_ms = wall * 1000

    def ticks(self):
        return self.t

    def time(self):
        return self.wall_ms // 1000

    def gmtime(self, secs=None):
        return time.gmtime(self.time() if secs is None else secs)

    def advance(self, ms):
        self.t = ticks_add(self.t, ms)
        self.wall_ms += ms
