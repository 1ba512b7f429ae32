import pytest

from tests.console.support import Console


@pytest.fixture
async def center(tmp_path):
    """A gateway receiving DC-09 with the console served from it, accounts for every role."""
    c = Console(tmp_path)
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def clients(center):
    """Logged-in clients by username; closed after the test."""
    made = []

    async def make(username=None):
        client = await center.client(username)
        made.append(client)
        return client
    yield make
    for client in made:
        await client.close()
