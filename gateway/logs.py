"""Structured logs: one JSON object per line, on stderr.

Everything passed in `extra=` becomes a field. Secrets (AES keys, HMAC secrets)
are registered from the config at start-up and replaced by "***" wherever they
would appear, in the message or any field, so a careless log call cannot leak one.

Every line is JSON, whoever logs it: the handler sits on the root logger too, so
asyncio's and aiohttp's records are formatted the same way, and a traceback is one
"exception" field, never lines of its own. The loop's exception handler
(loop_exception_handler) sends what asyncio would print itself through it as well.

Floods are cut down (issue 11: 93,779 tracebacks, 36 MB, in 20 s): each call site
(logger, file, line) may write `burst` lines per `interval` seconds; the lines
past that are counted, and one line per site and interval says how many were left
out ("suppressed": n) and repeats the last of them.
"""
import json
import logging
import sys
import time

# Per call site: lines let through per window, and the window (seconds).
RATE_BURST = 20
RATE_INTERVAL = 10.0

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets=(), gateway=""):
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.gateway = gateway

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % record.msecs,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.gateway:
            entry["gateway"] = self.gateway
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = json.dumps(entry, default=repr, ensure_ascii=False)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class RateLimitedHandler(logging.StreamHandler):
    """A StreamHandler that lets each call site write `burst` lines per `interval`
    seconds and sums up the rest (see the module's docstring). The summary of a
    window is written by the first record after it ends, or by flush_suppressed()
    (the gateway calls it every interval, and close() does), so a count is never lost."""

    def __init__(self, stream=None, burst=RATE_BURST, interval=RATE_INTERVAL, clock=time.monotonic):
        super().__init__(stream)
        self.burst, self.interval, self.clock = burst, interval, clock
        self._sites = {}       # (logger, file, line) -> [window start, written, suppressed, last record]

    def emit(self, record):
        now = self.clock()
        self._summarise(now)
        key = (record.name, record.pathname, record.lineno)
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = [now, 0, 0, None]
        if site[1] < self.burst:
            site[1] += 1
            super().emit(record)
        else:
            site[2] += 1
            site[3] = record

    def _summarise(self, now, everything=False):
        for key, site in list(self._sites.items()):
            if not everything and now - site[0] < self.interval:
                continue
            if site[2]:
                last = site[3]
                summary = logging.LogRecord(last.name, last.levelno, last.pathname, last.lineno,
                                            "%s (and %d more like it in %.0f s)", (last.getMessage(), site[2], now - site[0]),
                                            last.exc_info, last.funcName)
                summary.suppressed = site[2]
                for name, value in vars(last).items():   # the last record's fields, for context
                    if name not in _STANDARD and not hasattr(summary, name):
                        setattr(summary, name, value)
                super().emit(summary)
            del self._sites[key]

    def flush_suppressed(self):
        self.acquire()
        try:
            self._summarise(self.clock(), everything=True)
        finally:
            self.release()

    def close(self):
        self.flush_suppressed()
        super().close()


def flush_suppressed():
    """Write the pending "N more like it" lines of every rate-limited handler."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RateLimitedHandler):
            handler.flush_suppressed()


def setup(level="INFO", secrets=(), gateway="", stream=None):
    """JSON lines on stderr for the jifang loggers (at `level`) and for every other
    library (warnings and errors), through one rate-limited handler on the root
    logger. Returns the handler; teardown(handler) undoes it."""
    handler = RateLimitedHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets, gateway))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, RateLimitedHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    ours = logging.getLogger("jifang")
    ours.handlers[:] = []
    ours.setLevel(level)
    ours.propagate = True
    return handler


def teardown(handler):
    logging.getLogger().removeHandler(handler)
    handler.close()


_loop_log = logging.getLogger("jifang.asyncio")


def loop_exception_handler(loop, context):
    """For loop.set_exception_handler: what asyncio's default handler prints (several
    lines of plain text and a traceback) as one JSON record, rate-limited per call
    site like any other, with the context's fields (message, task, socket...) as
    text fields."""
    exception = context.get("exception")
    fields = {"asyncio_" + key: repr(value) for key, value in context.items()
              if key not in ("message", "exception")}
    _loop_log.error(context.get("message", "unhandled exception in the event loop"), extra=fields,
                    exc_info=(type(exception), exception, exception.__traceback__) if exception else None)
