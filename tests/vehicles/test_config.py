"""The [jt808] / [vehicles] / [edge] sections: the examples load, bad values are
named with the key, the value and the fix."""
import tomllib
from pathlib import Path

import pytest

from gateway import config as gateway_config
from gateway.config import ConfigError
from gateway.vehicles import config as vehicles_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CENTER = {"jt808": {"listen": "127.0.0.1:17808", "auth_secret": "0123456789abcdef0123"},
          "vehicles": {"fleet": [{"phone": "13800000001", "plate": "浙A00001", "kind": "escort"}]}}


@pytest.mark.parametrize("name", ["fleet-center.toml", "vehicle-hazmat.toml", "vehicle-escort.toml"])
def test_examples_load(name):
    path = EXAMPLES / name
    vc = vehicles_config.load(path)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    # The rest of the file is the gateway's own config and must load too.
    gateway_config.from_dict({k: v for k, v in data.items() if k not in vehicles_config.SECTIONS}, path.parent, name)
    if name == "fleet-center.toml":
        assert vc.jt808.listen == ("127.0.0.1", 17808) and len(vc.fleet) == 2
        assert vc.fleet[0].route == "cash-run-7" and vc.rules.max_parking_seconds == 1800
        assert [f.shape for f in vc.rules.geofences] == ["circle", "polygon", "corridor"]
        retention = vehicles_config.retention_with_positions({"default": 30, "alarm": 730}, vc)
        assert retention == {"default": 30, "alarm": 730, "telemetry": 183}
        assert vc.secrets == [] and vc.jt808.auth_secret is None     # codes are random now: no secret to keep
    else:
        assert vc.edge is not None and vc.jt808 is None


def with_(section, **changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in CENTER.items()}
    data[section].update(changes)
    return data


@pytest.mark.parametrize("data, key, words", [
    (with_("jt808", position_retention_days=90), "jt808.position_retention_days", "6 months"),
    (with_("jt808", listen="7808"), "jt808.listen", "HOST:PORT"),
    (with_("vehicles", fleet=[{"phone": "1380000000x", "plate": "A"}]), "vehicles.fleet[0].phone", "digits"),
    (with_("vehicles", fleet=[{"phone": "1", "plate": "A", "kind": "tank"}]), "vehicles.fleet[0].kind", "escort"),
    (with_("vehicles", fleet=[{"phone": "1", "plate": "A", "route": "nowhere"}]), "vehicles.fleet[0].route",
     "geofences"),
    (with_("vehicles", geofences=[{"name": "g", "shape": "circle", "center": [22.5, 114.0]}]),
     "vehicles.geofences[0].radius_m", "radius"),
    (with_("vehicles", geofences=[{"name": "g", "shape": "polygon", "points": [[1, 2], [3, 4]]}]),
     "vehicles.geofences[0].points", "at least 3"),
    (with_("vehicles", geofences=[{"name": "g", "shape": "circle", "center": [114.0, 22.5], "radius_m": 5}]),
     "vehicles.geofences[0].center", "latitude first"),
    (with_("vehicles", max_speeed_kmh=80), "vehicles.max_speeed_kmh", "max_speed_kmh"),
    ({"edge": {"phone": "1", "plate": "A", "terminal_id": "TOO-LONG-ID", "center": "127.0.0.1:1"}},
     "edge.terminal_id", "at most 7"),
    ({"edge": {"phone": "1", "plate": "A", "terminal_id": "T1", "center": "127.0.0.1:1",
               "modbus": [{"name": "tank", "map": "hazmat_tank", "tcp": "127.0.0.1:2"}]}},
     "edge.modbus[0].map", "hazmat-tank"),
    ({"edge": {"phone": "1", "plate": "A", "terminal_id": "T1", "center": "127.0.0.1:1",
               "gnss": {"serial": "/dev/ttyS1", "tcp": "127.0.0.1:3"}}}, "edge.gnss.serial", "exactly one"),
])
def test_bad_values_name_key_value_and_fix(data, key, words):
    with pytest.raises(ConfigError) as info:
        vehicles_config.from_dict(data)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)
