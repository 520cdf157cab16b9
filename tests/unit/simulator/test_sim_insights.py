"""Insights numbers agree with the history the live endpoints serve."""

from __future__ import annotations

import statistics
from datetime import timedelta

import httpx
import pytest

from exporter.simulator import World

pytestmark = pytest.mark.anyio


def _expected_runs(world: World, slug: str, days: int, branch: str | None, name: str) -> list:  # type: ignore[type-arg]
    now = world.now()
    start = now - timedelta(days=days)
    return [
        w
        for w in world.workflows(slug, branch, name)
        if start <= w.created_at < now
        and w.is_completed_at(now)
        and w.final_status in {"success", "failed", "error", "canceled", "unauthorized"}
    ]


@pytest.mark.parametrize("window,days", [("last-24-hours", 1), ("last-7-days", 7)])
async def test_workflow_metrics_agree_with_history(
    world: World, api: httpx.AsyncClient, window: str, days: int
) -> None:
    for project in world.projects:
        body = (
            await api.get(
                f"/insights/{project.slug}/workflows", params={"reporting-window": window}
            )
        ).json()
        for item in body["items"]:
            runs = _expected_runs(world, project.slug, days, project.default_branch, item["name"])
            metrics = item["metrics"]
            successful = [r for r in runs if r.final_status == "success"]
            canceled = [r for r in runs if r.final_status == "canceled"]
            assert metrics["total_runs"] == len(runs)
            assert metrics["successful_runs"] == len(successful)
            assert metrics["failed_runs"] == len(runs) - len(successful) - len(canceled)
            denominator = len(runs) - len(canceled)
            assert metrics["success_rate"] == (
                pytest.approx(len(successful) / denominator) if denominator else 0.0
            )
            assert metrics["throughput"] == pytest.approx(len(runs) / days)
            assert metrics["total_credits_used"] == sum(r.credits for r in runs)
            if successful:
                durations = [r.duration_seconds for r in successful]
                assert metrics["duration_metrics"]["max"] == round(max(durations))
                assert metrics["duration_metrics"]["median"] == round(statistics.median(durations))


async def test_all_branches_counts_every_branch(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    body = (
        await api.get(
            f"/insights/{project.slug}/workflows",
            params={"all-branches": "true", "reporting-window": "last-7-days"},
        )
    ).json()
    item = next(i for i in body["items"] if i["name"] == "build-and-test")
    runs = _expected_runs(world, project.slug, 7, None, "build-and-test")
    assert item["metrics"]["total_runs"] == len(runs)
    branch_runs = _expected_runs(world, project.slug, 7, project.default_branch, "build-and-test")
    assert len(runs) > len(branch_runs)


async def test_mttr_measures_red_to_green(world: World, api: httpx.AsyncClient) -> None:
    checked = 0
    for project in world.projects:
        runs = _expected_runs(world, project.slug, 90, project.default_branch, "build-and-test")
        recoveries, failing_since = [], None
        for run in runs:
            if run.final_status in {"failed", "error"} and failing_since is None:
                failing_since = run.stopped_at
            elif run.final_status == "success" and failing_since is not None:
                recoveries.append((run.stopped_at - failing_since).total_seconds())
                failing_since = None
        body = (await api.get(f"/insights/{project.slug}/workflows")).json()
        metrics = next(i for i in body["items"] if i["name"] == "build-and-test")["metrics"]
        assert metrics["total_recoveries"] == len(recoveries)
        if recoveries:
            checked += 1
            assert metrics["mttr"] == round(statistics.fmean(recoveries))
        else:
            assert metrics["mttr"] is None
    assert checked


async def test_workflow_runs_list_the_completed_runs(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    runs = _expected_runs(world, project.slug, 90, project.default_branch, "build-and-test")
    items, token = [], None
    while True:
        params = {"page-token": token} if token else {}
        url = f"/insights/{project.slug}/workflows/build-and-test"
        page = (await api.get(url, params=params)).json()
        items += page["items"]
        token = page.get("next_page_token")
        if not token:
            break
    assert [i["id"] for i in items] == [r.id for r in reversed(runs)]
    assert all(i["branch"] == project.default_branch for i in items)


async def test_job_metrics_count_job_runs(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    runs = _expected_runs(world, project.slug, 7, project.default_branch, "build-and-test")
    url = f"/insights/{project.slug}/workflows/build-and-test/jobs"
    body = (await api.get(url, params={"reporting-window": "last-7-days"})).json()
    by_name = {item["name"]: item["metrics"] for item in body["items"]}
    build_runs = [j for r in runs for j in r.jobs if j.name == "build" and j.ran]
    assert by_name["build"]["total_runs"] == len(build_runs)
    assert by_name["build"]["successful_runs"] == sum(
        j.final_status == "success" for j in build_runs
    )
    assert "hold" not in by_name  # approvals are not job runs


async def test_flaky_tests_passed_and_failed_on_one_commit(
    world: World, api: httpx.AsyncClient
) -> None:
    found = 0
    for project in world.projects:
        body = (await api.get(f"/insights/{project.slug}/flaky-tests")).json()
        assert body["total_flaky_tests"] == len(body["flaky_tests"])
        for flake in body["flaky_tests"]:
            found += 1
            workflow = world.workflow(flake["workflow_id"])
            assert workflow is not None
            pipeline = workflow.pipeline
            same_name = [w for w in pipeline.workflows if w.name == flake["workflow_name"]]
            assert len(same_name) > 1  # a run and its rerun of one commit
    assert found


async def test_test_metrics_cover_the_last_ten_runs(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    url = f"/insights/{project.slug}/workflows/build-and-test/test-metrics"
    body = (await api.get(url)).json()
    assert body["total_test_runs"] == len(body["test_runs"]) == 10
    runs = _expected_runs(world, project.slug, 90, project.default_branch, "build-and-test")
    newest = [r.id for r in reversed(runs) if r.final_status != "canceled"][:10]
    assert [t["workflow_id"] for t in body["test_runs"]] == newest


async def test_branches_and_org_summary(world: World, api: httpx.AsyncClient) -> None:
    project = world.projects[0]
    body = (await api.get(f"/insights/{project.slug}/branches")).json()
    assert set(body["branches"]) == {
        w.branch for w in world.workflows(project.slug) if w.is_completed_at(world.now())
    }
    org = project.organization
    summary = (
        await api.get(f"/insights/{org.slug}/summary", params={"reporting-window": "last-7-days"})
    ).json()
    names = [p.name for p in world.projects_of(org.slug)]
    assert summary["all_projects"] == names
    total = sum(
        len(_expected_runs(world, p.slug, 7, None, None))  # type: ignore[arg-type]
        for p in world.projects_of(org.slug)
    )
    assert summary["org_data"]["metrics"]["total_runs"] == total
