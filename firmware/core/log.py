# One log line per event, on the console (UART0 on the ESP32, stdout in simulation):
# hil's DUT.expect() matches these lines. Never log secrets (PINs, keys).
# Per-event lines are written as `if not quiet(): log(tag, "..." % (...))`, so a
# quiet console (log.quiet(True)) costs no formatting: the event path then allocates
# nothing (tests/firmware/test_memory.py).
import sys
from core.compat import ticks_ms

_quiet = False


def quiet(q=None):
    """quiet(True/False) sets, quiet() tells (one function: each costs heap)."""
    global _quiet
    if q is not None:
        _quiet = q
    return _quiet


def log(tag, msg=""):
    if _quiet:
        return
    sys.stdout.write("%d %s %s\n" % (ticks_ms(), tag, msg))
