"""The `[jt808]`, `[vehicles]` and `[edge]` sections of a gateway TOML file.

    [jt808]                           # the center's JT/T 808 server
    listen = "0.0.0.0:7808"
    registrations_path = "jt808-terminals.sqlite"   # codes issued (hashed); default: next to the store
    release_window_seconds = 3600     # after an operator's release, how long registration stays open
    session_timeout_seconds = 180     # silence after which a vehicle is offline
    position_retention_days = 183     # telemetry retention (road-transport rule: >= 6 months)
    login_timeout_seconds = 30        # a connection that has not authenticated by then is closed
    unauthenticated_max_refused = 3   # frames refused before authentication, then the connection is closed
    reassembly_max_messages = 4       # subpackaged messages joined at once, per session
    reassembly_max_packets = 256      # packets in one message
    reassembly_session_bytes = 262144 # subpackage bytes held per session
    reassembly_total_bytes = 8388608  # subpackage bytes held across sessions
    reassembly_timeout_seconds = 60   # a partial message silent this long is dropped
    liveness_probe_seconds = 5        # a vehicle logging in again: its old session must answer within this
    max_connections = 12000           # connection limits, as [receiver]'s (gateway/netlimits.py):
    max_connections_per_address = 1000 #  unauthenticated ones per source address (a fleet APN: many terminals, one address)
    reserved_connections = 1000       #   slots only addresses that authenticated before may take
    first_frame_timeout_seconds = 30  #   without a complete frame (or mid-frame) this long: closed
    idle_timeout_seconds = 600        #   between frames (session_timeout_seconds raises offline before)
    max_output_bytes = 65536          #   answers a terminal leaves unread, then cut
    max_frames_per_second = 20        #   undecodable frames a connection may send, then it is not read for a while
    frame_burst = 100                 #   (also: accept_backoff_max_seconds, known_addresses, socket_send_buffer_bytes)
    report_max_speed_kmh = 250        # a report past these is stored as refused (no position, no rules)
    report_max_age_days = 366
    report_max_ahead_seconds = 86400
    alarm_burst_bits = 16             # this many alarm bits at once: one "terminal fault", not an alarm each

    [vehicles]                        # fleet defaults for the rules
    max_speed_kmh = 80
    overspeed_min_seconds = 30
    max_parking_minutes = 30
    max_driving_hours = 4
    min_rest_minutes = 20

    [[vehicles.fleet]]
    phone = "13800000001"  plate = "粤B12345"  kind = "escort"  route = "cash-run-7"
    [[vehicles.geofences]]
    name = "river-tunnel"  shape = "circle"  center = [22.5, 114.0]  radius_m = 500
    rule = "keep_out"  kinds = ["hazmat"]

    [edge]                            # the vehicle computer
    phone, plate, terminal_id, version, center = "HOST:PORT", store_path, report_interval_seconds,
    heartbeat_seconds
    [edge.gnss]      serial = "/dev/ttyS1", baudrate = 9600   |   tcp = "HOST:PORT"
    [[edge.modbus]]  name, map = "hazmat-tank", serial/baudrate | tcp, unit, interval_seconds, timeout_seconds
    [[edge.allowed_places]]  name, center = [lat, lon], radius_m      (where a vault door may open)

Authentication codes are random per registration (gateway/vehicles/registry.py);
`auth_secret`, which keyed the codes they replace, is still accepted so older
files load, and is unused.

Errors are gateway.configbase.ConfigError (also importable from gateway.config): they name the key, the value and the fix.
"""
from dataclasses import dataclass, field
from pathlib import Path

from gateway.configbase import MIN_RETENTION_DAYS, TCP_LIMIT_KEYS, ConfigError, Table, load_toml, tcp_limits
from protocols.modbus_maps import MAPS
from gateway.vehicles.geofence import RULES, SHAPES, Geofence
from gateway.vehicles.registry import VEHICLE_KINDS, Vehicle, normalise_phone
from gateway.vehicles.rules import RuleSettings
from gateway.vehicles.reports import ReportLimits
from gateway.vehicles.server import SessionLimits, net_defaults

SECTIONS = ("jt808", "vehicles", "edge")
DEFAULT_POSITION_RETENTION_DAYS = 183        # 道路运输车辆动态监督管理办法: at least 6 months
MIN_POSITION_RETENTION_DAYS = 183
MAX_MODBUS_DEVICES = 6                       # zones 32*(i+1)+point: see runtime.ZONES_PER_DEVICE


@dataclass
class JT808Settings:
    listen: tuple
    auth_secret: str | None = None     # unused (codes are random now), accepted for older files
    registrations_path: Path | None = None   # None until gateway.config puts it next to the store
    release_window: float = 3600.0
    session_timeout: float = 180.0
    position_retention_days: int = DEFAULT_POSITION_RETENTION_DAYS
    limits: SessionLimits = SessionLimits()
    report_limits: ReportLimits = ReportLimits()
    net_limits: object = None          # gateway.netlimits.Limits of the listener (None: net_defaults())


@dataclass
class ModbusDevice:
    name: str
    map_name: str
    serial: str | None = None
    baudrate: int = 9600
    tcp: tuple | None = None
    unit: int = 1
    interval: float = 1.0
    timeout: float = 1.0


@dataclass
class EdgeSettings:
    phone: str
    plate: str
    terminal_id: str
    center: tuple
    store_path: Path
    version: int = 2013
    kind: str = "other"
    report_interval: float = 1.0
    heartbeat: float = 30.0
    gnss_serial: str | None = None
    gnss_baudrate: int = 9600
    gnss_tcp: tuple | None = None
    modbus: list = field(default_factory=list)
    allowed_places: list = field(default_factory=list)   # (lat, lon, radius_m)


@dataclass
class VehiclesConfig:
    jt808: JT808Settings | None
    fleet: list
    rules: RuleSettings
    edge: EdgeSettings | None
    secrets: list


def _point(table, name, required=True):
    value = table.get(name, list, required=required, fix="write [latitude, longitude], e.g. [22.543, 114.057]")
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) \
            or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
        raise table.error(name, "not [latitude, longitude] in degrees", "write e.g. [22.543, 114.057] (latitude first)")
    return (float(value[0]), float(value[1]))


def _choice(table, name, choices, default=None):
    value = table.get(name, str, default, required=default is None, fix="one of " + ", ".join(choices))
    if value not in choices:
        raise table.error(name, "unknown value", "one of " + ", ".join(choices))
    return value


def _phone(table):
    phone = table.get("phone", str, required=True, fix='write the SIM number as digits, e.g. "13800000001"')
    if not phone.isdigit() or len(phone) > 20:
        raise table.error("phone", "not up to 20 digits", 'write the SIM number as digits, e.g. "13800000001"')
    return phone


def _geofence(t):
    name = t.get("name", str, required=True, fix='give the geofence a unique name, e.g. "river-tunnel"')
    shape = _choice(t, "shape", SHAPES)
    rule = _choice(t, "rule", RULES, "keep_out")
    kinds = t.get("kinds", list, [])
    for kind in kinds:
        if kind not in VEHICLE_KINDS:
            raise t.error("kinds", "unknown vehicle kind %r" % (kind,), "choose from: " + ", ".join(VEHICLE_KINDS))
    fence = dict(name=name, shape=shape, rule=rule, kinds=tuple(kinds))
    if shape == "circle":
        if "radius_m" not in t.data:
            raise t.error("radius_m", "missing", "give the circle's radius in metres, e.g. 500")
        fence.update(center=_point(t, "center"), radius_m=float(t.number("radius_m", None, 1)))
    else:
        points = t.get("points", list, required=True, fix="list the vertices: [[lat, lon], [lat, lon], ...]")
        wanted = 3 if shape == "polygon" else 2
        if len(points) < wanted:
            raise t.error("points", "%d points" % len(points), "a %s needs at least %d [lat, lon] points" % (shape, wanted))
        checked = []
        for i, p in enumerate(points):
            probe = Table({"p": p}, t.key("points[%d]" % i), t.source, ["p"])
            checked.append(_point(probe, "p"))
        fence["points"] = tuple(checked)
        if shape == "corridor":
            if "width_m" not in t.data:
                raise t.error("width_m", "missing", "give the corridor's full width in metres, e.g. 300")
            fence["width_m"] = float(t.number("width_m", None, 10))
    return Geofence(**fence)


def load(path):
    """The vehicle sections of a gateway TOML file."""
    path = Path(path)
    return from_dict(load_toml(path, "a gateway TOML file"), base_dir=path.parent, source=str(path))


def from_dict(data, base_dir=Path("."), source="config"):
    """The vehicle sections of an already-parsed TOML document (other keys are ignored:
    gateway.config owns them). Returns a VehiclesConfig."""
    own = {k: v for k, v in data.items() if k in SECTIONS}
    root = Table(own, "", source, list(SECTIONS))
    secrets = []

    jt = root.table("jt808", ["listen", "auth_secret", "session_timeout_seconds", "position_retention_days",
                              "registrations_path", "release_window_seconds"]
                    + list(LIMIT_KEYS) + list(REPORT_LIMIT_KEYS) + list(TCP_LIMIT_KEYS), default_empty=False)
    jt808 = None
    if jt is not None:
        secret = jt.get("auth_secret", str)
        if secret is not None:
            secrets.append(secret)
        registrations = jt.get("registrations_path", str)
        registrations_path = None
        if registrations is not None:
            registrations_path = Path(registrations)
            if not registrations_path.is_absolute():
                registrations_path = Path(base_dir) / registrations_path
        retention = int(jt.number("position_retention_days", DEFAULT_POSITION_RETENTION_DAYS, 1))
        if retention < MIN_POSITION_RETENTION_DAYS:
            raise jt.error("position_retention_days", "shorter than the 6 months the road-transport rule requires",
                           "set %d or more" % MIN_POSITION_RETENTION_DAYS)
        jt808 = JT808Settings(listen=jt.address("listen", required=True), auth_secret=secret,
                              registrations_path=registrations_path,
                              release_window=float(jt.number("release_window_seconds", 3600, 60, 7 * 86400)),
                              session_timeout=float(jt.number("session_timeout_seconds", 180, 5, 86400)),
                              position_retention_days=retention, limits=_limits(jt),
                              report_limits=_limits(jt, ReportLimits, REPORT_LIMIT_KEYS),
                              net_limits=tcp_limits(jt, net_defaults(), "known terminals"))

    vt = root.table("vehicles", ["max_speed_kmh", "overspeed_min_seconds", "max_parking_minutes",
                                 "max_driving_hours", "min_rest_minutes", "fleet", "geofences"])
    fences = [_geofence(t) for t in vt.tables("geofences", ["name", "shape", "rule", "kinds", "center", "radius_m",
                                                             "points", "width_m"])]
    names = [f.name for f in fences]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError("vehicles.geofences[%d].name" % i, name, "used twice", "give each geofence a unique name", source)
    rules = RuleSettings(
        max_speed_kmh=float(vt.number("max_speed_kmh", 80, 5, 300)),
        overspeed_min_seconds=float(vt.number("overspeed_min_seconds", 30, 0, 3600)),
        max_parking_seconds=float(vt.number("max_parking_minutes", 30, 1, 7 * 1440)) * 60,
        max_driving_seconds=float(vt.number("max_driving_hours", 4, 0.5, 24)) * 3600,
        min_rest_seconds=float(vt.number("min_rest_minutes", 20, 1, 600)) * 60,
        geofences=tuple(fences))

    fleet, phones, accounts = [], set(), set()
    for t in vt.tables("fleet", ["phone", "plate", "kind", "account", "terminal_id", "max_speed_kmh", "route"]):
        phone = _phone(t)
        if normalise_phone(phone) in phones:
            raise t.error("phone", "listed twice", "keep one [[vehicles.fleet]] entry per SIM number")
        account = t.get("account", str, "")
        if account and not (3 <= len(account) <= 16 and all(c in "0123456789ABCDEFabcdef" for c in account)):
            raise t.error("account", "not 3-16 hex digits", "leave it out (the phone is used) or write hex digits")
        if not account and len(normalise_phone(phone)) > 16:
            raise t.error("phone", "longer than 16 digits without an account",
                          'add account = "..." (3-16 hex digits) for the events of this vehicle')
        route = t.get("route", str, "")
        if route and route not in names:
            raise t.error("route", "no geofence of that name", "define it in [[vehicles.geofences]] (shape = \"corridor\")")
        max_speed = t.get("max_speed_kmh", (int, float))
        vehicle = Vehicle(phone=phone, plate=t.get("plate", str, required=True, fix='write the plate, e.g. "粤B12345"'),
                          kind=_choice(t, "kind", VEHICLE_KINDS, "other"), account=account,
                          terminal_id=t.get("terminal_id", str, ""), route=route,
                          max_speed_kmh=float(max_speed) if max_speed is not None else None)
        if vehicle.account in accounts:
            raise t.error("account", "used by another vehicle", "give each vehicle its own account")
        phones.add(vehicle.phone)
        accounts.add(vehicle.account)
        fleet.append(vehicle)

    edge = _edge(root, base_dir)
    return VehiclesConfig(jt808=jt808, fleet=fleet, rules=rules, edge=edge, secrets=secrets)


# [jt808] key -> (SessionLimits field, minimum, maximum); defaults are SessionLimits'.
LIMIT_KEYS = {
    "login_timeout_seconds": ("login_timeout", 1, 3600),
    "unauthenticated_max_refused": ("unauthenticated_max_refused", 1, 100),
    "reassembly_max_messages": ("reassembly_max_messages", 1, 256),
    "reassembly_max_packets": ("reassembly_max_packets", 2, 65535),
    "reassembly_session_bytes": ("reassembly_session_bytes", 4096, 1 << 30),
    "reassembly_total_bytes": ("reassembly_total_bytes", 4096, 1 << 34),
    "reassembly_timeout_seconds": ("reassembly_timeout", 1, 3600),
    "liveness_probe_seconds": ("liveness_probe", 0.5, 60),
}


REPORT_LIMIT_KEYS = {
    "report_max_speed_kmh": ("max_speed_kmh", 50, 1000),
    "report_max_age_days": ("max_age_days", 1, 3650),
    "report_max_ahead_seconds": ("max_ahead_seconds", 60, 7 * 86400),
    "alarm_burst_bits": ("alarm_burst_bits", 4, 32),
}


def _limits(jt, kind=SessionLimits, keys=LIMIT_KEYS):
    defaults = kind()
    values = {}
    for key, (name, low, high) in keys.items():
        default = getattr(defaults, name)
        value = jt.number(key, default, low, high)
        values[name] = type(default)(value)
    if kind is SessionLimits and values["reassembly_total_bytes"] < values["reassembly_session_bytes"]:
        raise jt.error("reassembly_total_bytes", "smaller than reassembly_session_bytes",
                       "make the total at least one session's bound")
    return kind(**values)


def _edge(root, base_dir):
    et = root.table("edge", ["phone", "plate", "terminal_id", "version", "kind", "center", "store_path",
                             "report_interval_seconds", "heartbeat_seconds", "gnss", "modbus", "allowed_places"],
                    default_empty=False)
    if et is None:
        return None
    version = et.get("version", int, 2013)
    if version not in (2013, 2019):
        raise et.error("version", "not a JT/T 808 edition", "write 2013 or 2019")
    terminal_id = et.get("terminal_id", str, required=True, fix='write the terminal id, e.g. "EDGE001"')
    if len(terminal_id.encode()) > (30 if version == 2019 else 7):
        raise et.error("terminal_id", "too long for JT/T 808-%d" % version,
                       "use at most %d characters" % (30 if version == 2019 else 7))
    store_path = Path(et.get("store_path", str, "vehicle.db"))
    edge = EdgeSettings(phone=_phone(et), plate=et.get("plate", str, required=True, fix='write the plate, e.g. "粤B12345"'),
                        terminal_id=terminal_id, center=et.address("center", required=True),
                        store_path=store_path if store_path.is_absolute() else Path(base_dir) / store_path,
                        version=version, kind=_choice(et, "kind", VEHICLE_KINDS, "other"),
                        report_interval=float(et.number("report_interval_seconds", 1, 0.1, 3600)),
                        heartbeat=float(et.number("heartbeat_seconds", 30, 1, 3600)))
    gnss = et.table("gnss", ["serial", "baudrate", "tcp"], default_empty=False)
    if gnss is not None:
        edge.gnss_serial = gnss.get("serial", str)
        edge.gnss_baudrate = int(gnss.number("baudrate", 9600, 300, 921600))
        edge.gnss_tcp = gnss.address("tcp")
        if (edge.gnss_serial is None) == (edge.gnss_tcp is None):
            raise gnss.error("serial", "give exactly one of serial and tcp",
                             'write serial = "/dev/ttyS1" or tcp = "127.0.0.1:10110"')
    names = set()
    for t in et.tables("modbus", ["name", "map", "serial", "baudrate", "tcp", "unit", "interval_seconds",
                                  "timeout_seconds"]):
        name = t.get("name", str, required=True, fix='name the device, e.g. "tank"')
        if name in names:
            raise t.error("name", "used twice", "give each Modbus device its own name")
        names.add(name)
        map_name = t.get("map", str, required=True, fix="one of " + ", ".join(MAPS))
        if map_name not in MAPS:
            raise t.error("map", "no register map of that name", "one of " + ", ".join(MAPS))
        device = ModbusDevice(name=name, map_name=map_name, serial=t.get("serial", str),
                              baudrate=int(t.number("baudrate", 9600, 300, 921600)), tcp=t.address("tcp"),
                              unit=int(t.number("unit", 1, 1, 247)),
                              interval=float(t.number("interval_seconds", 1, 0.05, 3600)),
                              timeout=float(t.number("timeout_seconds", 1, 0.05, 60)))
        if (device.serial is None) == (device.tcp is None):
            raise t.error("serial", "give exactly one of serial (RTU) and tcp",
                          'write serial = "/dev/ttyS2" or tcp = "192.168.1.20:502"')
        edge.modbus.append(device)
    if len(edge.modbus) > MAX_MODBUS_DEVICES:
        raise et.error("modbus", "%d devices" % len(edge.modbus),
                       "at most %d (each device's alarm zones must fit one byte uplink)" % MAX_MODBUS_DEVICES)
    for t in et.tables("allowed_places", ["name", "center", "radius_m"]):
        edge.allowed_places.append(_point(t, "center") + (float(t.number("radius_m", 100, 1)),))
    return edge


def retention_with_positions(store_retention_days, vehicles_config):
    """The store's per-class retention with positions (class "telemetry") kept as
    long as [jt808].position_retention_days says; alarms keep the store's own."""
    retention = dict(store_retention_days)
    if vehicles_config.jt808 is not None:
        retention["telemetry"] = max(vehicles_config.jt808.position_retention_days, MIN_RETENTION_DAYS)
    return retention
