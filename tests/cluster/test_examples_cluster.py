"""examples/cluster/: the node configs load as cluster nodes of one center (same
devices, forwarders and store, distinct node names, R3 bus over the same three NATS
nodes), are refused as they are (their keys are the public example values), and
the compose file's configs are valid gateway configs too. (The compose file itself
is not run here: no Docker in the test environment.)"""
import tomllib
from pathlib import Path

import pytest
import yaml

from gateway import config as config_module

CLUSTER = Path(__file__).resolve().parents[2] / "examples" / "cluster"


def nodes():
    return [config_module.load(CLUSTER / ("node-%s.toml" % n)) for n in "abc"]


def test_the_three_node_configs_are_one_center_on_three_machines():
    configs = nodes()
    assert [c.cluster.node for c in configs] == ["a", "b", "c"]
    assert len({c.name for c in configs}) == 1 and len({c.store_url for c in configs}) == 1
    assert all(c.bus.replicas == 3 and len(c.bus.servers) == 3 for c in configs)
    assert len({tuple(c.bus.servers) for c in configs}) == 1
    assert len({c.receiver_listen for c in configs}) == 3
    for c in configs[1:]:
        assert c.devices.keys() == configs[0].devices.keys()
        assert [(f.name, f.receivers) for f in c.forwarders] == [(f.name, f.receivers) for f in configs[0].forwarders]


def test_the_examples_keys_are_refused_until_replaced():
    for c in nodes():
        with pytest.raises(config_module.ConfigError):
            config_module.refuse_example_secrets(c)


def test_the_compose_files_node_configs_are_gateway_configs(tmp_path):
    compose = yaml.safe_load((CLUSTER / "compose.yaml").read_text())
    names = []
    for key in ("node-a", "node-b"):
        data = tomllib.loads(compose["configs"][key]["content"])
        names.append(config_module.from_dict(data, tmp_path, key).cluster.node)
    assert names == ["a", "b"]
    assert {"nats-1", "nats-2", "nats-3", "postgres", "gateway-a", "gateway-b"} <= set(compose["services"])
