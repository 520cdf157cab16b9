"""The individual run lists of Insights (workflow runs, job runs) are the live timeline's runs:
the same ids, statuses and times, so a backfill from them meets the live counters exactly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from exporter.simulator import World
from exporter.simulator.serialize import iso

pytestmark = pytest.mark.anyio


async def _all(api: httpx.AsyncClient, path: str, params: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        query = {**params, **({"page-token": token} if token else {})}
        body = (await api.get(path, params=query)).json()
        items += body["items"]
        token = body.get("next_page_token")
        if not token:
            return items


async def test_job_runs_are_the_ran_jobs_of_the_workflow_runs(
    world: World, api: httpx.AsyncClient
) -> None:
    now = world.now()
    start = now - timedelta(days=3)
    params = {"start-date": iso(start), "end-date": iso(now)}
    checked = 0
    for project in world.projects:
        for template in project.workflows:
            runs = await _all(api, f"/insights/{project.slug}/workflows/{template.name}", params)
            run_ids = {run["id"] for run in runs}
            for job_template in template.jobs:
                if job_template.type != "build":
                    continue
                base = f"/insights/{project.slug}/workflows/{template.name}"
                got = await _all(api, f"{base}/jobs/{job_template.name}", params)
                expected = [
                    job
                    for workflow in world.workflows(project.slug, project.default_branch)
                    if workflow.id in run_ids
                    for job in workflow.jobs
                    if job.name == job_template.name and job.ran
                ]
                assert sorted(item["id"] for item in got) == sorted(job.id for job in expected)
                by_id = {job.id: job for job in expected}
                for item in got:
                    job = by_id[item["id"]]
                    assert item["status"] == job.final_status
                    assert item["started_at"] == iso(job.started_at)
                    assert item["stopped_at"] == iso(job.stopped_at)
                stops = [item["stopped_at"] for item in got]
                assert stops == sorted(stops, reverse=True), "newest first"
                checked += len(got)
    assert checked > 0, "the world should have job runs in three days"


async def test_unknown_job_is_404(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    template = project.workflows[0]
    response = await api.get(f"/insights/{project.slug}/workflows/{template.name}/jobs/nope")
    assert response.status_code == 404


async def test_end_date_needs_start_date(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    template = project.workflows[0]
    job = next(j for j in template.jobs if j.type == "build")
    response = await api.get(
        f"/insights/{project.slug}/workflows/{template.name}/jobs/{job.name}",
        params={"end-date": iso(world.now())},
    )
    assert response.status_code == 400
