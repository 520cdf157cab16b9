"""An exporter's live collection wired to a simulator with a manual clock, and the ground
truth the tests compare it with."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from exporter.collect.live import LiveCollector
from exporter.components import Components, build_components
from exporter.settings import Settings, load_settings
from exporter.simulator import RunningSimulator, SimClock, SimConfig, World
from exporter.simulator.model import Workflow
from exporter.state import State

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FAILURES = ("failed", "error")


@dataclass
class Exporter:
    """The parts of a running exporter the tests look at."""

    parts: Components

    @property
    def state(self) -> State:
        return self.parts.state

    @property
    def live(self) -> LiveCollector:
        return self.parts.live

    async def cycle(self) -> None:
        for collector in list(self.live.projects.values()):
            await self.live.collect_once(collector)

    def snapshot(self) -> Any:
        return self.state.snapshot(self.live.clock())


def settings_for(
    api_url: str,
    projects: list[dict[str, Any]],
    *,
    webhook_secret: str | None = None,
    **collect: Any,
) -> Settings:
    return load_settings(
        None,
        {
            "api": {"url": api_url, "requests_per_second": 1000, "burst": 1000, "max_retries": 0},
            "projects": projects,
            "collect": collect,
            "webhooks": {"secret": webhook_secret},
        },
    )


@asynccontextmanager
async def simulator(config: SimConfig, start: datetime = T0) -> AsyncIterator[RunningSimulator]:
    async with RunningSimulator(config, clock=SimClock.manual(start)) as sim:
        yield sim


@asynccontextmanager
async def exporter(sim: RunningSimulator, settings: Settings) -> AsyncIterator[Exporter]:
    """A live collector whose clock is the simulator's, and whose watch starts now."""
    clock = sim.world.clock

    def now() -> float:
        return clock.now().timestamp()

    # The simulator's token, as a user would put it in CIRCLECI_TOKEN.
    api = settings.api.model_copy(update={"token": SecretStr(sim.token)})
    async with build_components(settings.model_copy(update={"api": api}), clock=now) as parts:
        yield Exporter(parts)


def requests(sim: RunningSimulator) -> Counter[str]:
    stats = sim.stats()["requests"]
    assert isinstance(stats, dict)
    return Counter(stats)


def last_completed(world: World, slug: str, branch: str) -> dict[str, list[Workflow]]:
    """Completed workflows per name on a branch, newest first, as of the world's now."""
    now = world.clock.now()
    by_name: dict[str, list[Workflow]] = {}
    for workflow in world.workflows(slug, branch):
        if workflow.is_completed_at(now) and not workflow.pipeline.errors:
            by_name.setdefault(workflow.name, []).append(workflow)
    for runs in by_name.values():
        runs.sort(key=lambda w: (w.created_at, w.id), reverse=True)
    return by_name


def streak(runs: list[Workflow]) -> int:
    count = 0
    for run in runs:
        if run.final_status not in FAILURES:
            break
        count += 1
    return count
