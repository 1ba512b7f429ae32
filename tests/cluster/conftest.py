import pytest

from tests.support.nats import running_nats_cluster


@pytest.fixture
def nats_cluster(tmp_path):
    """A private 3-node NATS JetStream cluster on free loopback ports, stopped after the test."""
    with running_nats_cluster(tmp_path / "nats") as cluster:
        yield cluster
