"""The provisioning CSV: per-row errors that name column, value and fix; secrets
never echoed; configs in the firmware's format; the registry the gateway loads."""
import importlib.util
import json
import tomllib

from gateway import config as gateway_config
from hil.manifest import ROOT
from tools import provision

HEADER = "device_id,type,account,port,mac,board,zones,receivers,key_hex,users,installer_pin,wifi_ssid,wifi_password\n"
GOOD = "p1,panel,2001,/dev/ttyUSB0,24:0a:c4:00:00:01,,1:entry_exit:seol;2:panic,127.0.0.1:7000,%s,1:user:918273:1+2,,home,s3cretWifiPw\n" % ("AB" * 16)


def write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "site.csv"
    path.write_text(header + "".join(rows))
    return path


def test_a_good_row_becomes_a_spec(tmp_path):
    specs, errors = provision.read_csv(write(tmp_path, GOOD))
    assert errors == []
    (s,) = specs
    assert (s.device_id, s.account, s.board, s.mac) == ("p1", "2001", "ESP32_GENERIC", "24:0a:c4:00:00:01")
    assert s.zones == [{"n": 1, "type": "entry_exit", "wiring": "seol", "partition": 1},
                       {"n": 2, "type": "panic", "wiring": "dry", "partition": 1}]
    assert s.receivers == [("127.0.0.1", 7000)] and s.users[0]["partitions"] == [1, 2]
    assert "918273" not in repr(s) and "s3cret" not in repr(s)


def test_broken_rows_are_each_reported_and_do_not_stop_the_others(tmp_path):
    rows = [
        GOOD,
        "p2,alarm,2002,,,,,127.0.0.1:7000,,,,,\n",                       # type
        "p3,panel,20G3,,,,,127.0.0.1:7000,,,,,\n",                        # account
        "p4,panel,2004,,,,1:lava,127.0.0.1:7000,,,,,\n",                  # zone type
        "p5,panel,2005,,,,,localhost,,,,,\n",                              # receivers
        "p6,panel,2006,,,,,127.0.0.1:7000,%s,,,,\n" % ("AB" * 15),          # short key
        "p7,panel,2007,,,,,127.0.0.1:7000,,1:user:12a4,,,\n",             # bad PIN
        "p8,panel,2001,,,,,127.0.0.1:7000,,,,,\n",                         # duplicate account
        "p9,panel,2009,,,ESP32_NOPE,,127.0.0.1:7000,,,,,\n",               # board
        "p10,intercom,200A,,,,,127.0.0.1:7000,,,,,\n",                     # good
    ]
    specs, errors = provision.read_csv(write(tmp_path, *rows))
    assert [s.device_id for s in specs] == ["p1", "p10"]
    got = {e.row: (e.column, e.value) for e in errors}
    assert got == {3: ("type", "alarm"), 4: ("account", "20G3"), 5: ("zones", "1:lava"),
                   6: ("receivers", "localhost"), 7: ("key_hex", "<hidden>"), 8: ("users", "<hidden>"),
                   9: ("account", "2001"), 10: ("board", "ESP32_NOPE")}
    text = "\n".join(str(e) for e in errors)
    assert "row 4, column account = '20G3': not 3-16 hex digits; fix: write the DC-09 account" in text
    assert "already used by row 2" in text and "use one of ESP32_GENERIC" in text
    assert "AB" * 15 not in text and "12a4" not in text        # secrets never echoed


def test_header_problems_are_reported_once(tmp_path):
    _, errors = provision.read_csv(write(tmp_path, GOOD, header=HEADER.replace("zones", "zonez")))
    assert [(e.row, e.column, e.problem) for e in errors] == [(1, "zonez", "unknown column")]


def test_missing_key_needs_generate_secrets_and_generated_ones_are_kept(tmp_path):
    specs, _ = provision.read_csv(write(tmp_path, "p1,panel,2001,,,,,127.0.0.1:7000,,,,,\n"))
    store = provision.SecretStore(tmp_path / "s.json")
    try:
        provision.resolve_secrets(specs[0], store, generate=False)
        raise AssertionError("expected a RowError")
    except provision.RowError as e:
        assert e.column == "key_hex" and "--generate-secrets" in e.fix
    made = provision.resolve_secrets(specs[0], store, generate=True)
    assert made == ["key", "installer code"] and len(specs[0].key_hex) == 32 and len(specs[0].installer_pin) == 6
    store.save()
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o600
    again, _ = provision.read_csv(write(tmp_path, "p1,panel,2001,,,,,127.0.0.1:7000,,,,,\n"))
    assert provision.resolve_secrets(again[0], provision.SecretStore(tmp_path / "s.json"), generate=True) == []
    assert (again[0].key_hex, again[0].installer_pin) == (specs[0].key_hex, specs[0].installer_pin)


def _firmware_users_module():
    spec = importlib.util.spec_from_file_location("fw_users", ROOT / "firmware" / "core" / "users.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_device_config_has_the_firmware_format_and_only_hashed_pins(tmp_path):
    specs, _ = provision.read_csv(write(tmp_path, GOOD))
    spec = specs[0]
    spec.installer_pin = "246810"
    cfg = provision.device_config(spec, "5a17", {"panel": {"hw": {"ac_pin": 27}, "zone_inputs": {"1": {"adc": 32}}}})
    text = provision.config_bytes(cfg).decode()
    assert "918273" not in text and "246810" not in text
    assert cfg["role"] == "panel" and cfg["target"] == "esp32" and cfg["salt"] == "5a17"
    assert cfg["reporter"]["receivers"] == [{"host": "127.0.0.1", "port": 7000}] and cfg["reporter"]["key_hex"] == "AB" * 16
    assert cfg["hw"] == {"ac_pin": 27, "wifi": {"ssid": "home", "key": "s3cretWifiPw"}}
    assert cfg["zones"][0]["input"] == {"adc": 32}
    assert cfg["partitions"] == [1, 2] and cfg["keypads"] == [{"partition": 1}, {"partition": 2}]
    # the firmware's own code accepts the PINs the tool hashed, and no other
    users = _firmware_users_module().Users(json.loads(text))
    assert users.by_pin("918273").n == 1 and users.by_pin("246810").role == "installer"
    assert users.by_pin("918274") is None


def test_registry_is_what_the_gateway_loads(tmp_path):
    specs, _ = provision.read_csv(write(tmp_path, GOOD, 'p2,intercom,200A,,,,,127.0.0.1:7000,%s,,,,\n' % ("CD" * 16)))
    specs[1].site = 'Gate "A" 湖畔'
    text = provision.registry_toml(specs, "site.csv")
    data = tomllib.loads(text)
    data.update({"gateway": {"name": "t"}, "store": {"path": str(tmp_path / "e.db")}})
    cfg = gateway_config.from_dict(data, tmp_path, "registry")
    assert set(cfg.devices) == {"2001", "200A"}
    assert cfg.key_for("2001") == bytes.fromhex("AB" * 16)
    assert cfg.devices["200A"].type == "intercom" and cfg.devices["200A"].site == 'Gate "A" 湖畔'
    assert cfg.devices["2001"].reporting_interval == provision.DEFAULT_SUPERVISION * provision.SUPERVISION_FACTOR


def test_the_pin_digest_provisioned_is_the_one_the_device_checks():
    """tools/provision.py, hil/sim.py and the firmware's users.py use one pin_hash
    (protocols/crc.py): a PIN provisioned is a PIN the device accepts."""
    import sys
    from pathlib import Path
    from hil import sim
    from protocols.crc import pin_hash
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "firmware"))
    from core.users import Users
    assert provision.pin_hash is sim.pin_hash is pin_hash
    users = Users({"salt": "5a17", "users": [{"n": 4, "pin": provision.pin_hash("5a17", "2468"), "partitions": [1]}]})
    assert users.by_pin("2468").n == 4 and users.by_pin(b"2468").n == 4 and users.by_pin("2469") is None
