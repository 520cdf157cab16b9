"""The simulator delivers signed webhooks (with duplicates and reordering) over real HTTP to a
running exporter that also polls. For the same world, its metrics equal a polling-only run's,
with fewer API requests, and webhooks alone count workflows before any poll sees them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from exporter.simulator import RunningSimulator, SimConfig
from exporter.web.app import create_app
from exporter.web.webhooks import PATH
from tests.e2e.live_harness import exporter, requests, settings_for, simulator
from tests.e2e.test_live_collection import expected_counts

pytestmark = pytest.mark.anyio

SECRET = "e2e-webhook-secret"
WORLD = dict(projects=3, seed=11, history=timedelta(days=2))
STEPS = 120  # two hours of one-minute steps
POLL_EVERY = 5  # with webhooks, polling runs every fifth step only


def tracked(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [{"slug": p.slug, "branches": ["default"], "other_branches": "fold"}
            for p in sim.world.projects]  # fmt: skip


def comparable(snapshot: Any) -> dict[str, Any]:
    """Everything the metrics show of runs: counters, histograms, gauges and state sets."""
    return {
        "workflow_runs": dict(snapshot.workflow_runs),
        "job_runs": dict(snapshot.job_runs),
        "pipelines": dict(snapshot.pipelines),
        # Observations arrive in another order with webhooks: compare sums rounded.
        "workflow_durations": _histograms(snapshot.workflow_durations),
        "job_durations": _histograms(snapshot.job_durations),
        "job_queue": _histograms(snapshot.job_queue_times),
        "workflows": dict(snapshot.workflows),
        "jobs": dict(snapshot.jobs),
    }


def _histograms(histograms: Any) -> dict[Any, Any]:
    return {k: (h.counts, round(h.total, 6)) for k, h in histograms.items()}


async def polling_only() -> tuple[dict[str, Any], int]:
    async with simulator(SimConfig(**WORLD)) as sim:  # type: ignore[arg-type]
        settings = settings_for(sim.api_url, tracked(sim))
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            for _ in range(STEPS):
                sim.world.clock.advance(60)
                await ex.cycle()
            sim.world.clock.advance(6 * 3600)
            await ex.cycle()
            await ex.cycle()
            return comparable(ex.snapshot()), sum(requests(sim).values())


@asynccontextmanager
async def serving(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                           lifespan="off"))  # fmt: skip
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await anyio.sleep(0.005)
        yield
        server.should_exit = True


def events(registry: CollectorRegistry, outcome: str) -> float:
    return sum(
        registry.get_sample_value(
            "circleci_exporter_webhook_events_total", {"event": e, "outcome": outcome}
        ) or 0.0
        for e in ("workflow-completed", "job-completed", "other")
    )  # fmt: skip


async def test_webhooks_plus_polling_equal_polling_only_with_fewer_requests() -> None:
    expected, polling_requests = await polling_only()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{PATH}"
    config = SimConfig(**WORLD, webhook_url=url, webhook_secret=SECRET,  # type: ignore[arg-type]
                       webhook_duplicate_ratio=0.2, webhook_reorder_ratio=0.2)  # fmt: skip
    async with simulator(config) as sim:
        sim.sender.stop()  # the test delivers, step by step, instead of its timer
        world = sim.world
        settings = settings_for(
            sim.api_url, tracked(sim), webhook_secret=f"retired-secret,{SECRET}"
        )
        async with exporter(sim, settings) as ex:
            registry = ex.parts.registry
            app = create_app(publisher=ex.parts.publisher, registry=registry, ready=lambda: True,
                             webhooks=ex.parts.webhooks)  # fmt: skip
            async with serving(app, sock):
                start = world.clock.now()
                await ex.cycle()
                for step in range(1, STEPS + 1):
                    world.clock.advance(60)
                    await sim.sender.deliver_due()
                    if step % POLL_EVERY == 0:
                        await ex.cycle()
                    elif step % 17 == 0:
                        # Between polls, the webhooks alone have counted every workflow.
                        workflows, _, _ = expected_counts(world, start, world.clock.now())
                        assert dict(ex.snapshot().workflow_runs) == dict(workflows)
                world.clock.advance(6 * 3600)
                await sim.sender.deliver_due()
                await ex.cycle()
                await ex.cycle()
                got = comparable(ex.snapshot())
            webhook_requests = sum(requests(sim).values())

    assert sum(expected["workflow_runs"].values()) > 20, "the scenario must complete runs"
    assert expected["job_queue"], "queue times must be part of the comparison"
    for name, values in expected.items():
        assert got[name] == values, name
    assert events(registry, "applied") > 50
    assert events(registry, "duplicate") > 10
    assert events(registry, "invalid_signature") == events(registry, "malformed") == 0
    assert webhook_requests < polling_requests
