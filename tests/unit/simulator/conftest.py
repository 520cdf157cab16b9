"""Fixtures: a small world on a manual clock, and an httpx client wired to its app in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from exporter.simulator import Faults, SimClock, SimConfig, World, create_app

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SimClock:
    return SimClock.manual(START)


@pytest.fixture
def world(clock: SimClock) -> World:
    return World(SimConfig(projects=5, seed=7), clock)


@pytest.fixture
def faults() -> Faults:
    return Faults(seed=7)


@pytest.fixture
async def api(world: World, faults: Faults) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world, faults))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://sim/api/v2",
        headers={"Circle-Token": world.config.token},
    ) as client:
        yield client
