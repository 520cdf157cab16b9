import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
import respx
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.circleci import ApiTelemetry, Backoff, CircleCIClient, RateLimiter
from tests import fixtures

API_ROOT = "https://circleci.com/api"
TOKEN = "CCIPAT_s3cr3tT0kenValue_0123456789abcdef"
FIXTURES = fixtures.API


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def load() -> Callable[[str], Any]:
    def _load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text())

    return _load


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def telemetry(registry: CollectorRegistry) -> ApiTelemetry:
    return ApiTelemetry(registry)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API_ROOT, assert_all_called=False) as router:
        yield router


@pytest.fixture
def make_client(clock: FakeClock, telemetry: ApiTelemetry) -> Callable[..., CircleCIClient]:
    """A client on the fake clock with a generous limiter, so only retries ever wait."""

    def _make(**overrides: Any) -> CircleCIClient:
        options: dict[str, Any] = {
            "limiter": RateLimiter(1000.0, 1000, 16, clock=clock, sleep=clock.sleep),
            "telemetry": telemetry,
            "max_retries": 3,
            "backoff": Backoff(base=1.0, cap=30.0, rng=random.Random(1234)),
            "sleep": clock.sleep,
        }
        options.update(overrides)
        return CircleCIClient(API_ROOT, SecretStr(TOKEN), **options)

    return _make


@pytest.fixture
async def client(make_client: Callable[..., CircleCIClient]) -> AsyncIterator[CircleCIClient]:
    async with make_client() as api_client:
        yield api_client
