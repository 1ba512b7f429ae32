"""A private 3-node NATS cluster with JetStream, for tests and benches.

The launcher is the product's (gateway/cluster_local.py: `jifang demo --cluster` and
bench/cluster.py start the same one); this module keeps the tests' names for it.

    with running_nats_cluster(tmp_path) as cluster:
        cluster.urls                      # ["nats://127.0.0.1:P1", ...]
        cluster.kill(1)                   # kill -9 of node 1
        cluster.restart(1)                # same ports, same store folder
"""
import contextlib

from gateway.cluster_local import NATS_START_TIMEOUT as START_TIMEOUT  # noqa: F401
from gateway.cluster_local import NatsCluster, nats_server_binary  # noqa: F401
from gateway.cluster_local import NatsNode as Node  # noqa: F401
from gateway.cluster_local import running_nats_cluster as _running


@contextlib.contextmanager
def running_nats_cluster(folder, size=3):
    with _running(folder, size, name="jifang-test") as cluster:
        yield cluster
