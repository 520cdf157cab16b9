"""The publisher renders only on change, and only what changed (issue 19). Behaviour only:
the timings are bench/render.py's."""

from __future__ import annotations

import gzip
import random

import anyio
import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import render
from exporter.state import Buckets, State
from exporter.state.insights import (
    InsightsStore,
    OrgInsights,
    ProjectInsights,
    RunStats,
    UsageStats,
    WorkflowStats,
)
from exporter.state.schedules import ScheduleRow, ScheduleStore
from exporter.state.updates import (
    FailedStepUpdate,
    JobDetailsUpdate,
    JobUpdate,
    PipelineUpdate,
    ProjectUpdate,
    RunUpdate,
    WorkflowUpdate,
)
from exporter.state.updates import TestResultsUpdate as ResultsUpdate
from exporter.web.publisher import Publisher

START = 1_764_000_000.0
DAY = 86_400.0
TTL = 3 * DAY
BUCKETS = Buckets((60.0, 600.0), (10.0, 100.0), (1.0, 10.0))
INTERVALS = {"live": 30.0, "schedules": 300.0, "insights": 3600.0}
P = "gh/acme/api"


class Rig:
    def __init__(self, success_gap: float = 0.0) -> None:
        self.now = START
        self.registry = CollectorRegistry()
        self.state = State(watch_start=START, buckets=BUCKETS, series_ttl=TTL)
        self.insights = InsightsStore()
        self.schedules = ScheduleStore()
        self.failed_jobs: list[FailedStepUpdate] = []  # failed, their step not read yet
        self.publisher = Publisher(
            self.state,
            INTERVALS,
            insights=self.insights,
            schedules=self.schedules,
            success_gap=success_gap,
            clock=lambda: self.now,
            registry=self.registry,
        )

    def count(self, name: str, outcome: str) -> float:
        return self.registry.get_sample_value(name, {"outcome": outcome}) or 0.0

    def full_render(self) -> tuple[bytes, bytes]:
        """What a render from scratch of the same state, at the same time, gives."""
        rendered = render(
            self.state.snapshot(self.now),
            INTERVALS,
            self.insights.snapshot(),
            self.schedules.snapshot(),
        )
        return rendered.text, rendered.openmetrics


def completed_run(project: str, n: int, at: float, status: str = "success") -> list[RunUpdate]:
    """A pipeline with one workflow and one job, completed at `at`."""
    url = f"https://app.circleci.com/{project}/{n}"
    return [
        PipelineUpdate(project, "main", f"{project}-p{n}", n, "webhook", at - 60),
        JobUpdate(
            project,
            "main",
            "build",
            f"{project}-w{n}",
            "test",
            f"{project}-j{n}",
            n,
            status,
            at - 60,
            at - 50,
            at,
            url,
        ),
        WorkflowUpdate(project, "main", "build", f"{project}-w{n}", n, status, at - 60, at, url),
    ]


@pytest.mark.anyio
async def test_a_quiet_cycle_renders_nothing() -> None:
    rig = Rig()
    for update in completed_run(P, 1, START + 100):
        rig.state.apply(update)
    rows = {"nightly": ScheduleRow("main", "bot", START + 3600, None, None, 0, None)}
    rig.schedules.replace_project(P, rows)
    rig.now = START + 200
    await rig.publisher.publish_now()
    body = rig.publisher.rendered
    # Nothing new: the same runs again (polling and webhooks both deliver them), the same
    # schedule rows and Insights values again.
    for update in completed_run(P, 1, START + 100):
        rig.state.apply(update)
    rig.schedules.replace_project(P, dict(rows))
    rig.now = START + 230
    await rig.publisher.publish_now()
    await rig.publisher.publish_now()
    assert rig.publisher.rendered is body
    assert rig.count("circleci_exporter_publishes_total", "unchanged") == 2
    assert rig.count("circleci_exporter_publishes_total", "rendered") == 1


@pytest.mark.anyio
async def test_a_cycle_that_only_records_its_success_renders_no_project_again() -> None:
    rig = Rig()
    for project in (P, "gh/acme/web"):
        for update in completed_run(project, 1, START + 100):
            rig.state.apply(update)
    await rig.publisher.publish_now()
    rendered_before = rig.count("circleci_exporter_render_parts_total", "rendered")
    rig.state.record_success(P, "live", START + 300)
    await rig.publisher.publish_now()
    # The collection health is rendered again (circleci_exporter_last_success_timestamp_seconds
    # moved); no project's series are.
    assert rig.count("circleci_exporter_render_parts_total", "rendered") == rendered_before
    assert rig.count("circleci_exporter_render_parts_total", "reused") >= 2
    assert b'{project="gh/acme/api",collector="live"} 1764000300.0' in rig.publisher.rendered.text


@pytest.mark.anyio
async def test_success_times_alone_wait_for_the_success_gap_and_real_changes_do_not() -> None:
    rig = Rig(success_gap=30.0)
    for update in completed_run(P, 1, START + 100):
        rig.state.apply(update)
    rig.state.record_success(P, "live", START)
    await rig.publisher.publish_now()  # the first success: health changed, rendered at once
    body = rig.publisher.rendered
    # A quiet cycle 10 s later: only its time moved; deferred, the body served stays.
    rig.now = START + 10
    rig.state.record_success(P, "live", rig.now)
    await rig.publisher.publish_now()
    assert rig.publisher.rendered is body
    assert rig.count("circleci_exporter_publishes_total", "deferred") == 1
    # Once the gap has passed since the last render, the time moved is published.
    rig.now = START + 31
    await rig.publisher.publish_now()
    assert b'{project="gh/acme/api",collector="live"} 1764000010.0' in rig.publisher.rendered.text
    # A failure is health, not a time: published at once, and so is the recovery after it.
    rig.now = START + 35
    rig.state.record_failure(P, "live", "HTTP 500")
    await rig.publisher.publish_now()
    assert b'circleci_up{project="gh/acme/api"} 0' in rig.publisher.rendered.text
    rig.now = START + 36
    rig.state.record_success(P, "live", rig.now)
    await rig.publisher.publish_now()
    assert b'circleci_up{project="gh/acme/api"} 1' in rig.publisher.rendered.text
    assert rig.count("circleci_exporter_publishes_total", "deferred") == 1


@pytest.mark.anyio
async def test_deferred_success_times_are_published_when_due_without_another_request() -> None:
    rig = Rig(success_gap=0.2)
    rig.now = START
    rig.state.record_success(P, "live", START)
    await rig.publisher.publish_now()
    rig.state.record_success(P, "live", START + 0.1)
    rig.publisher.request()
    async with anyio.create_task_group() as tg:
        tg.start_soon(rig.publisher.run)
        await anyio.sleep(0.1)
        assert rig.count("circleci_exporter_publishes_total", "deferred") == 1
        rig.now = START + 0.3  # due now; nobody requests a publish again
        for _ in range(100):
            if b"1764000000.1" in rig.publisher.rendered.text:
                break
            await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert b"1764000000.1" in rig.publisher.rendered.text


@pytest.mark.anyio
async def test_a_change_is_visible_in_the_next_rendered_exposition() -> None:
    rig = Rig()
    for update in completed_run(P, 1, START + 100):
        rig.state.apply(update)
    await rig.publisher.publish_now()
    line = b'circleci_workflow_runs_total{project="gh/acme/api",branch="main",workflow="build",'
    assert line + b'status="failed"}' not in rig.publisher.rendered.text
    for update in completed_run(P, 2, START + 400, status="failed"):
        rig.state.apply(update)
    await rig.publisher.publish_now()
    assert line + b'status="failed"} 1.0' in rig.publisher.rendered.text
    assert rig.publisher.snapshot.workflows[P, "main", "build"].last_completed_status == "failed"


# -- incremental == from scratch, over random changes -------------------------------------

PROJECTS = [f"gh/acme/repo-{i}" for i in range(6)]
STATUSES = ["success", "failed", "canceled", "running", "on_hold"]


def _stats(rng: random.Random) -> RunStats:
    runs = rng.randint(1, 50)
    failed = rng.randint(0, runs)
    return RunStats(runs, runs - failed, failed, (runs - failed) / runs, runs / 7,
                    rng.choice([None, 12.5]), {"p95": rng.uniform(1, 600)})  # fmt: skip


def _random_step(rig: Rig, rng: random.Random, n: int) -> None:
    """One random change (or none) of the state or a store, at an advancing time."""
    rig.now += rng.uniform(0, 0.3 * DAY)
    project = rng.choice(PROJECTS)
    branch = rng.choice(["main", "dev", "feature/x"])
    workflow = rng.choice(["build", "deploy"])
    status = rng.choice(STATUSES)
    finished = status not in ("running", "on_hold")
    at = rig.now
    stopped = at if finished else None
    url = f"https://app.circleci.com/{project}/{n}"
    match rng.randrange(11):
        case 0:
            rig.state.apply(ProjectUpdate(project, project.rsplit("/", 1)[1], "acme",
                                          rng.choice(["main", "dev"]), url))  # fmt: skip
        case 1 | 2:
            rig.state.apply(PipelineUpdate(project, branch, f"p{n}", n, "webhook", at - 100))
            job_id = f"j{n}"
            rig.state.apply(JobUpdate(project, branch, workflow, f"w{n}", "test", job_id, n,
                                      status, at - 100, at - 90, stopped, url))  # fmt: skip
            rig.state.apply(WorkflowUpdate(project, branch, workflow, f"w{n}", n, status,
                                           at - 100, stopped, url))  # fmt: skip
            rig.state.apply(JobDetailsUpdate(project, branch, workflow, "test", job_id,
                                             at - 99, at - 90))  # fmt: skip
            rig.state.apply(ResultsUpdate(project, branch, workflow, "test", job_id, at,
                                              {"success": rng.randint(0, 9)}))  # fmt: skip
            if status == "failed":  # its failed step is read in a later cycle (case 9)
                rig.failed_jobs.append(
                    FailedStepUpdate(project, branch, workflow, "test", job_id, n, "Run tests")
                )
        case 3:
            rig.state.record_success(project, rng.choice(["live", "insights"]), at)
        case 4:
            rig.state.record_failure(project, "live", "HTTP 500")
        case 5:
            rig.state.expire(rig.now)  # series older than TTL go
        case 6:
            rig.insights.replace_project(ProjectInsights(
                project=project, window="last-7-days", branches=rng.randint(1, 4),
                workflows={(branch, workflow): WorkflowStats(_stats(rng), None)},
                test_runs={(branch, workflow): rng.randint(0, 9)}, trends={},
                jobs={(branch, workflow, "test"): _stats(rng)}, failed_tests={}, slow_tests={},
                flaky_total=0, flaky_tests={},
            ))  # fmt: skip
        case 7:
            rig.insights.replace_org(OrgInsights(
                rng.choice(["gh/acme", "gh/other"]), "last-7-days",
                UsageStats(rng.randint(0, 99), 0.5, None, None, 1.0),
                {project: UsageStats(rng.randint(0, 9), None, None, None, None)},
            ))  # fmt: skip
        case 8:
            rows = {
                f"nightly-{i}": ScheduleRow(
                    "main",
                    "bot",
                    at + 3600,
                    rng.choice([None, at]),
                    rng.choice([None, "success", "failed"]),
                    rng.randint(0, 2),
                    None,
                )
                for i in range(rng.randint(0, 2))
            }
            rig.schedules.replace_project(project, rows)
        case 9 if rig.failed_jobs:
            rig.state.apply(rig.failed_jobs.pop(rng.randrange(len(rig.failed_jobs))))
        case _:
            pass  # nothing at all: the publish must change nothing


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_incremental_renders_equal_a_render_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    rig = Rig()
    expired_anything = False
    for n in range(150):
        for _ in range(rng.randint(0, 3)):
            _random_step(rig, rng, n)
        expired_anything |= rig.state.expire(rig.now).keys > 0
        await rig.publisher.publish_now()
        text, openmetrics = rig.full_render()
        if rig.publisher.rendered.text != text:
            # Not rendered again: only when nothing changed, and then it must still be true.
            assert rig.count("circleci_exporter_publishes_total", "unchanged") > 0
            text_at_last_render = render(
                rig.state.snapshot(rig.publisher.snapshot.taken_at),
                INTERVALS,
                rig.insights.snapshot(),
                rig.schedules.snapshot(),
            ).text
            assert rig.publisher.rendered.text == text_at_last_render, f"step {n}"
        else:
            assert rig.publisher.rendered.openmetrics == openmetrics, f"step {n}"
        gzip_head = rig.publisher.rendered.text_gzip
        assert gzip.decompress(gzip_head.head + gzip_head.finish(b"x 1\n")) == (
            rig.publisher.rendered.text + b"x 1\n"
        )
    # The run exercised what it claims to: reused parts, unchanged publishes, expiry.
    assert rig.count("circleci_exporter_render_parts_total", "reused") > 0
    assert rig.count("circleci_exporter_publishes_total", "unchanged") > 0
    assert expired_anything
