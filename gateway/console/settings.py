"""Console settings: the `[console]` table of the gateway's TOML file.

    [console]
    listen = "127.0.0.1:8080"           # where the console serves (loopback unless behind TLS)
    db_path = "console.sqlite"          # relative to the config file; default: next to the event log
    escalate_after_seconds = 180        # an alarm not disposed of by then is escalated
    session_idle_minutes = 30
    session_max_hours = 12
    login_max_failures = 5              # per account within login_window_minutes, then locked out
    login_window_minutes = 15
    login_lockout_seconds = 300
    secure_cookies = false              # true when served over HTTPS (it should be, off loopback)
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

from gateway.config import ConfigError, parse_address

KNOWN_KEYS = ("listen", "db_path", "escalate_after_seconds", "session_idle_minutes", "session_max_hours",
              "login_max_failures", "login_window_minutes", "login_lockout_seconds", "secure_cookies",
              "vehicle_track_hours", "sites")


@dataclass
class ConsoleSettings:
    listen: tuple | None = None
    db_path: Path | None = None
    escalate_after_seconds: int = 180
    session_idle_minutes: float = 30
    session_max_hours: float = 12
    login_max_failures: int = 5
    login_window_minutes: float = 15
    login_lockout_seconds: float = 300
    secure_cookies: bool = False
    vehicle_track_hours: float = 24
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
    settings.login_window_minutes = _number(table, "login_window_minutes", 15, 1, source)
    settings.login_lockout_seconds = _number(table, "login_lockout_seconds", 300, 1, source)
    settings.vehicle_track_hours = _number(table, "vehicle_track_hours", 24, 0.1, source)
    secure = table.get("secure_cookies", False)
    if not isinstance(secure, bool):
        raise ConfigError("console.secure_cookies", secure, "expected true or false", "write true behind HTTPS", source)
    settings.secure_cookies = secure
    sites = table.get("sites", {})
    if not isinstance(sites, dict):
        raise ConfigError("console.sites", sites, "expected a table", "write [console.sites.ACCOUNT]", source)
    settings.sites = {str(a).upper(): v for a, v in sites.items()}
    return settings
