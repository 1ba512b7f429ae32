"""Config is validated at start-up; a bad one names the key, the value and the fix."""
from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["residential-compound", "alarm-service-center", "110-center"])
def test_example_configs_load(name):
    cfg = config.load(EXAMPLES / ("%s.toml" % name))
    assert cfg.devices and cfg.forwarders


def test_example_alarm_service_center_relays_alarms_not_openings():
    cfg = config.load(EXAMPLES / "alarm-service-center.toml")
    up = cfg.forwarders[0]
    assert up.type == "dc09" and len(up.receivers) == 2
    assert up.accepts("alarm", "panic") and up.accepts("trouble", "power")
    assert not up.accepts("open_close", "arming")
    assert cfg.retention_days["alarm"] == 730 and cfg.retention_days["default"] == 30


def error_for(data):
    with pytest.raises(ConfigError) as info:
        config.from_dict(data)
    return info.value


def test_bad_address_names_key_value_and_fix():
    err = error_for({"receiver": {"listen": "localhost"}})
    assert err.key == "receiver.listen" and err.value == "localhost"
    assert "127.0.0.1:7001" in err.fix
    assert "receiver.listen = 'localhost'" in str(err)


def test_typo_suggests_the_known_key():
    err = error_for({"forwarders": [{"name": "110", "type": "dc09", "recievers": ["127.0.0.1:1"]}]})
    assert err.key == "forwarders[0].recievers" and "receivers" in err.fix


def test_retention_below_the_legal_minimum_is_refused():
    err = error_for({"store": {"retention_days": {"alarm": 7}}})
    assert err.key == "store.retention_days.alarm" and err.value == 7 and "30" in err.fix


def test_key_conventions_and_their_errors():
    cfg = config.from_dict({"devices": [{"account": "1234", "key_hex": "00" * 16},
                                        {"account": "ABC", "key_text": "0123456789abcdef"}]})
    assert cfg.key_for("1234") == bytes(16) and cfg.key_for("ABC") == b"0123456789abcdef"
    err = error_for({"devices": [{"account": "1234", "key_hex": "XYZ"}]})
    assert err.key == "devices[0].key_hex" and "32" in err.fix
    err = error_for({"devices": [{"account": "1234", "key_text": "short"}]})
    assert err.key == "devices[0].key_text"
    err = error_for({"devices": [{"account": "1234", "key_text": "0123456789abcdef", "key_hex": "00" * 16}]})
    assert "both" in err.problem


def test_bad_account_and_duplicate_forwarder():
    assert error_for({"devices": [{"account": "12G4"}]}).key == "devices[0].account"
    err = error_for({"forwarders": [{"name": "a", "type": "console"}, {"name": "a", "type": "console"}]})
    assert err.key == "forwarders[1].name"
    err = error_for({"forwarders": [{"name": "a", "type": "fax"}]})
    assert err.key == "forwarders[0].type" and "dc09" in err.fix


def test_star_entry_supplies_keys_for_listed_sites():
    cfg = config.from_dict({"devices": [{"account": "*", "key_hex": "11" * 16}, {"account": "2001", "site": "A"}]})
    assert cfg.key_for("2001") == bytes([0x11]) * 16          # registry for the site, "*" for the key
    assert cfg.key_for("9999") == bytes([0x11]) * 16
    assert cfg.device("9999").account == "*"


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "nope.toml")
    assert "not found" in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[receiver\nlisten=1")
    with pytest.raises(ConfigError) as info:
        config.load(bad)
    assert "TOML" in str(info.value)


def test_mqtt_source_limits_default_and_range():
    cfg = config.from_dict({"mqtt_source": {"broker": "127.0.0.1:18830"}})
    assert cfg.mqtt_source["max_payload_bytes"] == config.MQTT_MAX_PAYLOAD == 4096
    assert cfg.mqtt_source["status_memory"] == config.MQTT_STATUS_MEMORY == 10000
    assert cfg.mqtt_source["topic_prefix"] == "jifang"
    cfg = config.from_dict({"mqtt_source": {"broker": "127.0.0.1:18830", "max_payload_bytes": 512,
                                            "status_memory": 2}})
    assert (cfg.mqtt_source["max_payload_bytes"], cfg.mqtt_source["status_memory"]) == (512, 2)
    err = error_for({"mqtt_source": {"broker": "127.0.0.1:18830", "max_payload_bytes": 10}})
    assert err.key == "mqtt_source.max_payload_bytes" and err.value == 10
    err = error_for({"mqtt_source": {"broker": "127.0.0.1:18830", "status_memory": 0}})
    assert err.key == "mqtt_source.status_memory"


def test_cluster_store_url_and_its_limits():
    url = "postgresql://jifang_gateway:s3cret@127.0.0.1:6543/jifang"
    cfg = config.from_dict({"gateway": {"name": "a"}, "store": {"url": url, "pool_size": 8},
                                      "cluster": {"node": "n1", "lease_poll_seconds": 0.5}})
    assert cfg.store_url == url and cfg.store_pool_size == 8
    assert cfg.cluster.node == "n1" and cfg.cluster.lease_poll == 0.5 and cfg.cluster.lease_timeout == 2.0
    assert "s3cret" in cfg.secrets                          # scrubbed from logs
    assert config.from_dict({}).cluster is None          # SQLite stays the default
    for data, key in [({"store": {"url": "mysql://x"}}, "store.url"),
                      ({"store": {"url": url, "path": "x.db"}}, "store.path"),
                      ({"store": {"url": url, "pool_size": 1}}, "store.pool_size"),
                      ({"store": {"url": url, "pool_size": 65}}, "store.pool_size"),
                      ({"store": {"url": url}, "cluster": {"lease_poll_seconds": 6}}, "cluster.lease_poll_seconds"),
                      ({"store": {"url": url}, "cluster": {"lease_timeout_seconds": 0.01}}, "cluster.lease_timeout_seconds"),
                      ({"store": {"url": url}, "cluster": {"follow_poll_seconds": 10}}, "cluster.follow_poll_seconds"),
                      ({"store": {"url": url}, "cluster": {"heard_flush_seconds": 0}}, "cluster.heard_flush_seconds"),
                      ({"cluster": {"node": "n1"}}, "cluster.node")]:
        with pytest.raises(ConfigError) as info:
            config.from_dict(data)
        assert info.value.key == key, data


def test_stdout_feed_type_and_its_older_name():
    """The printed feed is type "stdout" (gateway/sinks/stdout.py); "console", its name
    before the web console took that word, still loads, with the same defaults."""
    from gateway.app import make_forwarder
    from gateway.sinks.stdout import StdoutForwarder
    from gateway.event import EVENT_CLASSES
    from gateway.metrics import Metrics
    for ftype in ("stdout", "console"):
        cfg = config.from_dict({"forwarders": [{"name": "feed", "type": ftype}]})
        (fw,) = cfg.forwarders
        assert fw.classes == EVENT_CLASSES and fw.categories == ()
        assert isinstance(make_forwarder(fw, None, Metrics(), "gw"), StdoutForwarder)
