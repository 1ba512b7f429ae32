"""What every part's configuration builds on: the error, the checked table, addresses.

gateway/config.py (the gateway's own tables), gateway/console/settings.py ([console])
and gateway/vehicles/config.py ([jt808], [vehicles], [edge]) each parse their tables
with these, so a bad value reads the same wherever it is:

    config error in asc.toml: forwarders[0].receivers[1] = 'localhost':
    expected HOST:PORT; fix: write it like "127.0.0.1:7001"

This module imports nothing of the gateway, so each part's config depends on it and
gateway/config.py depends on the parts, never the reverse (tests/test_import_layers.py).
"""
import dataclasses
import difflib
import tomllib

# Records must be kept at least 30 days by the strictest rule the product serves
# (DESIGN.md, "Rules"); a config asking for less is refused rather than obeyed. Here
# because the store's retention (gateway/config.py) and the positions' retention
# (gateway/vehicles/config.py) are both held to it.
MIN_RETENTION_DAYS = 30


class ConfigError(ValueError):
    def __init__(self, key, value, problem, fix, source="config"):
        self.key, self.value, self.problem, self.fix = key, value, problem, fix
        super().__init__("config error in %s: %s = %r: %s; fix: %s" % (source, key, value, problem, fix))


def load_toml(path, what="a gateway TOML file (see examples/)"):
    """A TOML file as a dict, or ConfigError naming the file and what is wrong."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("--config", source, "file not found", "give the path of " + what, source)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", source, "not valid TOML: %s" % exc, "fix the TOML syntax at that line", source)


def parse_address(value, key="address", source="config"):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, value, "expected HOST:PORT", 'write it like "127.0.0.1:7001"', source)
    return host, int(port)


class Table:
    """One TOML table with its dotted path, for error messages that name the key."""

    def __init__(self, data, path, source, known):
        self.data, self.path, self.source = data, path, source
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                fix = ("did you mean %r?" % close[0]) if close else ("known keys: " + ", ".join(sorted(known)))
                raise ConfigError(self.key(key), data[key], "unknown key", fix, source)

    def key(self, name):
        return "%s.%s" % (self.path, name) if self.path else name

    def error(self, name, problem, fix):
        return ConfigError(self.key(name), self.data.get(name), problem, fix, self.source)

    def get(self, name, kind, default=None, required=False, fix=None):
        if name not in self.data:
            if required:
                raise ConfigError(self.key(name), None, "missing", fix or "add it", self.source)
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise self.error(name, "expected %s" % " or ".join(k.__name__ for k in kinds),
                             fix or "write a %s" % kinds[0].__name__)
        return value

    def number(self, name, default, minimum, maximum=None):
        value = self.get(name, (int, float), default)
        if value < minimum or (maximum is not None and value > maximum):
            span = "%s..%s" % (minimum, maximum) if maximum is not None else ">= %s" % minimum
            raise self.error(name, "out of range", "use a value in %s" % span)
        return value

    def address(self, name, required=False):
        value = self.get(name, str, required=required, fix='write HOST:PORT, e.g. "127.0.0.1:7001"')
        if value is None:
            return None
        return parse_address(value, self.key(name), self.source)

    def table(self, name, known, default_empty=True):
        value = self.get(name, dict, {} if default_empty else None)
        return None if value is None else Table(value, self.key(name), self.source, known)

    def tables(self, name, known):
        value = self.get(name, list, [], fix="write [[%s]] tables" % name)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError("%s[%d]" % (self.key(name), i), item, "expected a table", "write [[%s]]" % name, self.source)
            out.append(Table(item, "%s[%d]" % (self.key(name), i), self.source, known))
        return out


# The keys of a TCP listener's limits, shared by [receiver] (DC-09) and [jt808]:
# key -> (Limits field, minimum, maximum). What each bounds: gateway/netlimits.py.
TCP_LIMIT_KEYS = {
    "max_connections": ("max_connections", 1, 1_000_000),
    "max_connections_per_address": ("max_per_address", 1, 1_000_000),
    "reserved_connections": ("reserved", 0, 1_000_000),
    "first_frame_timeout_seconds": ("first_frame_timeout", 0.1, 3600),
    "idle_timeout_seconds": ("idle_timeout", 1, 86400),
    "max_output_bytes": ("max_output", 256, 1 << 30),
    "accept_backoff_max_seconds": ("accept_backoff_max", 0.05, 60),
    "known_addresses": ("known_addresses", 1, 10_000_000),
    "socket_send_buffer_bytes": ("send_buffer", 0, 1 << 30),
    "max_frames_per_second": ("frame_rate", 0.1, 1_000_000),
    "frame_burst": ("frame_burst", 1, 1_000_000),
}


def tcp_limits(table, defaults, clients="known clients"):
    """A TCP listener's netlimits.Limits from `table`'s TCP_LIMIT_KEYS, each
    defaulting to `defaults`' value (a Limits, left unchanged)."""
    values = {}
    for key, (name, low, high) in TCP_LIMIT_KEYS.items():
        default = getattr(defaults, name)
        values[name] = type(default)(table.number(key, default, low, high))
    limits = dataclasses.replace(defaults, **values)
    if limits.reserved >= limits.max_connections:
        raise table.error("reserved_connections", "not below max_connections (%d)" % limits.max_connections,
                          "reserve a part of max_connections for %s, e.g. a tenth" % clients)
    return limits
