"""Issue 11 §5: a secret copied from examples/ (public) or containing "change-me"
stops the gateway before it opens a socket, naming the key and the fix; the demo
starts with secrets of its own."""
import argparse
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway import demo, service
from gateway.app import Gateway
from gateway.config import ConfigError, example_secret_problems, refuse_example_secrets
from tests.gateway.helpers import center_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name, key", [
    ("alarm-service-center.toml", "forwarders[0].key_hex"),
    ("110-center.toml", "devices[0].key_hex"),
    ("residential-compound.toml", "forwarders[1].key_text"),
    ("fleet-center.toml", "forwarders[0].key_hex"),
])
async def test_examples_as_they_are_do_not_start(name, key, tmp_path):
    cfg = config_module.load(EXAMPLES / name)
    cfg.store_path = tmp_path / "events.db"
    with pytest.raises(ConfigError) as e:
        await Gateway(cfg).start()
    text = str(e.value)
    assert e.value.key == key and "example placeholder" in text and "openssl rand" in text
    assert not cfg.store_path.exists()                     # stopped before opening anything


def test_change_me_anywhere_and_the_value_is_not_printed(tmp_path):
    cfg = center_config(tmp_path, forwarders=[{"name": "hook", "type": "webhook", "url": "https://110.example/a",
                                               "secret": "please-change-me-now"}])
    with pytest.raises(ConfigError) as e:
        refuse_example_secrets(cfg)
    assert e.value.key == "forwarders[0].secret" and 'contains "change-me"' in str(e.value)
    assert "please-change-me-now" not in str(e.value)
    # an example value pasted into another file is refused too, with its key
    cfg = center_config(tmp_path, devices=[{"account": "1001", "key_hex": "5A3C9E01B7D24F6880C1E3A500002001"}])
    assert [k for k, _ in example_secret_problems(cfg)] == ["devices[0].key_hex"]
    assert example_secret_problems(center_config(tmp_path)) == []        # the tests' own keys are fine


def test_jifang_gateway_refuses_an_example_config(capsys):
    args = argparse.Namespace(config=str(EXAMPLES / "110-center.toml"), log_level="ERROR")
    assert service.run(args) == 2
    err = capsys.readouterr().err
    assert "devices[0].key_hex" in err and "fix:" in err


def test_demo_configs_carry_their_own_secrets(tmp_path):
    ports = {"asc": 1, "110": 2, "asc_http": 3, "110_http": 4, "console": 5}
    asc, center = demo.demo_configs(tmp_path, ports)
    assert example_secret_problems(asc) == [] and example_secret_problems(center) == []
    # the peering key still matches at both ends, and every panel has its own key
    assert asc.forwarders[0].key == center.key_for("2001")
    panel_keys = [d.key for a, d in asc.devices.items() if a != "*"]
    assert len(set(panel_keys)) == len(panel_keys) == 24
    again, _ = demo.demo_configs(tmp_path, ports)
    assert again.devices["2001"].key != asc.devices["2001"].key          # generated per run
