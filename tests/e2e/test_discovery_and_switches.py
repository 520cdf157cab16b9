"""Project discovery under `orgs:`, and the switches that turn off job details and tests."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from exporter.collect.discovery import discover_projects
from exporter.settings import OrgSettings, load_settings
from exporter.simulator import SimConfig
from tests.e2e.live_harness import exporter, requests, settings_for, simulator

pytestmark = pytest.mark.anyio

WORLD = SimConfig(projects=6, seed=4, history=timedelta(days=1))


async def test_discovery_finds_the_orgs_projects_within_its_globs() -> None:
    async with simulator(WORLD) as sim:
        org = sim.world.projects[0].organization.slug
        members = {p.slug for p in sim.world.projects_of(org)}
        assert len(members) >= 2
        excluded = sorted(members)[0]
        settings = settings_for(sim.api_url, [])
        async with exporter(sim, settings) as ex:
            found = await discover_projects(
                ex.parts.client,
                OrgSettings(slug=org, exclude=[excluded]),
                insights_window=settings.collect.insights_window,
            )
        assert found == members - {excluded}


async def test_discovered_projects_are_collected() -> None:
    async with simulator(WORLD) as sim:
        org = sim.world.projects[0].organization.slug
        members = {p.slug for p in sim.world.projects_of(org)}
        settings = load_settings(
            None,
            {
                "api": {"url": sim.api_url, "requests_per_second": 1000, "burst": 1000},
                "orgs": [{"slug": org}],
                "collect": {"interval": "1h", "discovery_interval": "1h"},
            },
        )
        async with exporter(sim, settings) as ex, anyio.create_task_group() as tg:
            tg.start_soon(ex.live.run)
            with anyio.fail_after(30):
                while not (ex.live.ready and set(ex.live.projects) == members):  # noqa: ASYNC110 - polls the collector, which offers no event
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        snapshot = ex.snapshot()
        assert set(snapshot.projects) == members
        assert {p for (p, c), row in snapshot.collections.items() if row.up} == members


@pytest.mark.parametrize(
    ("collect", "absent"),
    [({"tests": False}, "getTests"), ({"job_details": False}, "getJobDetails")],
)
async def test_switches_stop_their_requests(collect: dict[str, bool], absent: str) -> None:
    async with simulator(WORLD) as sim:
        projects = [{"slug": p.slug, "branches": ["default", "*"]} for p in sim.world.projects]
        async with exporter(sim, settings_for(sim.api_url, projects, **collect)) as ex:
            await ex.cycle()
            for _ in range(60):
                sim.world.clock.advance(60)
                await ex.cycle()
            spent = requests(sim)
            snapshot = ex.snapshot()
    assert spent[absent] == 0
    other = "getJobDetails" if absent == "getTests" else "getTests"
    assert spent[other] > 0, "the scenario must complete jobs"
    assert sum(snapshot.job_runs.values()) > 0
    if absent == "getTests":
        assert all(not row.last_tests for row in snapshot.jobs.values())
    else:
        assert snapshot.job_queue_times == {}
