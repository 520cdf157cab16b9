"""The org change feed against the simulator over real HTTP (issue 15): two identical simulated
organisations on manual clocks, one polled with `collect.org_feed` and one without. The feed
must cost nothing for quiet projects, find the projects the token's user does not follow, catch
a rerun (no new pipeline) at `project_refresh`, lose nothing to a burst larger than its page
bound, and end with exactly the metrics of the run without it."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta

import anyio
import pytest

from exporter.metrics.exposition import render
from exporter.simulator import RunningSimulator, SimConfig, World
from tests.e2e.live_harness import T0, Exporter, exporter, settings_for, simulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

INTERVAL = 30.0
REFRESH = 300.0  # collect.project_refresh
SEED = 15


def live_series(ex: Exporter) -> list[str]:
    """The CircleCI series (not the exporter's own, whose timestamps differ by design)."""
    text = render(ex.snapshot(), {"live": INTERVAL}).text.decode()
    return sorted(
        line
        for line in text.splitlines()
        if line and not line.startswith(("#", "circleci_exporter_", "circleci_up"))
    )


def by_project(sim: RunningSimulator) -> Counter[str]:
    counts = sim.stats()["requests_by_project"]
    assert isinstance(counts, dict)
    return Counter(counts)


def gauge(ex: Exporter, name: str, **labels: str) -> float | None:
    return ex.parts.registry.get_sample_value(name, labels)


def rerun_since_start(world: World, slugs: list[str]) -> set[str]:
    """Projects with a workflow created after the start on a pipeline created before it."""
    return {
        slug
        for slug in slugs
        for workflow in world.workflows(slug)
        if workflow.pipeline.created_at < T0 < workflow.created_at
    }


def world_plan() -> tuple[SimConfig, list[str], list[str]]:
    """50 projects: 5 active, 2 of them not followed by the token's user."""
    everyone = [p.slug for p in World(SimConfig(projects=50, seed=SEED)).projects]
    active = everyone[:5]
    unfollowed = active[:2]
    config = SimConfig(
        projects=50, seed=SEED, speed=60, history=timedelta(hours=1), active=tuple(active),
        followed=tuple(s for s in everyone if s not in unfollowed),
    )  # fmt: skip
    return config, active, unfollowed


async def test_feed_costs_nothing_for_quiet_projects_and_equals_polling_every_list() -> None:
    config, active, unfollowed = world_plan()
    quiet = [p.slug for p in World(config).projects if p.slug not in active]
    rerun_project = quiet[0]
    projects = [
        {"slug": s, "branches": ["default", "*"]} for s in [p.slug for p in World(config).projects]
    ]
    steps = 2 * int(REFRESH / INTERVAL) + 5  # past two project_refresh reads
    async with simulator(config) as feed_sim, simulator(config) as plain_sim:
        feed_settings = settings_for(feed_sim.api_url, projects, interval="30s",
                                     project_refresh="5m")  # fmt: skip
        plain_settings = settings_for(plain_sim.api_url, projects, interval="30s", org_feed=False)
        async with (
            exporter(feed_sim, feed_settings) as fed,
            exporter(plain_sim, plain_settings) as plain,
        ):
            per_step: list[Counter[str]] = []
            for step in range(steps):
                if step == 3:
                    # A rerun of a quiet project's newest pipeline: a new workflow, no pipeline.
                    for sim in (feed_sim, plain_sim):
                        newest = next(
                            p for p in reversed(sim.world.pipelines(rerun_project)) if p.workflows
                        )
                        sim.world.rerun(newest.id)
                await fed.live.read_feeds()
                await fed.cycle()
                await plain.cycle()
                per_step.append(by_project(feed_sim))
                feed_sim.world.clock.advance(INTERVAL)
                plain_sim.world.clock.advance(INTERVAL)
            # One more cycle at the end, so that both read after the last advance.
            await fed.live.read_feeds()
            await fed.cycle()
            await plain.cycle()
            fed_series, plain_series = live_series(fed), live_series(plain)
            in_feed = {s: gauge(fed, "circleci_project_in_org_feed", project=s) for s in active}
            reran = rerun_since_start(feed_sim.world, quiet)
            feed_lists = feed_sim.stats()["requests"]["listPipelinesForProject"]
            plain_lists = plain_sim.stats()["requests"]["listPipelinesForProject"]

    # (a) The same metrics as reading every list every cycle, the rerun included.
    assert fed_series == plain_series
    assert any(rerun_project in line and 'status="success"' in line for line in fed_series)

    # (b) Quiet followed projects cost nothing between project_refresh reads: after the start-up
    # reads settled, exactly one request (their list) once per project_refresh, none in the
    # other cycles, each project at its own phase so that they do not all read at once. A list
    # may show a rerun (a planned one in the simulator too), which then costs its reads.
    warm, period = 2, int(REFRESH / INTERVAL)
    assert rerun_project in reran
    assert len(reran) < len(quiet) / 2
    first_refreshes = set()
    for slug in set(quiet) - reran:
        spent = {s: per_step[s][slug] - per_step[s - 1][slug] for s in range(warm + 1, steps)}
        refreshes = [s for s, n in spent.items() if n]
        assert all(spent[s] == 1 for s in refreshes), (slug, spent)
        assert warm < refreshes[0] <= warm + period, (slug, refreshes)
        assert all(b - a == period for a, b in itertools.pairwise(refreshes)), (slug, refreshes)
        assert refreshes[-1] >= steps - period, (slug, refreshes)
        first_refreshes.add(refreshes[0])
    assert len(first_refreshes) > 3, first_refreshes

    # (c) The unfollowed projects are detected, exposed and polled every cycle since.
    assert in_feed == {s: (0.0 if s in unfollowed else 1.0) for s in active}
    for slug in unfollowed:
        polled = [per_step[s][slug] - per_step[s - 1][slug] for s in range(steps - 5, steps)]
        assert all(spent >= 1 for spent in polled), (slug, polled)
    # What it is for: the lists of quiet projects are read every project_refresh, not every cycle.
    assert feed_lists < plain_lists / 5, (feed_lists, plain_lists)


async def test_a_burst_larger_than_the_feed_shows_loses_no_pipeline() -> None:
    config = SimConfig(projects=20, seed=SEED, speed=600, history=timedelta(hours=2))
    slugs = [p.slug for p in World(config).projects]
    # Default branches only, no job details: the feed pages through every pipeline of the
    # org whatever its branch, and the test stays quick.
    projects = [{"slug": s, "branches": ["default"]} for s in slugs]
    lean = {"interval": "30s", "tests": False, "job_details": False, "failed_steps": False}
    async with simulator(config) as feed_sim, simulator(config) as plain_sim:
        # Five pages (100 pipelines) per feed read: the burst is past it in the largest org.
        feed_settings = settings_for(feed_sim.api_url, projects, org_feed_max_pages=5, **lean)
        plain_settings = settings_for(plain_sim.api_url, projects, org_feed=False, **lean)
        async with (
            exporter(feed_sim, feed_settings) as fed,
            exporter(plain_sim, plain_settings) as plain,
        ):
            # Short steps (a workflow takes a second or two at speed 600), except 90 s (15 world
            # hours) between the second and the third cycle.
            for step, gap in enumerate([5.0, 5.0, 90.0, 5.0, 5.0, 5.0, 5.0]):
                before = {s: len(feed_sim.world.pipelines(s)) for s in slugs}
                feed_sim.world.clock.advance(gap)
                plain_sim.world.clock.advance(gap)
                if step == 2:
                    arrived = [p for s in slugs for p in feed_sim.world.pipelines(s)[before[s] :]]
                await fed.live.read_feeds()
                await fed.cycle()
                await plain.cycle()
            fed_series, plain_series = live_series(fed), live_series(plain)
            overflows = {
                org: gauge(fed, "circleci_exporter_org_feed_overflows_total", org=org,
                           reason="pages")
                for org in {s.rsplit("/", 1)[0] for s in slugs}
            }  # fmt: skip

    assert len(arrived) >= 300
    assert any(count for count in overflows.values()), overflows
    assert fed_series == plain_series
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in fed_series
        if line.startswith("circleci_pipelines_total{")
    )
    assert counted >= sum(1 for p in arrived if p.branch == p.project.default_branch)


async def test_running_loops_take_new_pipelines_from_the_feed_alone() -> None:
    """The real loops (`LiveCollector.run`): the feed's loop hands the active project its new
    pipelines and wakes it; the quiet projects send nothing meanwhile. The simulated clock
    moves with real time (a manual clock, advanced in small steps)."""
    world = World(SimConfig(projects=6, seed=SEED))
    busiest = min(world.projects, key=lambda p: p.mean_arrival_seconds).slug
    everyone = [busiest, *(p.slug for p in world.projects if p.slug != busiest)]
    config = SimConfig(projects=6, seed=SEED, speed=3000, history=timedelta(hours=1),
                       active=(busiest,))  # fmt: skip
    projects = [{"slug": s, "branches": ["default", "*"]} for s in everyone]
    async with simulator(config) as sim:
        settings = settings_for(sim.api_url, projects, interval="0.5s", project_refresh="1h")
        async with exporter(sim, settings) as ex, anyio.create_task_group() as tg:
            tg.start_soon(ex.live.run)
            with anyio.fail_after(60):
                while not ex.live.ready:  # noqa: ASYNC110 - the collector offers no event
                    await anyio.sleep(0.05)
                # What ran at the start finishes (20 s are 16 world hours), and a few
                # cycles later every project has read it and relies on the feed again.
                sim.world.clock.advance(20)
                await anyio.sleep(2)
                settled, mark = by_project(sim), sim.world.now()
                # Half real time: a feed read may lag a second or so behind on a loaded machine
                # and still count as fresh (3 intervals, 1.5 s).
                while not taken_in_since(ex, sim.world, everyone[0], mark):
                    sim.world.clock.advance(0.05)
                    await anyio.sleep(0.1)
            spent = by_project(sim) - settled
            feed_reads = sim.stats()["requests"]["listPipelines"]
            tg.cancel_scope.cancel()
    assert set(spent) == {everyone[0]}, spent
    assert feed_reads > 3


def taken_in_since(ex: Exporter, world: World, slug: str, mark: datetime) -> bool:
    """A workflow of a pipeline created after `mark` is the last run of one of its series."""
    fresh = {w.id for p in world.pipelines(slug) if p.created_at > mark for w in p.workflows}
    last_runs = {row.last_run.run_id for row in ex.snapshot().workflows.values() if row.last_run}
    return bool(fresh & last_runs)
