"""Console settings: the `[console]` table of the gateway's TOML file.

    [console]
    listen = "127.0.0.1:8080"           # where the console serves (loopback unless behind TLS)
    db_path = "console.sqlite"          # relative to the config file; default: next to the event log
    escalate_after_seconds = 180        # an alarm not disposed of by then is escalated
    session_idle_minutes = 30
    session_max_hours = 12
    login_max_failures = 5              # failed logins per account from one address in the window, then backoff
    login_address_max_failures = 20     # failed logins from one address, any accounts, then backoff
    login_window_minutes = 15           # failures older than this are forgotten
    login_backoff_seconds = 30          # first wait past a limit, doubled per further failure ...
    login_lockout_seconds = 300         # ... up to this (never a hard lock; an admin can unlock)
    hash_workers = 1                    # threads hashing passwords (argon2id, ~0.1 s CPU, 64 MiB each)
    hash_queue = 8                      # logins that may wait for one; past that 429 at once
    hash_niceness = 10                  # nice increment of the hashing threads (Linux: per thread)
    tls_cert_file = "console.crt"       # serve HTTPS itself (PEM); the cookie is then Secure
    tls_key_file = "console.key"
    secure_cookies = false              # force Secure behind a TLS-terminating proxy
    trusted_proxies = ["127.0.0.1"]     # peers whose X-Forwarded-For/-Proto are believed (default: none)
    process = "child"                   # "child": own process beside the gateway; "inline": in its loop
    process_niceness = 10               # the child's nice increment: the receiver wins the CPU
    live_poll_ms = 200                  # the child reads new events from the log this often
    vehicle_track_hours = 24

    [console.sites.1001]                # what the device registry does not carry
    zones = { 1 = "Front door", 15 = "Vault" }
    contacts = [ { name = "Wang Li", phone = "138 0000 0000" } ]

The vehicles map draws the fleet's geofences, defined once in `[[vehicles.geofences]]`
(gateway/vehicles/config.py) where the fleet rules enforce them; they come in
through the EventSource, not through these settings.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.configbase import ConfigError, parse_address

KNOWN_KEYS = ("listen", "db_path", "escalate_after_seconds", "session_idle_minutes", "session_max_hours",
              "login_max_failures", "login_address_max_failures", "login_window_minutes", "login_backoff_seconds",
              "login_lockout_seconds", "hash_workers", "hash_queue", "hash_niceness", "tls_cert_file", "tls_key_file",
              "secure_cookies", "trusted_proxies", "process", "process_niceness", "live_poll_ms", "vehicle_track_hours", "sites",
              "max_connections", "max_connections_per_address", "reserved_connections")
PROCESS_MODES = ("child", "inline")


@dataclass
class ConsoleSettings:
    listen: tuple | None = None
    db_path: Path | None = None
    escalate_after_seconds: int = 180
    session_idle_minutes: float = 30
    session_max_hours: float = 12
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    login_window_minutes: float = 15
    login_backoff_seconds: float = 30
    login_lockout_seconds: float = 300
    hash_workers: int = 1
    hash_queue: int = 8
    hash_niceness: int = 10
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    secure_cookies: bool = False
    trusted_proxies: tuple = ()
    process: str = "child"
    process_niceness: int = 10
    live_poll_ms: int = 200
    vehicle_track_hours: float = 24
    # The listener's limits (gateway/netlimits.py): browsers open ~6 connections each
    # and keep a WebSocket; a flood of idle connections from new addresses leaves the
    # reserve to addresses an operator logged in from.
    max_connections: int = 1000
    max_connections_per_address: int = 64
    reserved_connections: int = 100
    sites: dict = field(default_factory=dict)        # account -> {"zones": {zone: name}, "contacts": [...]}
    clock: object = time.time                        # seconds; tests pass their own

    def now_ms(self):
        return int(self.clock() * 1000)

    def site_details(self, account):
        details = self.sites.get(account, {})
        zones = {int(z): name for z, name in details.get("zones", {}).items()}
        return {"zones": zones, "contacts": list(details.get("contacts", []))}


def _number(table, key, default, minimum, source):
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError("console." + key, value, "expected a number >= %s" % minimum, "write e.g. %s" % default, source)
    return value


def from_table(table, base_dir=Path("."), source="config"):
    """Settings from the `[console]` TOML table, every key checked."""
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError("console." + key, table[key], "unknown key", "known keys: " + ", ".join(KNOWN_KEYS), source)
    settings = ConsoleSettings()
    if "listen" in table:
        settings.listen = parse_address(table["listen"], "console.listen", source)
    if "db_path" in table:
        path = Path(table["db_path"])
        settings.db_path = path if path.is_absolute() else Path(base_dir) / path
    settings.escalate_after_seconds = int(_number(table, "escalate_after_seconds", 180, 1, source))
    settings.session_idle_minutes = _number(table, "session_idle_minutes", 30, 1, source)
    settings.session_max_hours = _number(table, "session_max_hours", 12, 0.1, source)
    settings.login_max_failures = int(_number(table, "login_max_failures", 5, 1, source))
    settings.login_address_max_failures = int(_number(table, "login_address_max_failures", 20, 1, source))
    settings.login_window_minutes = _number(table, "login_window_minutes", 15, 1, source)
    settings.login_backoff_seconds = _number(table, "login_backoff_seconds", 30, 0.1, source)
    settings.login_lockout_seconds = _number(table, "login_lockout_seconds", 300, 1, source)
    settings.hash_workers = int(_number(table, "hash_workers", 1, 1, source))
    settings.hash_queue = int(_number(table, "hash_queue", 8, 0, source))
    settings.hash_niceness = int(_number(table, "hash_niceness", 10, 0, source))
    settings.process_niceness = int(_number(table, "process_niceness", 10, 0, source))
    settings.live_poll_ms = int(_number(table, "live_poll_ms", 200, 10, source))
    process = table.get("process", "child")
    if process not in PROCESS_MODES:
        raise ConfigError("console.process", process, "expected one of " + ", ".join(PROCESS_MODES),
                          'write process = "child"', source)
    settings.process = process
    for key in ("tls_cert_file", "tls_key_file"):
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError("console." + key, table[key], "expected a file name", 'write e.g. "console.pem"', source)
            path = Path(table[key])
            setattr(settings, key, path if path.is_absolute() else Path(base_dir) / path)
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ConfigError("console.tls_cert_file", str(settings.tls_cert_file), "needs tls_key_file too (and the reverse)",
                          "give both, PEM files", source)
    settings.vehicle_track_hours = _number(table, "vehicle_track_hours", 24, 0.1, source)
    settings.max_connections = int(_number(table, "max_connections", 1000, 1, source))
    settings.max_connections_per_address = int(_number(table, "max_connections_per_address", 64, 1, source))
    settings.reserved_connections = int(_number(table, "reserved_connections", 100, 0, source))
    if settings.reserved_connections >= settings.max_connections:
        raise ConfigError("console.reserved_connections", settings.reserved_connections,
                          "not below max_connections (%d)" % settings.max_connections,
                          "reserve a part of max_connections for operators' addresses, e.g. a tenth", source)
    secure = table.get("secure_cookies", False)
    if not isinstance(secure, bool):
        raise ConfigError("console.secure_cookies", secure, "expected true or false", "write true behind HTTPS", source)
    settings.secure_cookies = secure
    proxies = table.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(p, str) and p for p in proxies):
        raise ConfigError("console.trusted_proxies", proxies, "expected a list of addresses",
                          'write e.g. ["127.0.0.1"] for a proxy on this host', source)
    settings.trusted_proxies = tuple(proxies)
    sites = table.get("sites", {})
    if not isinstance(sites, dict):
        raise ConfigError("console.sites", sites, "expected a table", "write [console.sites.ACCOUNT]", source)
    settings.sites = {str(a).upper(): v for a, v in sites.items()}
    return settings
