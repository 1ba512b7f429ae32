"""Gateway configuration: one TOML file, validated completely at start-up.

A bad config stops the gateway before it opens a socket, with a message that
names the key, the value it found and what to write instead, e.g.

    config error in asc.toml: forwarders[0].receivers[1] = 'localhost':
    expected HOST:PORT; fix: write it like "127.0.0.1:7001"

Relative paths (store.path) are resolved against the folder of the config file,
so a config works the same whatever directory the gateway is started from.
"""
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# The base every part's config builds on; its names stay importable from here, where
# the rest of the gateway and the tests have always taken them.
from gateway.configbase import (  # noqa: F401
    MIN_RETENTION_DAYS, TCP_LIMIT_KEYS, ConfigError, Table, load_toml, parse_address, tcp_limits)
from gateway.console import settings as console_settings
from gateway.event import EVENT_CLASSES, CATEGORIES
from gateway.vehicles import config as vehicles_config
from protocols import bus

# Retention below MIN_RETENTION_DAYS (gateway/configbase.py) is refused.
DEFAULT_RETENTION_DAYS = {"default": 30, "alarm": 730}

# What goes up to the 110 center unless a forwarder says otherwise: alarms
# (panic, duress, fire, medical, burglary, tamper ...) and troubles, not openings/closings.
DEFAULT_FORWARD_CLASSES = ("alarm", "trouble")
DEFAULT_FORWARD_CATEGORIES = ("panic", "duress", "fire", "medical", "tamper")

# "stdout" prints the feed (gateway/sinks/stdout.py); "console" is its older name, still
# read so configs written before the rename load unchanged (it is not the web console).
FORWARDER_TYPES = ("dc09", "webhook", "mqtt", "stdout", "console")
FEED_TYPES = ("stdout", "console")

# The device bus (mqtt_source): a message longer than this is refused unread (a
# device's status is under 400 bytes, an event or a reading far less); the source
# remembers the last status of this many devices, so that a status re-sent
# unchanged (retained, or after a reconnect) is not stored again.
MQTT_MAX_PAYLOAD = 4096
MQTT_STATUS_MEMORY = 10000


@dataclass
class Device:
    account: str                   # hex digits, or "*" = any account not listed (gateway peering)
    key: bytes | None = None       # AES key; None = the "*" entry's key, or unencrypted if none
    site: str = ""
    address: str = ""
    contact: str = ""
    type: str = "panel"
    reporting_interval: int = 0    # seconds; 0 = learn it from the device's link tests

    def enrichment(self):
        return {"site": self.site, "address": self.address, "contact": self.contact, "type": self.type}


@dataclass
class Forwarder:
    name: str
    type: str
    classes: tuple = DEFAULT_FORWARD_CLASSES
    categories: tuple = DEFAULT_FORWARD_CATEGORIES
    # dc09
    receivers: list = field(default_factory=list)   # [(host, port)], first = primary
    key: bytes | None = None
    receiver_number: str | None = None
    prefix: str = "0"
    ack_timeout: float = 5.0
    retry_initial: float = 0.5
    retry_max: float = 30.0
    failback_after: float = 30.0
    send_position: bool = True     # pysiaalarm accepts one extended-data block only: set false for it
    link_account: str | None = None   # this gateway's account on the link, for NULL link tests
    link_test_seconds: float = 0      # idle time before a link test; 0 = none
    # webhook
    url: str = ""
    secret: str = ""
    # mqtt
    broker: tuple | None = None
    topic_prefix: str = "jifang"
    # whether the console's "dispatch to 110" goes out through this forwarder
    dispatch: bool = True

    def accepts(self, event_class, category):
        return event_class in self.classes or category in self.categories


@dataclass
class Config:
    name: str
    store_path: Path
    retention_days: dict
    purge_interval: float
    receiver_listen: tuple | None
    timestamp_ahead: int
    timestamp_behind: int
    learned_interval_factor: float
    http_listen: tuple | None
    mqtt_source: dict | None
    devices: dict                  # account -> Device ("*" possible)
    forwarders: list
    secrets: list                  # every secret string, so logs can scrub them
    vehicles: object = None        # gateway.vehicles.config.VehiclesConfig, when [jt808]/[vehicles]/[edge] is there
    store_url: str | None = None   # postgresql://... = cluster mode (gateway/pgstore.py); None = SQLite at store_path
    store_pool_size: int = 4
    cluster: object = None         # Cluster, when store_url is set
    console: object = None         # gateway.console.settings.ConsoleSettings, when [console] is there
    replay_cache_size: int = 65536  # DC-09 messages remembered to refuse replays (sources/dc09.ReplayCache)
    secret_keys: list = field(default_factory=list)   # (dotted key, value) of every secret, for refuse_example_secrets
    http_token: str = ""            # bearer token /healthz and /metrics require; "" = none
    receiver_limits: object = None  # gateway.netlimits.Limits of the DC-09 TCP listener
    udp_limits: object = None       # gateway.netlimits.Limits of its UDP side (in-flight datagrams)

    def __post_init__(self):
        from gateway.netlimits import Limits
        if self.receiver_limits is None:
            self.receiver_limits = Limits()
        if self.udp_limits is None:
            self.udp_limits = udp_defaults()
    bus: object = None             # gateway.bus.BusSettings, when [bus] is there (cluster mode); None = embedded

    def device(self, account):
        """The registry entry for an account, else the "*" entry (gateway peering)."""
        return self.devices.get(account) or self.devices.get("*")

    def key_for(self, account):
        """A device's own key, else the "*" entry's: a 110 center can list sites for
        enrichment and still take every account relayed under one peering key."""
        device = self.devices.get(account)
        if device is not None and device.key is not None:
            return device.key
        star = self.devices.get("*")
        return star.key if star is not None else None


@dataclass
class Cluster:
    """Cluster mode: several nodes share one PostgreSQL store (docs/cluster.md)."""
    node: str                       # this node's name, in logs and lease holders
    lease_poll: float = 1.0         # seconds between lease attempts and holder health checks
    lease_timeout: float = 2.0      # a health check slower than this drops the lease
    follow_poll: float = 0.5        # seconds between log polls when no notification came
    heard_flush: float = 1.0        # seconds between flushes of supervision's last-heard


def udp_defaults():
    """UDP has no connections: its limits bound the datagrams being handled at once
    (each holds a task until its event is committed). 256 in flight is more than a
    store's group commit ever needs; a flood beyond it is dropped, not queued."""
    from gateway.netlimits import Limits
    return Limits(max_connections=256, max_per_address=16, reserved=64)


def _receiver_limits(receiver):
    """[receiver] limits -> (TCP Limits, UDP Limits); see gateway/netlimits.py for
    what each bounds and why its default."""
    from gateway.netlimits import Limits
    tcp = tcp_limits(receiver, Limits(), "known panels")
    udp = udp_defaults()
    udp.max_connections = int(receiver.number("udp_max_in_flight", udp.max_connections, 1, 1_000_000))
    udp.max_per_address = int(receiver.number("udp_max_in_flight_per_address", udp.max_per_address, 1, 1_000_000))
    udp.reserved = int(receiver.number("udp_reserved_in_flight", udp.reserved, 0, 1_000_000))
    if udp.reserved >= udp.max_connections:
        raise receiver.error("udp_reserved_in_flight", "not below udp_max_in_flight (%d)" % udp.max_connections,
                             "reserve a part of udp_max_in_flight for known panels")
    udp.known_addresses = tcp.known_addresses
    return tcp, udp


def _is_account(text):
    return 3 <= len(text) <= 16 and all(c in "0123456789ABCDEFabcdef" for c in text)


def _key(table, dc09):
    """An AES key from key_hex (binary key in hex, the standard's way) or key_text
    (the characters are the key, pysiaalarm's and several panels' way)."""
    hex_value, text_value = table.get("key_hex", str), table.get("key_text", str)
    if hex_value is not None and text_value is not None:
        raise table.error("key_text", "both key_hex and key_text given",
                          "keep the one matching how the panel was programmed")
    if hex_value is not None:
        try:
            key = dc09.key_from_hex(hex_value)
        except ValueError:
            key = None
        if key is None or len(key) not in (16, 24, 32):
            raise table.error("key_hex", "not 32, 48 or 64 hex digits",
                              "write the binary AES key in hex (AES-128: 32 digits), or use key_text for a text key")
        return key
    if text_value is not None:
        if len(text_value) not in (16, 24, 32) or not text_value.isascii():
            raise table.error("key_text", "not 16, 24 or 32 ASCII characters",
                              "write the key exactly as typed into the panel (16, 24 or 32 characters)")
        return dc09.key_from_text(text_value)
    return None


def _classes(table, name, default, allowed):
    value = table.get(name, list, None)
    if value is None:
        return default
    for item in value:
        if item not in allowed:
            raise table.error(name, "unknown value %r" % item, "choose from: " + ", ".join(allowed))
    return tuple(value)


def load(path):
    path = Path(path)
    return from_dict(load_toml(path), base_dir=path.parent, source=str(path))


def from_dict(data, base_dir=Path("."), source="config"):
    """The whole gateway TOML document, every table parsed by its own function below;
    the parts' tables by their own modules ([console]: gateway/console/settings.py,
    [jt808]/[vehicles]/[edge]: gateway/vehicles/config.py)."""
    root = Table(data, "", source, ["gateway", "store", "cluster", "receiver", "supervision", "http",
                                    "mqtt_source", "devices", "forwarders", "console", "bus"]
                 + list(vehicles_config.SECTIONS))
    secrets = []          # every secret string, each parser adds its own, so logs can scrub them
    name = root.table("gateway", ["name"]).get("name", str, "gateway")
    store = _store(root.table("store", ["path", "url", "pool_size", "retention_days", "purge_interval_hours"]),
                   base_dir, secrets)
    cluster = _cluster(root.table("cluster", ["node", "lease_poll_seconds", "lease_timeout_seconds",
                                              "follow_poll_seconds", "heard_flush_seconds"]),
                       store["store_url"], name)
    receiver = _receiver(root.table("receiver", RECEIVER_KEYS))
    factor = root.table("supervision", ["learned_interval_factor"]).number("learned_interval_factor", 3, 1.5, 100)
    http = _http(root.table("http", ["listen", "token"]), secrets)
    mqtt_source = _mqtt_source(root.table("mqtt_source", ["broker", "topic_prefix", "max_payload_bytes",
                                                           "status_memory"], default_empty=False))
    devices = _devices(root.tables("devices", DEVICE_KEYS), secrets)
    forwarders = _forwarders(root.tables("forwarders", FORWARDER_KEYS), source, secrets)

    vehicles = None
    if any(section in data for section in vehicles_config.SECTIONS):
        vehicles = vehicles_config.from_dict(data, base_dir, source)
        if vehicles.jt808 is not None and vehicles.jt808.registrations_path is None:
            # Cluster mode: in the shared database, so a terminal registered on one
            # node authenticates on any (gateway/vehicles/pgregistry.py).
            vehicles.jt808.registrations_path = (store["store_url"]
                                                 or store["store_path"].with_name("jt808-terminals.sqlite"))
        store["retention_days"] = vehicles_config.retention_with_positions(store["retention_days"], vehicles)
        secrets += vehicles.secrets
    console = console_settings.from_table(data["console"], base_dir, source) if "console" in data else None

    # `bus` is protocols.bus (the MQTT device bus's topics) in this module: the NATS
    # cluster bus's settings go by another name.
    bus_table = root.table("bus", BUS_KEYS, default_empty=False)
    bus_settings = _bus(bus_table, secrets) if bus_table is not None else None

    return Config(name=name, **store, **receiver, **http, learned_interval_factor=factor,
                  mqtt_source=mqtt_source, devices=devices, forwarders=forwarders, secrets=secrets,
                  vehicles=vehicles, console=console, cluster=cluster,
                  secret_keys=list(secret_values(data)), bus=bus_settings)


def _store(store, base_dir, secrets):
    """[store]: SQLite at `path` (embedded) or PostgreSQL at `url` (cluster), retention."""
    store_url = store.get("url", str, None, fix='write "postgresql://ROLE@HOST:PORT/DB"')
    if store_url is not None and not store_url.startswith(("postgresql://", "postgres://")):
        raise store.error("url", "not a postgresql:// URL", 'write "postgresql://ROLE@HOST:PORT/DB", or remove it for SQLite')
    if store_url is not None and "path" in store.data:
        raise store.error("path", "both path and url given", "keep url (PostgreSQL, cluster) or path (SQLite)")
    pool_size = int(store.number("pool_size", 4, 2, 64))
    if store_url is not None:
        secrets += _url_password(store_url)
    store_path = Path(store.get("path", str, "events.db"))
    if not store_path.is_absolute():
        store_path = Path(base_dir) / store_path
    retention = dict(DEFAULT_RETENTION_DAYS)
    ret = store.table("retention_days", ["default"] + list(EVENT_CLASSES))
    for cls in ret.data:
        retention[cls] = ret.get(cls, int)
        if retention[cls] < MIN_RETENTION_DAYS:
            raise ret.error(cls, "shorter than the %d days the regulations require" % MIN_RETENTION_DAYS,
                            "set %d or more" % MIN_RETENTION_DAYS)
    return dict(store_path=store_path, store_url=store_url, store_pool_size=pool_size, retention_days=retention,
                purge_interval=store.number("purge_interval_hours", 24, 1) * 3600)


def _cluster(ct, store_url, name):
    """[cluster]: this node's name and lease timings; only with a shared (PostgreSQL) store."""
    if ct.data and store_url is None:
        raise ct.error("node", "a cluster needs a shared store", 'set [store] url = "postgresql://..."')
    if store_url is None:
        return None
    return Cluster(node=ct.get("node", str, name),
                   lease_poll=ct.number("lease_poll_seconds", 1.0, 0.05, 5),
                   lease_timeout=ct.number("lease_timeout_seconds", 2.0, 0.1, 5),
                   follow_poll=ct.number("follow_poll_seconds", 0.5, 0.01, 5),
                   heard_flush=ct.number("heard_flush_seconds", 1.0, 0.05, 60))


RECEIVER_KEYS = (["listen", "timestamp_ahead_seconds", "timestamp_behind_seconds", "replay_cache_size"]
                 + list(TCP_LIMIT_KEYS) + ["udp_max_in_flight", "udp_max_in_flight_per_address",
                                           "udp_reserved_in_flight"])


def _receiver(receiver):
    """[receiver]: the DC-09 listener, its clock window, replay cache and limits."""
    receiver_limits, udp_limits = _receiver_limits(receiver)
    return dict(
        receiver_listen=receiver.address("listen"),
        timestamp_ahead=int(receiver.number("timestamp_ahead_seconds", 20, 0, 3600)),
        timestamp_behind=int(receiver.number("timestamp_behind_seconds", 40, 0, 3600)),
        # 65,536 entries cover 1,000 encrypted messages a second over the 60 s window, in
        # about 16 MB; a center taking more than that sets it higher.
        replay_cache_size=int(receiver.number("replay_cache_size", 65536, 16, 10_000_000)),
        receiver_limits=receiver_limits, udp_limits=udp_limits)


def _http(http, secrets):
    """[http]: the ops endpoint (/healthz, /metrics) and its bearer token."""
    token = http.get("token", str, "")
    if token:
        secrets.append(token)
    return dict(http_listen=http.address("listen"), http_token=token)


def _mqtt_source(table):
    """[mqtt_source]: the device bus (protocols/bus.py topics), or None without it."""
    if table is None:
        return None
    return {"broker": table.address("broker", required=True),
            "topic_prefix": table.get("topic_prefix", str, bus.DEFAULT_PREFIX),
            "max_payload_bytes": int(table.number("max_payload_bytes", MQTT_MAX_PAYLOAD, 64, 1 << 20)),
            "status_memory": int(table.number("status_memory", MQTT_STATUS_MEMORY, 1, 1_000_000))}


DEVICE_KEYS = ["account", "key_hex", "key_text", "site", "address", "contact", "type", "reporting_interval_seconds"]


def _devices(tables, secrets):
    """[[devices]]: account -> Device, "*" for any account not listed (gateway peering)."""
    from protocols import dc09  # the codec is needed only to turn keys into bytes
    devices = {}
    for t in tables:
        account = t.get("account", str, required=True, fix='write the panel account, e.g. "1234"')
        if account != "*" and not _is_account(account):
            raise t.error("account", "not 3-16 hex digits", 'write the account as programmed in the panel, or "*" for any account')
        account = account.upper()
        if account in devices:
            raise t.error("account", "listed twice", "keep one [[devices]] entry per account")
        key = _key(t, dc09)
        secrets += [v for v in (t.get("key_hex", str), t.get("key_text", str)) if v]
        devices[account] = Device(
            account=account, key=key, site=t.get("site", str, ""), address=t.get("address", str, ""),
            contact=t.get("contact", str, ""), type=t.get("type", str, "panel"),
            reporting_interval=int(t.number("reporting_interval_seconds", 0, 0)))
    return devices


FORWARDER_KEYS = ["name", "type", "classes", "categories", "receivers", "key_hex", "key_text", "receiver_number",
                  "prefix", "ack_timeout_seconds", "retry_initial_seconds", "retry_max_seconds", "failback_seconds",
                  "send_position", "link_account", "link_test_seconds", "url", "secret", "broker", "topic_prefix",
                  "dispatch"]


def _forwarders(tables, source, secrets):
    """[[forwarders]]: what goes where, each by its own type's keys."""
    forwarders = []
    names = set()
    for t in tables:
        fname = t.get("name", str, required=True, fix='give each forwarder a unique name, e.g. "110"')
        if fname in names:
            raise t.error("name", "used twice", "give each forwarder a unique name (it keys its cursor in the store)")
        names.add(fname)
        ftype = t.get("type", str, required=True, fix="one of " + ", ".join(FORWARDER_TYPES))
        if ftype not in FORWARDER_TYPES:
            raise t.error("type", "unknown forwarder type", "one of " + ", ".join(FORWARDER_TYPES))
        fw = Forwarder(name=fname, type=ftype,
                       classes=_classes(t, "classes", DEFAULT_FORWARD_CLASSES if ftype not in FEED_TYPES else EVENT_CLASSES, EVENT_CLASSES),
                       categories=_classes(t, "categories", DEFAULT_FORWARD_CATEGORIES if ftype not in FEED_TYPES else (), CATEGORIES))
        fw.dispatch = t.get("dispatch", bool, True)
        if ftype == "dc09":
            _dc09_forwarder(fw, t, source, secrets)
        elif ftype == "webhook":
            fw.url = t.get("url", str, required=True, fix='write the endpoint, e.g. "https://110.example/alarms"')
            if not fw.url.startswith(("http://", "https://")):
                raise t.error("url", "not an http(s) URL", 'write it like "https://host/path"')
            fw.secret = t.get("secret", str, required=True, fix="write the shared HMAC secret agreed with the receiver")
            secrets.append(fw.secret)
            _retries(fw, t)
        elif ftype == "mqtt":
            fw.broker = t.address("broker", required=True)
            fw.topic_prefix = t.get("topic_prefix", str, "jifang")
            _retries(fw, t)
        forwarders.append(fw)
    return forwarders


def _retries(fw, t):
    fw.retry_initial = t.number("retry_initial_seconds", 0.5, 0.01, 600)
    fw.retry_max = t.number("retry_max_seconds", 30, fw.retry_initial, 3600)


def _dc09_forwarder(fw, t, source, secrets):
    """A dc09 forwarder's receivers (primary first), key, timings and link tests."""
    from protocols import dc09  # the codec is needed only to turn keys into bytes
    addresses = t.get("receivers", list, required=True, fix='list receivers, primary first: ["127.0.0.1:7001"]')
    if not addresses:
        raise t.error("receivers", "empty", 'list at least one receiver, e.g. ["127.0.0.1:7001"]')
    for i, address in enumerate(addresses):
        if not isinstance(address, str):
            raise t.error("receivers", "expected strings", 'write ["HOST:PORT", ...]')
        fw.receivers.append(parse_address(address, "%s[%d]" % (t.key("receivers"), i), source))
    fw.key = _key(t, dc09)
    secrets += [v for v in (t.get("key_hex", str), t.get("key_text", str)) if v]
    fw.receiver_number = t.get("receiver_number", str)
    fw.prefix = t.get("prefix", str, "0")
    fw.ack_timeout = t.number("ack_timeout_seconds", 5, 0.1, 300)
    _retries(fw, t)
    fw.failback_after = t.number("failback_seconds", 30, 0.1, 86400)
    fw.send_position = t.get("send_position", bool, True)
    fw.link_account = t.get("link_account", str)
    if fw.link_account is not None and not _is_account(fw.link_account):
        raise t.error("link_account", "not 3-16 hex digits", "write the account the upstream knows this gateway by")
    fw.link_test_seconds = t.number("link_test_seconds", 60 if fw.link_account else 0, 0, 86400)
    if fw.link_test_seconds and not fw.link_account:
        raise t.error("link_test_seconds", "link tests need an account", 'set link_account too, e.g. "9001"')


def _url_password(url):
    """The password in a postgresql:// URL, if any, so logs scrub it."""
    from urllib.parse import urlsplit
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


# -- example secrets -------------------------------------------------------------------
#
# The files in examples/ are read by everyone: a key or secret copied from them is
# public. A gateway holding one refuses to start (Gateway.start), naming the key and
# the fix; `jifang demo` replaces them with secrets of its own (gateway/demo.py).

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SECRET_NAMES = ("key_hex", "key_text", "secret", "auth_secret", "token", "password")
PLACEHOLDER_MARK = "change-me"


def is_secret_name(name):
    return name in SECRET_NAMES or name.endswith(("_secret", "_token", "_password", "_key_hex", "_key_text"))


def secret_values(data, path=""):
    """(dotted key, value) of every secret-looking string in a parsed TOML document."""
    if isinstance(data, dict):
        for k, v in data.items():
            key = "%s.%s" % (path, k) if path else k
            if isinstance(v, str) and is_secret_name(k):
                yield key, v
            else:
                yield from secret_values(v, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from secret_values(v, "%s[%d]" % (path, i))


_example_values = None


def example_secrets():
    """Every secret value written in examples/ (TOML files and compound.csv's keys),
    normalised (upper case, stripped)."""
    global _example_values
    if _example_values is None:
        import csv
        values = set()
        for path in sorted(EXAMPLES_DIR.glob("*.toml")):
            try:
                with open(path, "rb") as f:
                    values.update(v for _, v in secret_values(tomllib.load(f)))
            except (OSError, tomllib.TOMLDecodeError):
                continue
        for path in sorted(EXAMPLES_DIR.glob("*.csv")):
            try:
                with open(path, encoding="utf-8", newline="") as f:
                    for row in csv.DictReader(f):
                        values.update(v for k, v in row.items() if k and is_secret_name(k) and v)
            except OSError:
                continue
        _example_values = frozenset(v.strip().upper() for v in values if v.strip())
    return _example_values


def example_secret_problems(config):
    """[(key, why)] for every secret of `config` that is an example placeholder."""
    examples = example_secrets()
    problems = []
    for key, value in config.secret_keys:
        if PLACEHOLDER_MARK in value.lower():
            problems.append((key, 'contains "%s"' % PLACEHOLDER_MARK))
        elif value.strip().upper() in examples:
            problems.append((key, "is the value written in examples/ (public)"))
    return problems


def refuse_example_secrets(config, source=None):
    """Raise ConfigError naming the first key whose secret is an example placeholder."""
    problems = example_secret_problems(config)
    if problems:
        key, why = problems[0]
        others = "" if len(problems) == 1 else " (and %d more: %s)" % (
            len(problems) - 1, ", ".join(k for k, _ in problems[1:4]) + (", ..." if len(problems) > 4 else ""))
        raise ConfigError(key, "(hidden)", "an example placeholder secret: it %s%s" % (why, others),
                          "generate a real one, e.g. `openssl rand -hex 16` for an AES-128 key_hex, "
                          "`openssl rand -hex 32` for a secret, and program the same value in the device or peer",
                          source or config.name)


BUS_KEYS = ["url", "replicas", "duplicate_window_seconds", "publish_timeout_seconds", "publish_attempt_seconds",
            "max_stream_messages", "ack_wait_seconds", "alarm_ack_wait_seconds", "ingest_batch", "alarm_copies"]


def _bus(t, secrets):
    """[bus]: the NATS JetStream cluster between the nodes (gateway/bus.py)."""
    from urllib.parse import urlsplit

    from gateway.bus import BusSettings

    fix = 'list the NATS nodes, e.g. ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]'
    value = t.get("url", (str, list), required=True, fix=fix)
    urls = [u.strip() for u in value.split(",")] if isinstance(value, str) else value
    if not urls:
        raise t.error("url", "empty", fix)
    for url in urls:
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
            ok = parts is not None and parts.scheme in ("nats", "tls") and parts.hostname and parts.port
        except ValueError:                     # a port that is not a number
            ok = False
        if not ok:
            shown = url.rpartition("@")[2] if isinstance(url, str) else url    # never echo a password
            raise ConfigError(t.key("url"), shown, "not nats://HOST:PORT", fix, t.source)
        if parts.password:
            secrets.append(parts.password)     # nats://user:password@host:port: kept out of the logs
        elif parts.username:
            secrets.append(parts.username)     # nats://token@host:port
    defaults = BusSettings(servers=[])
    return BusSettings(
        servers=urls,
        replicas=int(t.number("replicas", defaults.replicas, 1, 5)),
        duplicate_window=t.number("duplicate_window_seconds", defaults.duplicate_window, 1, 86400),
        publish_timeout=t.number("publish_timeout_seconds", defaults.publish_timeout, 0.1, 300),
        publish_attempt=t.number("publish_attempt_seconds", defaults.publish_attempt, 0.05, 60),
        max_stream_messages=int(t.number("max_stream_messages", defaults.max_stream_messages, 1)),
        ack_wait=t.number("ack_wait_seconds", defaults.ack_wait, 0.1, 3600),
        alarm_ack_wait=t.number("alarm_ack_wait_seconds", defaults.alarm_ack_wait, 0.1, 3600),
        ingest_batch=int(t.number("ingest_batch", defaults.ingest_batch, 1, 10000)),
        alarm_copies=int(t.number("alarm_copies", defaults.alarm_copies, 1, 2)))
