"""The live endpoints serve the world's ground truth, and it moves with the clock."""

from __future__ import annotations

import httpx
import pytest

from exporter.simulator import SimClock, World
from exporter.simulator.model import Workflow

pytestmark = pytest.mark.anyio


def _first(world: World, status: str, clock: SimClock | None = None) -> Workflow:
    """The first workflow in `status` now; with `clock`, moved on 10 minutes at a time (up to
    a day) until one is."""
    for _ in range(144):
        now = world.now()
        for project in world.projects:
            for workflow in world.workflows(project.slug):
                if workflow.status_at(now) == status:
                    return workflow
        if clock is None:
            break
        clock.advance(600)
    raise AssertionError(f"no {status} workflow in the world")


async def test_project_lists_its_pipelines_newest_first(
    world: World, api: httpx.AsyncClient
) -> None:
    project = world.projects[0]
    response = await api.get(f"/project/{project.slug}/pipeline")
    assert response.status_code == 200
    numbers = [item["number"] for item in response.json()["items"]]
    expected = [p.number for p in reversed(world.pipelines(project.slug))][:20]
    assert numbers == expected


async def test_branch_filter(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    branch = project.default_branch
    response = await api.get(f"/project/{project.slug}/pipeline", params={"branch": branch})
    items = response.json()["items"]
    assert items
    assert {item["vcs"]["branch"] for item in items} == {branch}


async def test_running_workflow_completes_after_the_clock_advances(
    world: World, clock: SimClock, api: httpx.AsyncClient
) -> None:
    workflow = _first(world, "running", clock)
    body = (await api.get(f"/workflow/{workflow.id}")).json()
    assert body["status"] == "running"
    assert body["stopped_at"] is None

    clock.set(workflow.stopped_at)
    body = (await api.get(f"/workflow/{workflow.id}")).json()
    assert body["status"] == workflow.final_status
    assert body["status"] in {"success", "failed", "error", "canceled"}
    assert body["stopped_at"] is not None


async def test_job_details_and_tests_of_a_finished_test_job(
    world: World, api: httpx.AsyncClient
) -> None:
    now = world.now()
    job = next(
        j
        for p in world.projects
        for w in world.workflows(p.slug)
        for j in w.jobs
        if j.template.tests and j.ran and j.is_completed_at(now) and j.final_status == "failed"
    )
    slug = job.workflow.project.slug
    details = (await api.get(f"/project/{slug}/job/{job.number}")).json()
    assert details["status"] == "failed"
    assert details["duration"] == int(job.duration_seconds * 1000)  # type: ignore[operator]
    assert details["web_url"] == f"https://circleci.com/{slug}/{job.number}"
    tests = []
    token = None
    while True:
        params = {"page-token": token} if token else {}
        page = (await api.get(f"/project/{slug}/{job.number}/tests", params=params)).json()
        tests += page["items"]
        token = page.get("next_page_token")
        if not token:
            break
    assert len(tests) == len(job.template.tests)
    failures = [t["name"] for t in tests if t["result"] == "failure"]
    assert failures == [job.template.tests[i].name for i in job.failed_tests]
