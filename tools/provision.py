"""The provisioning CSV: one row per device, validated strictly, turned into each
device's /config.json (the format of firmware/core/config.py) and into the center's
device registry (the [[devices]] tables of gateway/config.py).

Every problem is reported per row as "row N, column C = V: problem; fix: ...", and
a broken row does not stop the others. Secrets (DC-09 keys, PINs, WiFi passwords)
are never echoed in an error: their value is shown as <hidden>.

Columns (header row required; order free; unknown columns are an error):
  device_id   unique name, letters/digits/-/_ (1-32)           required
  type        panel | intercom                                 required
  account     DC-09 account, 3-16 hex digits, unique           required
  port        serial port of the device (/dev/ttyUSB0, COM3)    needed to write, not for --out
  mac         the chip's MAC (checked after connecting)         optional
  board       a board of tools/partitions.py LAYOUTS            default: --board
  site, address, contact                                        registry enrichment
  zones       N:type[:wiring[:partition]] ; ...   e.g. 1:entry_exit:seol;2:panic
  receivers   HOST:PORT[;HOST:PORT]  primary and backup DC-09 receivers   required
  transport   tcp | udp                                         default tcp
  key_hex     AES key, 32/48/64 hex digits; empty = generated with --generate-secrets
  supervision seconds between link tests (NULL) when idle       default 60
  wifi_ssid, wifi_password
  mqtt        HOST:PORT of the compound broker                  optional
  users       N:role:PIN[:P+P] ; ...   role user|duress|installer, PIN 4-8 digits
  installer_pin  the installer code; empty = generated with --generate-secrets
"""
import csv
import json
import os
import re
import secrets as _random
from dataclasses import dataclass, field
from pathlib import Path

from protocols.crc import pin_hash
from tools import partitions

COLUMNS = ("device_id", "type", "account", "port", "mac", "board", "site", "address", "contact",
           "zones", "receivers", "transport", "key_hex", "supervision", "wifi_ssid", "wifi_password",
           "mqtt", "users", "installer_pin")
REQUIRED = ("device_id", "type", "account", "receivers")
SECRET_COLUMNS = ("key_hex", "wifi_password", "users", "installer_pin")

# firmware/panel/zones.py TYPES and wirings; firmware/core/users.py roles
ZONE_TYPES = ("entry_exit", "instant", "perimeter", "interior", "panic", "fire", "medical", "tamper")
WIRINGS = ("dry", "seol", "deol")
ROLES = ("user", "duress", "installer")
INSTALLER_USER = 99          # user number given to the installer_pin column's code
DEFAULT_SUPERVISION = 60
# The registry's silence threshold, in link-test intervals: one or two lost NULLs
# are not yet a communication trouble (the gateway's learned_interval_factor is 3 too).
SUPERVISION_FACTOR = 3


class RowError(Exception):
    def __init__(self, row, column, value, problem, fix):
        self.row, self.column, self.problem, self.fix = row, column, problem, fix
        self.value = "<hidden>" if column in SECRET_COLUMNS and value else value
        super().__init__("row %d, column %s = %r: %s; fix: %s" % (row, column, self.value, problem, fix))


@dataclass
class Spec:
    """One validated CSV row (secrets included: never print a Spec)."""
    row: int
    device_id: str
    type: str
    account: str
    port: str = ""
    mac: str = ""
    board: str = "ESP32_GENERIC"
    site: str = ""
    address: str = ""
    contact: str = ""
    zones: list = field(default_factory=list)
    receivers: list = field(default_factory=list)
    transport: str = "tcp"
    key_hex: str = ""
    supervision: int = DEFAULT_SUPERVISION
    wifi_ssid: str = ""
    wifi_password: str = ""
    mqtt: tuple = None
    users: list = field(default_factory=list)
    installer_pin: str = ""

    def __repr__(self):        # dataclass repr would print the secrets
        return "Spec(row=%d, device_id=%r, account=%r)" % (self.row, self.device_id, self.account)

    @property
    def layout(self):
        return partitions.layout(self.board)


def _host_port(text, row, column, fix):
    m = re.fullmatch(r"\s*([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})\s*", text)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise RowError(row, column, text, "not HOST:PORT", fix)
    return m.group(1).strip("[]"), int(m.group(2))


def _parse_zones(text, row):
    zones, seen = [], set()
    for item in filter(None, (s.strip() for s in text.split(";"))):
        parts = item.split(":")
        fix = "write zones as N:type[:wiring[:partition]] separated by ';', e.g. 1:entry_exit:seol;2:panic"
        if not 2 <= len(parts) <= 4 or not parts[0].isdigit() or not 1 <= int(parts[0]) <= 999:
            raise RowError(row, "zones", item, "not N:type[:wiring[:partition]] with N 1-999", fix)
        n = int(parts[0])
        if n in seen:
            raise RowError(row, "zones", item, "zone %d listed twice" % n, "give each zone one entry")
        seen.add(n)
        if parts[1] not in ZONE_TYPES:
            raise RowError(row, "zones", item, "unknown zone type %r" % parts[1], "use one of " + ", ".join(ZONE_TYPES))
        wiring = parts[2] if len(parts) > 2 and parts[2] else "dry"
        if wiring not in WIRINGS:
            raise RowError(row, "zones", item, "unknown wiring %r" % wiring, "use one of " + ", ".join(WIRINGS))
        partition = parts[3] if len(parts) > 3 else "1"
        if not partition.isdigit() or not 1 <= int(partition) <= 8:
            raise RowError(row, "zones", item, "partition must be 1-8", fix)
        zones.append({"n": n, "type": parts[1], "wiring": wiring, "partition": int(partition)})
    return zones


def _pin(pin, row, column):
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise RowError(row, column, pin, "a PIN is 4-8 digits", "type the code as entered on the keypad")
    return pin


def _parse_users(text, row):
    users, seen = [], set()
    for item in filter(None, (s.strip() for s in text.split(";"))):
        parts = item.split(":")
        fix = "write users as N:role:PIN[:P+P] separated by ';', e.g. 1:user:1234:1+2;7:duress:7777"
        if not 3 <= len(parts) <= 4 or not parts[0].isdigit() or not 1 <= int(parts[0]) <= 999:
            # the item holds a PIN: name only the user number in the message
            raise RowError(row, "users", item, "user entry %r is not N:role:PIN[:P+P]" % parts[0], fix)
        n = int(parts[0])
        if n in seen:
            raise RowError(row, "users", item, "user %d listed twice" % n, "give each user one entry")
        seen.add(n)
        if parts[1] not in ROLES:
            raise RowError(row, "users", item, "user %d: unknown role %r" % (n, parts[1]), "use one of " + ", ".join(ROLES))
        pin = _pin(parts[2], row, "users")
        parts_text = parts[3] if len(parts) > 3 else "1"
        if not all(p.isdigit() and 1 <= int(p) <= 8 for p in parts_text.split("+")):
            raise RowError(row, "users", item, "user %d: partitions must be like 1+2" % n, fix)
        users.append({"n": n, "role": parts[1], "pin": pin, "partitions": [int(p) for p in parts_text.split("+")]})
    return users


def parse_row(raw, row, default_board):
    """A Spec from one CSV row (dict column -> text); raises RowError on the first problem."""
    v = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    for name in REQUIRED:
        if not v[name]:
            raise RowError(row, name, "", "missing", "fill in the %s column" % name)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", v["device_id"]):
        raise RowError(row, "device_id", v["device_id"], "not 1-32 letters, digits, - or _",
                       "use a short name such as b1-u2-0301")
    if v["type"] not in ("panel", "intercom"):
        raise RowError(row, "type", v["type"], "unknown device type", "write panel or intercom")
    if not re.fullmatch(r"[0-9A-Fa-f]{3,16}", v["account"]):
        raise RowError(row, "account", v["account"], "not 3-16 hex digits", "write the DC-09 account, e.g. 2001")
    spec = Spec(row=row, device_id=v["device_id"], type=v["type"], account=v["account"].upper(),
                port=v["port"], site=v["site"], address=v["address"], contact=v["contact"],
                wifi_ssid=v["wifi_ssid"], wifi_password=v["wifi_password"])
    if v["mac"]:
        if not re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", v["mac"]):
            raise RowError(row, "mac", v["mac"], "not a MAC address", "write it like 24:0a:c4:12:34:56")
        spec.mac = v["mac"].lower().replace("-", ":")
    spec.board = v["board"] or default_board
    if spec.board not in partitions.LAYOUTS:
        raise RowError(row, "board", spec.board, "unknown board", "use one of " + ", ".join(partitions.LAYOUTS))
    spec.zones = _parse_zones(v["zones"], row)
    if spec.type == "intercom" and spec.zones:
        raise RowError(row, "zones", v["zones"], "an intercom has no alarm zones", "leave zones empty for intercoms")
    receivers = [s for s in (x.strip() for x in v["receivers"].split(";")) if s]
    if not 1 <= len(receivers) <= 2:
        raise RowError(row, "receivers", v["receivers"], "give one or two receivers", "write HOST:PORT[;HOST:PORT]")
    spec.receivers = [_host_port(r, row, "receivers", "write HOST:PORT[;HOST:PORT], e.g. 10.0.0.5:12000")
                      for r in receivers]
    spec.transport = v["transport"] or "tcp"
    if spec.transport not in ("tcp", "udp"):
        raise RowError(row, "transport", spec.transport, "unknown transport", "write tcp or udp")
    if v["key_hex"]:
        if not re.fullmatch(r"[0-9A-Fa-f]+", v["key_hex"]) or len(v["key_hex"]) not in (32, 48, 64):
            raise RowError(row, "key_hex", v["key_hex"], "not 32, 48 or 64 hex digits",
                           "write the AES key in hex, or leave it empty and pass --generate-secrets")
        spec.key_hex = v["key_hex"].upper()
    if v["supervision"]:
        if not v["supervision"].isdigit() or not 10 <= int(v["supervision"]) <= 86400:
            raise RowError(row, "supervision", v["supervision"], "not 10-86400 seconds", "write the link-test interval in seconds")
        spec.supervision = int(v["supervision"])
    if spec.wifi_password and not spec.wifi_ssid:
        raise RowError(row, "wifi_ssid", "", "a WiFi password without a network name", "fill in wifi_ssid")
    if v["mqtt"]:
        spec.mqtt = _host_port(v["mqtt"], row, "mqtt", "write the broker as HOST:PORT, e.g. 10.0.0.2:1883")
    spec.users = _parse_users(v["users"], row)
    if v["installer_pin"]:
        spec.installer_pin = _pin(v["installer_pin"], row, "installer_pin")
    return spec


def read_csv(path, default_board="ESP32_GENERIC"):
    """(specs, errors): every good row as a Spec, every bad one as a RowError.
    Rows are numbered as in a spreadsheet (the header is row 1)."""
    specs, errors = [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        unknown = [c for c in (reader.fieldnames or []) if c and c.strip() not in COLUMNS]
        if unknown:
            return [], [RowError(1, unknown[0], unknown[0], "unknown column", "known columns: " + ", ".join(COLUMNS))]
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            return [], [RowError(1, missing[0], "", "column missing from the header", "add a %s column" % missing[0])]
        seen = {"device_id": {}, "account": {}, "port": {}, "mac": {}}
        for row, raw in enumerate(reader, start=2):
            if not any((x or "").strip() for x in raw.values() if isinstance(x, str)):
                continue                                    # blank line
            if None in raw:
                errors.append(RowError(row, "(row)", "", "more cells than header columns",
                                       "quote cells containing commas"))
                continue
            try:
                spec = parse_row(raw, row, default_board)
                for column, owners in seen.items():
                    value = getattr(spec, column)
                    if value and value in owners:
                        raise RowError(row, column, value, "already used by row %d" % owners[value],
                                       "each device needs its own %s" % column)
                for column, owners in seen.items():
                    if getattr(spec, column):
                        owners[getattr(spec, column)] = row
                specs.append(spec)
            except RowError as e:
                errors.append(e)
    return specs, errors


# -- secrets ------------------------------------------------------------------------------
class SecretStore:
    """Generated secrets, kept so that a re-run builds the same config (and so skips
    devices already provisioned) and so that the installer can read the generated
    installer codes. A JSON file readable by its owner only (0600)."""

    def __init__(self, path):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.changed = False

    def get(self, account, name, make):
        entry = self.data.setdefault(account, {})
        if name not in entry:
            entry[name] = make()
            self.changed = True
        return entry[name]

    def save(self):
        if not self.changed:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        self.changed = False


def new_key_hex():
    return _random.token_hex(16).upper()          # AES-128, as the gateway's examples


def new_pin():
    return "%06d" % _random.randbelow(10 ** 6)


def resolve_secrets(spec, store, generate):
    """Fill the spec's key and installer code from the CSV, else from the store (made
    by an earlier run), else newly generated when `generate`. Returns the names of
    what was generated. Raises RowError when a key is missing and not generated."""
    stored = store.data.get(spec.account, {})
    made = []
    if not spec.key_hex:
        if "key_hex" not in stored and not generate:
            raise RowError(spec.row, "key_hex", "", "no DC-09 key",
                           "fill in key_hex, or pass --generate-secrets to make one per device")
        if "key_hex" not in stored:
            made.append("key")
        spec.key_hex = store.get(spec.account, "key_hex", new_key_hex)
    has_installer = any(u["role"] == "installer" for u in spec.users)
    if not spec.installer_pin and not has_installer and ("installer_pin" in stored or generate):
        if "installer_pin" not in stored:
            made.append("installer code")
        spec.installer_pin = store.get(spec.account, "installer_pin", new_pin)
    return made


def salt_for(spec, store):
    """A per-device salt for the PIN hashes, stable across runs (kept in the store)."""
    return store.get(spec.account, "salt", lambda: _random.token_hex(8))


# -- device config (firmware/core/config.py format) ---------------------------------------
def device_config(spec, salt, hardware=None):
    """The /config.json document of one device. `hardware`: the board wiring profile
    ({"panel": {"hw": {...}, "zone_inputs": {"1": {"adc": 32}}}, "intercom": {...}})."""
    profile = (hardware or {}).get(spec.type, {})
    users = [{"n": u["n"], "role": u["role"], "partitions": u["partitions"], "pin": pin_hash(salt, u["pin"])}
             for u in spec.users]
    all_parts = sorted({z["partition"] for z in spec.zones} | {p for u in spec.users for p in u["partitions"]} or {1})
    if spec.installer_pin:
        users.append({"n": INSTALLER_USER, "role": "installer", "partitions": all_parts,
                      "pin": pin_hash(salt, spec.installer_pin)})
    zones = []
    inputs = profile.get("zone_inputs", {})
    for z in spec.zones:
        zone = dict(z)
        if str(z["n"]) in inputs:
            zone["input"] = inputs[str(z["n"])]
        zones.append(zone)
    hw = dict(profile.get("hw", {}))
    if spec.wifi_ssid:
        hw["wifi"] = {"ssid": spec.wifi_ssid, "key": spec.wifi_password}
    cfg = {
        "role": spec.type, "device_id": spec.device_id, "target": "esp32",
        "account": spec.account, "salt": salt, "site": spec.site,
        "partitions": all_parts, "keypads": [{"partition": p} for p in all_parts],
        "zones": zones, "users": users, "hw": hw,
        "reporter": {"receivers": [{"host": h, "port": p} for h, p in spec.receivers],
                     "transport": spec.transport, "key_hex": spec.key_hex,
                     "supervision": spec.supervision},
    }
    if spec.mqtt:
        cfg["mqtt"] = {"host": spec.mqtt[0], "port": spec.mqtt[1]}
    return cfg


def config_bytes(cfg):
    """Canonical JSON: the same config always gives the same bytes (and image)."""
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- the center's registry (gateway/config.py [[devices]]) -------------------------------
def _toml_str(text):
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(text, ensure_ascii=False)


def registry_toml(specs, source=""):
    lines = ["# Device registry for the gateway: paste into its TOML (or include it).",
             "# Generated by `jifang flash`%s. Holds DC-09 keys: keep it as secret as the gateway config." %
             (" from " + source if source else ""), ""]
    for s in specs:
        lines += ["[[devices]]",
                  "account = %s" % _toml_str(s.account),
                  "key_hex = %s" % _toml_str(s.key_hex),
                  "site = %s" % _toml_str(s.site),
                  "address = %s" % _toml_str(s.address),
                  "contact = %s" % _toml_str(s.contact),
                  "type = %s" % _toml_str(s.type),
                  "reporting_interval_seconds = %d" % (s.supervision * SUPERVISION_FACTOR),
                  ""]
    return "\n".join(lines)


def write_private(path, text):
    """Write a file only its owner can read (registry, secrets)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)   # a new folder for them is the owner's only
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
