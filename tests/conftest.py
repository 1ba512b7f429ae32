import os

import pytest
from hypothesis import settings

from tests.support.mosquitto import running_mosquitto

# CI runs the property tests on a fixed sequence of examples, so a landing does not
# hinge on which random examples it drew; local runs keep exploring new ones (and
# Hypothesis's database replays anything they found).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# --board-port, --qemu-firmware, ... and the board_dut / qemu_dut fixtures.
pytest_plugins = ["hil.pytest_plugin"]


@pytest.fixture
def mosquitto(tmp_path):
    """(host, port) of a private Mosquitto broker started for this test."""
    with running_mosquitto(tmp_path) as address:
        yield address
