"""ProjectCollector against a small fake API: what it reads, and what it does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fake_api import SLUG, FakeCircleCI, client_for, iso

from exporter.circleci import CircleCIError, Priority
from exporter.collect.project import ProjectCollector
from exporter.settings import CollectSettings, EffectiveBranchRules
from exporter.state import Buckets, State

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0  # the watch starts here; every run below is newer (and in the past)
PIPELINES = f"/project/{SLUG}/pipeline"


@dataclass
class Rig:
    api: FakeCircleCI
    state: State
    collector: ProjectCollector
    now: list[float]

    async def cycle(self, advance: float = 60.0) -> list[str]:
        """One cycle, `advance` seconds after the last one; the paths it requested."""
        self.now[0] += advance
        self.api.reads()
        await self.collector.cycle()
        return self.api.reads()

    def runs(self) -> dict[tuple[str, ...], int]:
        return dict(self.state.snapshot(self.now[0]).workflow_runs)

    def job_runs(self) -> dict[tuple[str, ...], int]:
        return dict(self.state.snapshot(self.now[0]).job_runs)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    api = FakeCircleCI(page_size=2)
    state = State(watch_start=T0, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=7 * 86400)
    now = [T0 + 3600]
    settings = CollectSettings(job_details=False, tests=False, failed_steps=False)
    async with client_for(api) as client:
        collector = ProjectCollector(SLUG, EffectiveBranchRules(), client=client, state=state,
                                     settings=settings, clock=lambda: now[0])  # fmt: skip
        yield Rig(api, state, collector, now)


def finished(api: FakeCircleCI, n: int, status: str = "success") -> None:
    """Pipeline p<n> with one completed workflow w<n> holding one completed job j<n>."""
    created = T0 + 100 * n
    api.pipeline(f"p{n}", created)
    api.workflow(f"p{n}", f"w{n}", status, created, created + 50)
    api.job(f"w{n}", f"j{n}", status, number=n, started=created + 1, stopped=created + 40)


async def test_it_stops_at_the_first_known_pipeline(rig: Rig) -> None:
    for n in range(1, 6):
        finished(rig.api, n)
    await rig.cycle()
    assert rig.runs() == {(SLUG, "main", "build", "success"): 5}

    # Quiet: one request, the first page of the pipeline list.
    assert await rig.cycle() == [PIPELINES]

    finished(rig.api, 6)
    # The first page holds p6 and p5; p5 is known, so no second page.
    assert await rig.cycle() == [PIPELINES, "/pipeline/p6/workflow", "/workflow/w6/job"]
    assert rig.runs() == {(SLUG, "main", "build", "success"): 6}


async def test_an_updated_at_change_reopens_a_pipeline(rig: Rig) -> None:
    finished(rig.api, 1)
    await rig.cycle()
    assert await rig.cycle() == [PIPELINES]

    # A rerun: a new workflow in the same pipeline, and the pipeline's updated_at moves.
    rerun_at = T0 + 1000
    rig.api.workflow("p1", "w1-rerun", "failed", rerun_at, rerun_at + 30)
    rig.api.job("w1-rerun", "j1-rerun", "failed", number=2, started=rerun_at + 1,
                stopped=rerun_at + 20)  # fmt: skip
    rig.api.pipelines[0]["updated_at"] = iso(rerun_at)
    reads = await rig.cycle()
    # The finished workflow's jobs are not read again; the rerun's are.
    assert reads == [PIPELINES, "/pipeline/p1/workflow", "/workflow/w1-rerun/job"]
    assert rig.runs() == {
        (SLUG, "main", "build", "success"): 1,
        (SLUG, "main", "build", "failed"): 1,
    }
    assert await rig.cycle() == [PIPELINES]


async def test_an_errored_pipeline_settles_without_a_workflow_read(rig: Rig) -> None:
    rig.api.pipeline("p1", T0 + 100, state="errored", errors=("config",))
    reads = await rig.cycle()
    assert "/pipeline/p1/workflow" not in reads
    assert await rig.cycle() == [PIPELINES]
    snapshot = rig.state.snapshot(rig.now[0])
    assert dict(snapshot.pipeline_errors) == {(SLUG, "main", "config"): 1}


async def test_an_on_hold_workflow_costs_no_job_read_until_it_moves(rig: Rig) -> None:
    created = T0 + 100
    rig.api.pipeline("p1", created)
    workflow = rig.api.workflow("p1", "w1", "on_hold", created)
    rig.api.job("w1", "j1", "success", number=1, started=created + 1, stopped=created + 20)
    approval = rig.api.job("w1", "hold", "on_hold", type="approval")
    rig.api.job("w1", "j2", "blocked", number=None)

    assert "/workflow/w1/job" in await rig.cycle()  # first sight: its jobs are read once
    assert rig.job_runs() == {(SLUG, "main", "build", "test", "success"): 1}
    # Still waiting for the approval: the workflow list only.
    assert await rig.cycle() == [PIPELINES, "/pipeline/p1/workflow"]
    assert await rig.cycle() == [PIPELINES, "/pipeline/p1/workflow"]
    in_progress = rig.state.snapshot(rig.now[0]).workflows[SLUG, "main", "build"].in_progress
    assert in_progress["on_hold"] == 1

    # Approved, then finished: the jobs are read again while the workflow moves.
    workflow["status"], approval["status"] = "running", "success"
    assert "/workflow/w1/job" in await rig.cycle()
    workflow["status"], workflow["stopped_at"] = "success", iso(created + 500)
    rig.api.jobs["w1"][2].update(status="success", job_number=3,
                                 started_at=iso(created + 300),
                                 stopped_at=iso(created + 450))  # fmt: skip
    assert "/workflow/w1/job" in await rig.cycle()
    assert await rig.cycle() == [PIPELINES]
    assert rig.job_runs() == {(SLUG, "main", "build", "test", "success"): 2}
    assert rig.runs() == {(SLUG, "main", "build", "success"): 1}


@pytest.mark.parametrize("broken", ["/pipeline/p3/workflow", "/workflow/w2/job", PIPELINES])
async def test_a_failing_read_loses_nothing(rig: Rig, broken: str) -> None:
    finished(rig.api, 1)
    await rig.cycle()
    for n in (2, 3, 4):
        finished(rig.api, n)

    rig.api.failing = {broken}
    with pytest.raises(CircleCIError):
        await rig.cycle()
    rig.api.failing = set()
    await rig.cycle()

    # Every run counted exactly once, whatever was read before the failure.
    assert rig.runs() == {(SLUG, "main", "build", "success"): 4}
    assert rig.job_runs() == {(SLUG, "main", "build", "test", "success"): 4}
    assert await rig.cycle() == [PIPELINES]


async def test_its_requests_are_loading_until_its_first_picture_is_complete(rig: Rig) -> None:
    # A failed run from before the watch: its failure streak sends the start-up history read
    # further back, with a branch-filtered pipeline list.
    rig.api.pipeline("p0", T0 - 500)
    rig.api.workflow("p0", "w0", "failed", T0 - 500, T0 - 400)
    rig.api.job("w0", "j0", "failed", number=99, started=T0 - 490, stopped=T0 - 410)
    finished(rig.api, 1)
    rig.api.failing = {"/workflow/w1/job"}
    with pytest.raises(CircleCIError):
        await rig.cycle()
    assert rig.collector.loading  # a failed first cycle completes nothing
    assert set(rig.api.priorities) == {Priority.LOADING}

    rig.api.failing = set()
    rig.api.priorities.clear()
    reads = await rig.cycle()
    assert reads.count(PIPELINES) == 2  # the recent list, then the history read
    assert set(rig.api.priorities) == {Priority.LOADING}
    assert not rig.collector.loading

    rig.api.priorities.clear()
    finished(rig.api, 2)
    assert await rig.cycle() == [PIPELINES, "/pipeline/p2/workflow", "/workflow/w2/job"]
    assert set(rig.api.priorities) == {Priority.STEADY}
