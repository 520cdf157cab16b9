"""The live collector against the simulator over real HTTP, compared with the world's ground
truth: exact gauges at start-up, each run counted once, restarts, and the API cost."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from exporter.simulator import SimClock, SimConfig, World
from exporter.simulator.model import Job, Workflow
from tests.e2e.live_harness import (
    T0,
    Exporter,
    exporter,
    last_completed,
    requests,
    settings_for,
    simulator,
    streak,
)

pytestmark = pytest.mark.anyio

WORLD = SimConfig(projects=3, seed=11, history=timedelta(days=2))


def tracked_projects(world: World, fold: bool) -> list[dict[str, object]]:
    return [
        {"slug": p.slug, "branches": ["default"], "other_branches": "fold" if fold else "drop"}
        for p in world.projects
    ]


def assert_gauges_match_world(ex: Exporter, world: World) -> int:
    """Every default-branch workflow's last completed status, streak, time and most recent
    run equal the world's; returns how many workflows were compared."""
    snapshot = ex.snapshot()
    now = world.clock.now()
    compared = 0
    for project in world.projects:
        branch = project.default_branch
        for name, runs in last_completed(world, project.slug, branch).items():
            row = snapshot.workflows[(project.slug, branch, name)]
            newest = runs[0]
            assert row.last_completed_status == newest.final_status, (project.slug, name)
            assert row.consecutive_failures == streak(runs), (project.slug, name)
            assert row.last_completed_at == newest.stopped_at.timestamp()
            visible = world.workflows(project.slug, branch, name)
            latest = max(visible, key=lambda w: (w.created_at, w.id))
            assert row.last_run is not None
            assert row.last_run.run_id == latest.id
            assert row.status == latest.status_at(now)
            assert row.last_run.url == latest.url
            compared += 1
    return compared


async def test_startup_sets_every_gauge_from_history_and_counts_nothing() -> None:
    async with simulator(WORLD) as sim:
        settings = settings_for(sim.api_url, tracked_projects(sim.world, fold=False))
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            assert assert_gauges_match_world(ex, sim.world) >= 3
            snapshot = ex.snapshot()
            assert snapshot.workflow_runs == {}
            assert snapshot.job_runs == {}
            assert snapshot.pipelines == {}
            for project in sim.world.projects:
                row = snapshot.projects[project.slug]
                assert row.default_branch == project.default_branch
                assert snapshot.collections[(project.slug, "live")].up


def expected_counts(
    world: World, start: datetime, end: datetime
) -> tuple[Counter[tuple[str, ...]], Counter[tuple[str, ...]], Counter[tuple[str, ...]]]:
    """Workflow runs, started jobs and pipelines that completed (or were created) in
    (start, end], labelled as an exporter that tracks default branches and folds the rest."""
    default = {p.slug: p.default_branch for p in world.projects}

    def label(slug: str, branch: str) -> str:
        return branch if branch == default[slug] else "other"

    workflows: Counter[tuple[str, ...]] = Counter()
    jobs: Counter[tuple[str, ...]] = Counter()
    for run in world.completed_between(start, end):
        if isinstance(run, Workflow):
            slug = run.project.slug
            workflows[(slug, label(slug, run.branch), run.name, run.final_status)] += 1
        elif isinstance(run, Job):
            workflow = run.workflow
            slug = workflow.project.slug
            key = (slug, label(slug, workflow.branch), workflow.name, run.name, run.final_status)
            jobs[key] += 1
    pipelines: Counter[tuple[str, ...]] = Counter()
    for project in world.projects:
        for pipeline in world.pipelines(project.slug):
            if start < pipeline.created_at <= end:
                key = (project.slug, label(project.slug, pipeline.branch), pipeline.trigger_type)
                pipelines[key] += 1
    return workflows, jobs, pipelines


async def test_runs_completing_while_watched_are_counted_exactly_once() -> None:
    async with simulator(WORLD) as sim:
        world = sim.world
        settings = settings_for(sim.api_url, tracked_projects(world, fold=True))
        async with exporter(sim, settings) as ex:
            start = world.clock.now()
            await ex.cycle()
            for _ in range(120):  # two hours, a cycle every minute
                world.clock.advance(60)
                await ex.cycle()
            # Let every run in flight finish, then read once more.
            world.clock.advance(6 * 3600)
            end = world.clock.now()
            await ex.cycle()
            await ex.cycle()

            workflows, jobs, pipelines = expected_counts(world, start, end)
            snapshot = ex.snapshot()
            assert sum(workflows.values()) > 20, "the scenario must complete runs"
            assert dict(snapshot.workflow_runs) == dict(workflows)
            durations = {k: h.count for k, h in snapshot.workflow_durations.items()}
            assert durations == dict(workflows)
            started_jobs = {k: h.count for k, h in snapshot.job_durations.items()}
            assert started_jobs == dict(jobs)
            assert dict(snapshot.pipelines) == dict(pipelines)
            assert_gauges_match_world(ex, world)


async def test_restarted_exporter_keeps_gauges_and_does_not_recount_history() -> None:
    async with simulator(WORLD) as sim:
        world = sim.world
        settings = settings_for(sim.api_url, tracked_projects(world, fold=True))
        async with exporter(sim, settings) as first:
            await first.cycle()
            for _ in range(30):
                world.clock.advance(60)
                await first.cycle()
            before = first.snapshot()
        assert sum(before.workflow_runs.values()) > 0
        async with exporter(sim, settings) as second:
            await second.cycle()
            after = second.snapshot()
        assert after.workflow_runs == {}
        assert after.pipelines == {}
        for key, row in before.workflows.items():
            assert after.workflows[key].last_completed_status == row.last_completed_status
            assert after.workflows[key].consecutive_failures == row.consecutive_failures


def future(config: SimConfig, days: float = 1.0) -> World:
    """The world the simulator will show, run ahead: a manual-clock world is deterministic
    for its start, so this one predicts a simulator started at T0."""
    world = World(config, SimClock.manual(T0))
    world.clock.advance(days * 86400)
    return world


def quiet_moment(world: World, slug: str, quiet_for: float) -> datetime:
    """A moment after T0 when every pipeline of the project has finished and none arrives
    for `quiet_for` seconds."""
    pipelines = world.pipelines(slug)
    for earlier, later in itertools.pairwise(pipelines):
        ends = [w.stopped_at for p in pipelines if p.created_at <= earlier.created_at
                for w in p.workflows]  # fmt: skip
        settled = max([earlier.created_at, *ends])
        if settled > T0 and (later.created_at - settled).total_seconds() > quiet_for + 120:
            return settled + timedelta(seconds=60)
    raise AssertionError("the simulated project is never quiet")


async def test_quiet_project_costs_one_request_per_cycle() -> None:
    config = SimConfig(projects=1, seed=5, history=timedelta(days=2))
    async with simulator(config) as sim:
        slug = sim.world.projects[0].slug
        sim.world.clock.set(quiet_moment(future(config), slug, quiet_for=600))
        settings = settings_for(sim.api_url, [{"slug": slug, "branches": ["default", "*"]}])
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            for _ in range(5):
                sim.world.clock.advance(60)
                before = requests(sim)
                await ex.cycle()
                spent = requests(sim) - before
                assert spent == Counter({"listPipelinesForProject": 1})


async def test_failing_project_goes_down_and_keeps_its_last_values() -> None:
    async with simulator(WORLD) as sim:
        world = sim.world
        settings = settings_for(sim.api_url, tracked_projects(world, fold=False))
        broken, healthy = world.projects[0], world.projects[1]
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            before = ex.snapshot()
            sim.faults.add(match=f"/api/v2/project/{broken.slug}/*", error_ratio=1.0)
            world.clock.advance(60)
            await ex.cycle()
            after = ex.snapshot()
        assert not after.collections[(broken.slug, "live")].up
        assert after.collections[(broken.slug, "live")].errors == 1
        assert "502" in (after.collections[(broken.slug, "live")].last_error or "")
        assert after.collections[(healthy.slug, "live")].up
        kept = {k: v for k, v in before.workflows.items() if k[0] == broken.slug}
        assert kept
        assert {k: v for k, v in after.workflows.items() if k[0] == broken.slug} == kept


async def test_failed_cycles_lose_nothing() -> None:
    async with simulator(WORLD) as sim:
        world = sim.world
        settings = settings_for(sim.api_url, tracked_projects(world, fold=False))
        async with exporter(sim, settings) as ex:
            sim.faults.add(match="listWorkflowsByPipelineId", error_ratio=0.3)
            for _ in range(3):
                await ex.cycle()
                world.clock.advance(60)
            assert any(not row.up for row in ex.snapshot().collections.values())
            sim.faults.clear()
            await ex.cycle()
            assert all(row.up for row in ex.snapshot().collections.values())
            assert assert_gauges_match_world(ex, world) >= 3


def approval_moment(world: World) -> datetime:
    """A moment after T0 when some workflow waits on an approval."""
    for project in world.projects:
        for workflow in world.workflows(project.slug):
            for job in workflow.jobs:
                waits = job.type == "approval" and job.queued_at and job.queued_at > T0
                if waits and job.queued_at < job.stopped_at:
                    return job.queued_at + (job.stopped_at - job.queued_at) / 2
    raise AssertionError("no workflow of the simulated world waits for an approval")


async def test_workflow_waiting_for_approval_costs_no_job_reads() -> None:
    async with simulator(WORLD) as sim:
        world = sim.world
        world.clock.set(approval_moment(future(WORLD)))
        settings = settings_for(sim.api_url, tracked_projects(world, fold=True))
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            before = requests(sim)
            await ex.cycle()
            spent = requests(sim) - before
            on_hold = sum(row.in_progress["on_hold"] for row in ex.snapshot().workflows.values())
    now = world.clock.now()
    statuses = Counter(w.status_at(now) for p in world.projects for w in world.workflows(p.slug))
    assert on_hold >= 1 and statuses["on_hold"] == on_hold
    assert spent["listWorkflowJobs"] == statuses["running"] + statuses["failing"]


async def _watched_for_an_hour(**quirks: float) -> Any:
    async with simulator(WORLD) as sim:
        if quirks:
            sim.faults.add(match="*", **quirks)
        settings = settings_for(sim.api_url, tracked_projects(sim.world, fold=True))
        async with exporter(sim, settings) as ex:
            await ex.cycle()
            for _ in range(60):
                sim.world.clock.advance(60)
                await ex.cycle()
            return ex.snapshot()


async def test_live_quirks_the_simulator_can_inject_change_nothing() -> None:
    """Last pages without next_page_token, test run times as strings and tests without a file
    (docs/simulator.md): the exporter reads the same picture as from the default shapes."""
    plain = await _watched_for_an_hour()
    quirky = await _watched_for_an_hour(omit_last_page_token_ratio=1.0, test_quirks_ratio=1.0)
    assert sum(plain.workflow_runs.values()) > 0
    assert any(row.last_tests for row in plain.jobs.values()), "the hour must read test results"
    assert quirky.workflow_runs == plain.workflow_runs
    assert quirky.job_runs == plain.job_runs
    assert quirky.pipelines == plain.pipelines
    assert {k: row.last_tests for k, row in quirky.jobs.items()} == {
        k: row.last_tests for k, row in plain.jobs.items()
    }
