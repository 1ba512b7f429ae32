import os

import pytest
from hypothesis import settings

from tests.support.mosquitto import running_mosquitto
from tests.support.postgres import running_postgres

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


@pytest.fixture(scope="session")
def postgres_server():
    """One private PostgreSQL for the session (initdb takes seconds); each test gets
    its own database from `pg_db`. Skipped, naming what to install, without binaries."""
    try:
        with running_postgres() as server:
            yield server
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


_databases = iter(range(1, 1 << 30))


@pytest.fixture
def pg_db(postgres_server):
    """A fresh database on the private server: (server, database name)."""
    name = "t%d" % next(_databases)
    postgres_server.create_database(name)
    return postgres_server, name


@pytest.fixture
def pg_log(postgres_server):
    """A fresh database holding an event log: (server, database name, gateway URL)."""
    name = "log%d" % next(_databases)
    return postgres_server, name, postgres_server.event_log(name)
