# CPython stand-ins for MicroPython built-ins (tests only; never imported on a device).
import time as _time

_PERIOD = 1 << 30
_HALF = 1 << 29


def ticks_ms():
    return int(_time.monotonic() * 1000) & (_PERIOD - 1)


def ticks_add(t, delta):
    return (t + delta) & (_PERIOD - 1)


def ticks_diff(a, b):
    """Same arithmetic as MicroPython's: 30-bit wrap, as on the ESP32."""
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


def sleep_ms(ms):
    _time.sleep(ms / 1000)


def const(x):
    return x


def mem_free():
    return -1


def mem_alloc():
    return -1
