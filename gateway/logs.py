"""Structured logs: one JSON object per line, on stderr.

Everything passed in `extra=` becomes a field. Secrets (AES keys, HMAC secrets)
are registered from the config at start-up and replaced by "***" wherever they
would appear, in the message or any field, so a careless log call cannot leak one.
"""
import json
import logging
import sys
import time

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


def setup(level="INFO", secrets=(), gateway="", stream=None):
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets, gateway))
    root = logging.getLogger("jifang")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return handler
