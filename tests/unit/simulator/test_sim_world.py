"""The world: deterministic, self-consistent, moving with the clock, pruned after 90 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exporter.simulator import SimClock, SimConfig, World, create_app

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def _fetch(world: World, urls: list[str]) -> dict[str, object]:
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://sim/api/v2",
        headers={"Circle-Token": world.config.token},
    ) as api:
        return {url: (await api.get(url)).json() for url in urls}


async def test_same_seed_gives_identical_responses_in_any_request_order() -> None:
    def world() -> World:
        return World(SimConfig(projects=5, seed=11), SimClock.manual(START))

    reference = world()
    urls = ["/me", "/pipeline"]
    for project in reference.projects:
        urls.append(f"/project/{project.slug}/pipeline")
        for workflow in reference.workflows(project.slug)[-5:]:
            urls += [f"/workflow/{workflow.id}", f"/workflow/{workflow.id}/job"]
        urls.append(f"/insights/{project.slug}/workflows")
    first = await _fetch(world(), urls)
    second = await _fetch(world(), list(reversed(urls)))
    assert first == second
    other_seed = await _fetch(
        World(SimConfig(projects=5, seed=12), SimClock.manual(START)), urls[:3]
    )
    assert other_seed != {url: first[url] for url in urls[:3]}


def test_lazy_generation_matches_generation_in_one_go() -> None:
    stepwise_clock = SimClock.manual(START)
    stepwise = World(SimConfig(projects=3, seed=5), stepwise_clock)
    for _ in range(24):
        stepwise_clock.advance(300)
        stepwise.sync()
    at_once = World(SimConfig(projects=3, seed=5), SimClock.manual(START))
    at_once.clock.advance(24 * 300)
    for project in stepwise.projects:
        ids = [p.id for p in stepwise.pipelines(project.slug)]
        assert ids == [p.id for p in at_once.pipelines(project.slug)]


def test_history_is_generated_before_the_start(world: World) -> None:
    for project in world.projects:
        pipelines = world.pipelines(project.slug)
        assert pipelines[0].created_at < START - timedelta(days=6)
        assert all(p.created_at <= START for p in pipelines)


def test_projects_span_all_slug_kinds_with_branches(world: World) -> None:
    kinds = {p.slug.split("/")[0] for p in world.projects}
    assert kinds == {"gh", "bb", "circleci"}
    for project in world.projects:
        branches = {p.branch for p in world.pipelines(project.slug)}
        assert project.default_branch in branches
        assert len(branches) > 2


def test_errored_pipelines_have_config_errors_and_no_workflows(world: World) -> None:
    errored = [p for project in world.projects for p in world.pipelines(project.slug) if p.errors]
    assert errored
    assert {e.type for p in errored for e in p.errors} <= {"config", "config-fetch"}
    assert all(p.state == "errored" and not p.workflows for p in errored)


def test_on_hold_workflow_is_approved_later(world: World, clock: SimClock) -> None:
    """Approvals wait on_hold, then are approved at their planned time and the run goes on."""
    project = next(p for p in world.projects if any(w.name == "deploy" for w in p.workflows))
    clock.advance(6 * 3600)
    workflow = next(
        w
        for w in world.workflows(project.slug, name="deploy")
        if w.jobs[1].queued_at is not None and w.jobs[1].queued_at > START
    )
    approval = workflow.jobs[1]
    assert approval.type == "approval" and approval.queued_at is not None
    assert workflow.status_at(approval.queued_at) == "on_hold"
    assert approval.status_at(approval.queued_at) == "on_hold"
    assert approval.status_at(approval.stopped_at) == "success"
    assert approval.approved_by is not None
    deploy = workflow.jobs[2]
    assert deploy.queued_at is not None and deploy.queued_at > approval.stopped_at


def test_failing_before_failed(world: World) -> None:
    """A workflow whose first failure comes before its end shows `failing` meanwhile."""
    workflow = next(
        w
        for p in world.projects
        for w in world.workflows(p.slug)
        if w.final_status == "failed"
        and any(j.final_status == "failed" and j.stopped_at < w.stopped_at for j in w.jobs)
    )
    first_failure = min(j.stopped_at for j in workflow.jobs if j.final_status == "failed")
    assert workflow.status_at(first_failure) == "failing"
    assert workflow.status_at(workflow.stopped_at) == "failed"


def test_jobs_queue_before_they_start(world: World) -> None:
    ran = [j for p in world.projects for w in world.workflows(p.slug) for j in w.jobs if j.ran]
    assert ran
    for job in ran:
        assert job.queued_at is not None and job.started_at is not None
        assert job.queued_at <= job.started_at <= job.stopped_at
    assert any(job.queued_at < job.started_at for job in ran)  # type: ignore[operator]


def test_forced_break_fails_default_branch_until_repaired(clock: SimClock) -> None:
    world = World(SimConfig(projects=1, seed=2, speed=10), clock)
    slug, branch = world.projects[0].slug, world.projects[0].default_branch
    world.break_default_branch(slug, "build-and-test")
    clock.advance(12 * 3600)
    broken = [w for w in world.workflows(slug, branch, "build-and-test") if w.created_at > START]
    assert broken
    assert {w.final_status for w in broken} <= {"failed", "canceled"}
    world.repair_default_branch(slug)
    repaired_at = clock.now()
    clock.advance(12 * 3600)
    after = [
        w for w in world.workflows(slug, branch, "build-and-test") if w.created_at > repaired_at
    ]
    assert "success" in {w.final_status for w in after}


def test_default_branch_breaks_and_recovers_on_its_own(world: World) -> None:
    """Consecutive default-branch failures occur and end in a success (alerts fire, then clear)."""
    longest = 0
    for project in world.projects:
        streak = 0
        runs = world.workflows(project.slug, project.default_branch, "build-and-test")
        for run in runs:
            if run.final_status == "failed":
                streak += 1
                longest = max(longest, streak)
            elif run.final_status == "success":
                streak = 0
    assert longest >= 2


def test_speed_divides_durations() -> None:
    slow = World(SimConfig(projects=2, seed=4), SimClock.manual(START))
    fast = World(SimConfig(projects=2, seed=4, speed=60), SimClock.manual(START))
    pairs = []
    for project in slow.projects:
        fast_by_id = {p.id: p for p in fast.pipelines(project.slug)}
        for pipeline in slow.pipelines(project.slug):
            twin = fast_by_id.get(pipeline.id)
            if twin is not None and pipeline.workflows:
                pairs.append((pipeline.workflows[0], twin.workflows[0]))
    assert pairs, "the same seed draws the same pipelines at any speed"
    for slow_run, fast_run in pairs:
        assert slow_run.final_status == fast_run.final_status
        assert fast_run.duration_seconds == pytest.approx(slow_run.duration_seconds / 60, abs=0.2)
    # Seven days of history at speed 60 span 2.8 hours of wall time.
    first = min(p.created_at for proj in fast.projects for p in fast.pipelines(proj.slug))
    assert START - first <= timedelta(days=7) / 60


def test_history_older_than_90_days_is_pruned() -> None:
    clock = SimClock.manual(START)
    world = World(SimConfig(projects=1, seed=9, speed=1000), clock)
    slug = world.projects[0].slug
    first = world.pipelines(slug)[0]
    retention = timedelta(days=90) / 1000
    clock.advance((retention + timedelta(hours=1)).total_seconds())
    remaining = world.pipelines(slug)
    assert remaining[0].created_at >= clock.now() - retention - retention / 500
    assert world.pipeline(first.id) is None
    assert all(world.workflow(w.id) is None for w in first.workflows)


def test_clock_is_manual_or_wall() -> None:
    manual = SimClock.manual(START)
    assert manual.advance(10) == START + timedelta(seconds=10)
    with pytest.raises(ValueError, match="backwards"):
        manual.set(START)
    with pytest.raises(RuntimeError):
        SimClock().advance(1)
    assert abs((SimClock().now() - datetime.now(UTC)).total_seconds()) < 5


def test_projects_not_active_keep_their_history_and_build_nothing_from_the_start() -> None:
    everyone = World(SimConfig(projects=4, seed=3), SimClock.manual(START))
    active = everyone.projects[1].slug
    clock = SimClock.manual(START)
    world = World(SimConfig(projects=4, seed=3, active=(active,)), clock)
    history = {p.slug: [x.id for x in world.pipelines(p.slug)] for p in world.projects}
    assert all(history.values())
    assert history == {p.slug: [x.id for x in everyone.pipelines(p.slug)] for p in world.projects}
    clock.advance(2 * 86400)
    for project in world.projects:
        created = [x for x in world.pipelines(project.slug) if x.created_at >= START]
        if project.slug == active:
            assert created
        else:
            assert created == []
    with pytest.raises(ValueError, match="active: no simulated project gh/nobody/nothing"):
        World(SimConfig(projects=2, active=("gh/nobody/nothing",)), clock)
