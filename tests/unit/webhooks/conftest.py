from collections.abc import AsyncIterator

import pytest
from webhook_support import Harness, make_harness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async for h in make_harness():
        await h.read_projects()
        yield h
