"""A simulated organisation on a manual clock, and a backfill wired to it in-process."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from exporter.backfill.command import Options, run_backfill
from exporter.settings import Settings, load_settings
from exporter.simulator import SimClock, SimConfig, World, create_app

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    # Speed 60: the 7 days of history are the last 2.8 hours, a 10-minute workflow 10 s.
    return World(SimConfig(projects=2, seed=5, speed=60), SimClock.manual(T0))


class Api(httpx.AsyncBaseTransport):
    """The simulator's app, counting requests by path, failing those the `fail` regex finds."""

    def __init__(self, world: World) -> None:
        self.app = httpx.ASGITransport(app=create_app(world))
        self.paths: Counter[str] = Counter()
        self.fail: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths[path] += 1
        if self.fail is not None and re.search(self.fail, path):
            return httpx.Response(404, json={"message": "gone for the test"})
        return await self.app.handle_async_request(request)


@dataclass
class Backfill:
    world: World
    api: Api
    settings: Settings
    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)

    async def run(self, options: Options) -> None:
        await run_backfill(
            self.settings,
            options,
            transport=self.api,
            stdout=self.stdout,
            stderr=self.stderr,
            clock=lambda: self.world.now().timestamp(),
        )


@pytest.fixture
def backfill(world: World) -> Backfill:
    settings = load_settings(
        None,
        {
            "api": {"url": "http://sim/api", "token": world.config.token,
                    "requests_per_second": 1000, "burst": 1000},
            "projects": [{"slug": p.slug} for p in world.projects],
        },
    )  # fmt: skip
    return Backfill(world, Api(world), settings)


def options(out: Path, **changes: object) -> Options:
    defaults: dict[str, object] = {"since": 7200.0, "step": 300.0, "until": "now"}
    return Options(out=out, **{**defaults, **changes})  # type: ignore[arg-type]
