import pytest

from tests.support.mosquitto import running_mosquitto

# --board-port, --qemu-firmware, ... and the board_dut / qemu_dut fixtures.
pytest_plugins = ["hil.pytest_plugin"]


@pytest.fixture
def mosquitto(tmp_path):
    """(host, port) of a private Mosquitto broker started for this test."""
    with running_mosquitto(tmp_path) as address:
        yield address
