"""The read endpoints that resolve ids and filter lists agree with the lists they come from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator import SimClock, SimConfig, World, create_app

pytestmark = pytest.mark.anyio


async def _all(api: httpx.AsyncClient, url: str) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        paged = str(httpx.URL(url).copy_add_param("page-token", token)) if token else url
        body = (await api.get(paged)).json()
        items += body["items"]
        if (token := body["next_page_token"]) is None:
            return items


async def test_user_resolves_every_id_a_run_names(world: World, api: httpx.AsyncClient) -> None:
    now = world.now()
    named = set()
    for project in world.projects:
        for workflow in world.workflows(project.slug):
            named.add(workflow.started_by)
            if workflow.canceled_by and workflow.is_completed_at(now):
                named.add(workflow.canceled_by)
            for job in workflow.jobs:
                named |= {job.approved_by, job.canceled_by} - {None}  # type: ignore[arg-type]
    assert len(named) > 3
    for user_id in named:
        response = await api.get(f"/user/{user_id}")
        assert response.status_code == 200, user_id
        assert response.json()["id"] == user_id
    me = (await api.get("/me")).json()
    assert (await api.get(f"/user/{me['id']}")).json() == me


async def test_pipeline_config_holds_the_workflows_the_pipeline_ran(
    world: World, api: httpx.AsyncClient
) -> None:
    checked_errored = checked_ran = 0
    for project in world.projects:
        for pipeline in world.pipelines(project.slug)[-30:]:
            body = (await api.get(f"/pipeline/{pipeline.id}/config")).json()
            source = yaml.safe_load(body["source"])
            assert set(source["workflows"]) == {t.name for t in project.workflows}
            if pipeline.errors:
                assert body["compiled"] == ""
                checked_errored += 1
                continue
            compiled = yaml.safe_load(body["compiled"])
            ran = {w.name for w in pipeline.workflows}
            assert set(compiled["workflows"]) - {"version"} == ran
            jobs = {name for w in pipeline.workflows for job in w.jobs if job.type == "build"
                    for name in [job.name]}  # fmt: skip
            assert jobs <= set(compiled["jobs"])
            checked_ran += 1
    assert checked_errored and checked_ran


async def test_mine_is_the_token_users_pipelines_only(world: World, api: httpx.AsyncClient) -> None:
    me = world.me
    for project in world.projects:
        mine = await _all(api, f"/project/{project.slug}/pipeline/mine")
        everyone = await _all(api, f"/project/{project.slug}/pipeline")
        assert mine == [p for p in everyone if p["trigger"]["actor"]["login"] == me.login]
    feed = await _all(api, "/pipeline?mine=true")
    assert feed and {p["trigger"]["actor"]["login"] for p in feed} == {me.login}
    all_feed = await _all(api, "/pipeline")
    assert len(all_feed) > len(feed)


async def test_schedule_by_id_is_the_listed_schedule(world: World, api: httpx.AsyncClient) -> None:
    scheduled = [p for p in world.projects if p.schedules]
    assert scheduled
    for project in scheduled:
        listed = await _all(api, f"/project/{project.slug}/schedule")
        for schedule in listed:
            assert (await api.get(f"/schedule/{schedule['id']}")).json() == schedule


async def test_v1_tests_and_artifacts_agree_with_v2(world: World, api: httpx.AsyncClient) -> None:
    now = world.now()
    slug = world.projects[0].slug
    job = next(
        j for w in world.workflows(slug) for j in w.jobs
        if j.ran and j.template.tests and j.is_completed_at(now)
    )  # fmt: skip
    v1 = f"http://sim/api/v1.1/project/{slug}/{job.number}"
    tests_v2 = await _all(api, f"/project/{slug}/{job.number}/tests")
    tests_v1 = (await api.get(f"{v1}/tests")).json()["tests"]
    assert [(t["name"], t["result"]) for t in tests_v1] == [
        (t["name"], t["result"]) for t in tests_v2
    ]
    assert all(t["message"] is None for t in tests_v1 if t["result"] != "failure")
    artifacts_v2 = await _all(api, f"/project/{slug}/{job.number}/artifacts")
    artifacts_v1 = (await api.get(f"{v1}/artifacts")).json()
    assert [(a["path"], a["node_index"], a["url"]) for a in artifacts_v1] == [
        (a["path"], a["node_index"], a["url"]) for a in artifacts_v2
    ]
    me = (await api.get("http://sim/api/v1.1/me")).json()
    assert me["login"] == world.me.login


async def test_followed_projects_decide_the_feed_and_v1_projects(clock: SimClock) -> None:
    everyone = World(SimConfig(projects=5, seed=7), clock)
    followed = (everyone.projects[0].slug, everyone.projects[3].slug)
    world = World(SimConfig(projects=5, seed=7, followed=followed), clock)
    transport = httpx.ASGITransport(app=create_app(world))
    headers = {"Circle-Token": world.config.token}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim/api/v2", headers=headers
    ) as api:
        feed = await _all(api, "/pipeline")
        assert {p["project_slug"] for p in feed} == set(followed)
        org = world.projects[0].organization.slug
        in_org = await _all(api, f"/pipeline?org-slug={org}")
        assert {p["project_slug"] for p in in_org} == {
            s for s in followed if world.project(s).organization.slug == org
        }
        # Unfollowed projects stay readable one by one.
        assert (await api.get(f"/project/{world.projects[1].slug}/pipeline")).status_code == 200
        projects = (await api.get("http://sim/api/v1.1/projects")).json()
    assert [p["vcs_url"] for p in projects] == [world.project(s).vcs_url for s in followed]
    with pytest.raises(ValueError, match="followed: no simulated project gh/nobody/nothing"):
        World(SimConfig(projects=2, followed=("gh/nobody/nothing",)), clock)
