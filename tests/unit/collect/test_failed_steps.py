"""The failing step of failed jobs: read once from API v1.1 (the simulator, in process), exposed
as circleci_job_last_failed_step_info, and the fallback when v1.1 refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.circleci import ApiTelemetry, CircleCIClient, RateLimiter
from exporter.collect.project import ProjectCollector
from exporter.metrics import render
from exporter.settings import CollectSettings, EffectiveBranchRules
from exporter.simulator import SimClock, SimConfig, World, create_app
from exporter.simulator import steps as sim_steps
from exporter.state import Buckets, State
from exporter.state.statuses import JOB_FAILURES

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = 86400.0


class RefuseV1(httpx.AsyncBaseTransport):
    """The simulator, except that API v1.1 answers 404 (as for some Bitbucket projects)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/v1.1/" in request.url.path:
            return httpx.Response(404, json={"message": "Build not found"})
        return await self.inner.handle_async_request(request)


@dataclass
class Rig:
    world: World
    state: State
    registry: CollectorRegistry
    collectors: list[ProjectCollector]

    def requests(self, endpoint: str, code: str) -> float:
        value = self.registry.get_sample_value(
            "circleci_exporter_api_requests_total", {"endpoint": endpoint, "code": code}
        )
        return value or 0.0


Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


async def _rig(wrap: Wrap) -> AsyncIterator[Rig]:
    clock = SimClock.manual(START)
    # A seed whose world ends with failed default-branch jobs (scheduled runs shift which do).
    world = World(SimConfig(projects=4, seed=13, history=2 * DAY), clock)
    state = State(watch_start=START.timestamp(), buckets=Buckets((60.0,), (60.0,), (5.0,)),
                  series_ttl=7 * DAY)  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    async with CircleCIClient(
        "http://sim/api",
        SecretStr(world.config.token),
        limiter=RateLimiter(1000, 1000, 8),
        telemetry=ApiTelemetry(registry),
        transport=wrap(httpx.ASGITransport(app=create_app(world))),
        max_retries=0,
    ) as client:
        collectors = [
            ProjectCollector(
                p.slug,
                EffectiveBranchRules(),
                client=client,
                state=state,
                settings=CollectSettings(lookback=2 * DAY),
                clock=lambda: START.timestamp(),
            )
            for p in world.projects
        ]
        for collector in collectors:
            await collector.cycle()
        yield Rig(world, state, registry, collectors)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for value in _rig(lambda t: t):
        yield value


@pytest.fixture
async def refusing() -> AsyncIterator[Rig]:
    async for value in _rig(RefuseV1):
        yield value


def _failed_rows(state: State) -> list[tuple[tuple[str, str, str, str], object]]:
    snapshot = state.snapshot(START.timestamp())
    return [
        (key, row)
        for key, row in snapshot.jobs.items()
        if row.last_completed_status in JOB_FAILURES
    ]


async def test_each_failed_job_names_its_failing_step(rig: Rig) -> None:
    snapshot = rig.state.snapshot(START.timestamp())
    failed = {k: r for k, r in snapshot.jobs.items() if r.last_completed_status in JOB_FAILURES}
    assert failed, "the world has no failed job on a default branch"
    for (project, _, _, job), row in failed.items():
        step = row.failed_step
        assert step is not None
        sim_job = rig.world.job(project, step.job_number)
        assert sim_job is not None and sim_job.name == job
        assert step.step == sim_steps.command_name(sim_job)
        assert step.step_id == 103
        assert step.index == sim_steps.failing_index(sim_job)
        assert step.allocation_id
        assert step.output_url is not None and "/action-output/" in step.output_url
        assert row.last_run is not None and step.url.startswith("https://app.circleci.com/")
    others = [r for r in snapshot.jobs.values() if r.last_completed_status not in JOB_FAILURES]
    assert others and all(r.failed_step is None for r in others)
    # One v1.1 read per failed job run, however many cycles follow.
    reads = rig.requests("getJobV1", "200")
    assert 0 < reads <= len(failed) + 2 * len(rig.collectors)
    for collector in rig.collectors:
        await collector.cycle()
    assert rig.requests("getJobV1", "200") == reads

    text = render(snapshot, {"live": 30.0}, None).text.decode()
    lines = [line for line in text.splitlines() if line.startswith("circleci_job_last_failed_step")]
    assert len(lines) == len(failed)
    assert all('step="' in line and 'url="https://app.circleci.com/' in line for line in lines)


async def test_when_v1_refuses_the_job_keeps_its_link_without_a_step(refusing: Rig) -> None:
    failed = _failed_rows(refusing.state)
    assert failed
    for _, row in failed:
        step = row.failed_step  # type: ignore[attr-defined]
        assert step is not None
        assert step.step == "" and step.output_url is None
        assert step.url.startswith("https://app.circleci.com/")
    # Counted as usual; after a refusal the project pauses v1.1, so at most one per project.
    refused = refusing.requests("getJobV1", "404")
    assert 1 <= refused <= len(refusing.collectors)
    for collector in refusing.collectors:
        await collector.cycle()
    assert refusing.requests("getJobV1", "404") == refused
