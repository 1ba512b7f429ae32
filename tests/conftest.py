import pytest

from tests.support.mosquitto import running_mosquitto


@pytest.fixture
def mosquitto(tmp_path):
    """(host, port) of a private Mosquitto broker started for this test."""
    with running_mosquitto(tmp_path) as address:
        yield address
