"""[bus]: absent means the embedded default (no NATS at all); present, every key is
checked, and a password in a server URL never reaches a log or an error message."""
import pytest

from gateway import config
from gateway.config import ConfigError


def test_no_bus_section_is_the_embedded_default():
    assert config.from_dict({}).bus is None


def test_bus_defaults_and_keys():
    bus = config.from_dict({"bus": {"url": "nats://10.0.0.1:4222, nats://10.0.0.2:4222"}}).bus
    assert bus.servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
    assert (bus.replicas, bus.duplicate_window, bus.publish_timeout, bus.alarm_ack_wait) == (3, 600, 5, 1)
    bus = config.from_dict({"bus": {"url": ["nats://127.0.0.1:4333"], "replicas": 1, "duplicate_window_seconds": 60,
                                    "max_stream_messages": 500, "ingest_batch": 32, "ack_wait_seconds": 10,
                                    "publish_timeout_seconds": 2, "publish_attempt_seconds": 0.2,
                                    "alarm_ack_wait_seconds": 0.5, "alarm_copies": 1}}).bus
    assert bus.alarm_copies == 1
    assert (bus.replicas, bus.duplicate_window, bus.max_stream_messages, bus.ingest_batch) == (1, 60, 500, 32)
    assert (bus.ack_wait, bus.publish_timeout, bus.publish_attempt, bus.alarm_ack_wait) == (10, 2, 0.2, 0.5)


@pytest.mark.parametrize("table, key", [
    ({}, "bus.url"),
    ({"url": []}, "bus.url"),
    ({"url": "10.0.0.1:4222"}, "bus.url"),                   # no scheme
    ({"url": ["nats://10.0.0.1"]}, "bus.url"),                # no port
    ({"url": "nats://h:1", "replicas": 0}, "bus.replicas"),
    ({"url": "nats://h:1", "replicas": 7}, "bus.replicas"),
    ({"url": "nats://h:1", "duplicate_window_seconds": 0}, "bus.duplicate_window_seconds"),
    ({"url": "nats://h:1", "max_stream_messages": 0}, "bus.max_stream_messages"),
    ({"url": "nats://h:1", "ingest_batch": 100000}, "bus.ingest_batch"),
    ({"url": "nats://h:1", "alarm_copies": 3}, "bus.alarm_copies"),
    ({"url": "nats://h:1", "servers": ["x"]}, "bus.servers"),  # unknown key
])
def test_bad_bus_settings_name_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        config.from_dict({"bus": table})
    assert err.value.key == key


def test_a_password_in_a_server_url_is_a_secret():
    cfg = config.from_dict({"bus": {"url": ["nats://gw:s3cret-pw@10.0.0.1:4222"]}})
    assert "s3cret-pw" in cfg.secrets
    with pytest.raises(ConfigError) as err:
        config.from_dict({"bus": {"url": ["nats://gw:s3cret-pw@10.0.0.1"]}})
    assert "s3cret-pw" not in str(err.value)
