# Monotonic milliseconds (ticks, wrap-safe) and wall time (seconds since the
# device epoch, UTC). The state machines take `now` as ticks from the clock they are
# given, so tests drive them with FakeClock and no sleeping.
import time
from core.compat import ticks_ms


class Clock:
    """Real clock: ticks from the VM, wall time from the RTC (NTP on the ESP32,
    the host's clock in simulation) plus `offset`, the correction a receiver's NAK
    taught us (DC-09 receivers send their time when they refuse a timestamp)."""

    offset = 0

    def ticks(self):
        return ticks_ms()

    def time(self):
        return int(time.time()) + self.offset

    def gmtime(self, secs=None):
        return time.gmtime(self.time() if secs is None else secs)
