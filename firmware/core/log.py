# One log line per event, on the console (UART0 on the ESP32, stdout in simulation):
# hil's DUT.expect() matches these lines. Never log secrets (PINs, keys).
import sys
from core.compat import ticks_ms

_quiet = False


def quiet(q=True):
    global _quiet
    _quiet = q


def log(tag, msg=""):
    if _quiet:
        return
    sys.stdout.write("%d %s %s\n" % (ticks_ms(), tag, msg))
