"""The live API's departures from the spec (docs/circleci-api.md §Live departures) are
reproduced."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from exporter.simulator import Faults, SimClock, SimConfig, World, create_app

pytestmark = pytest.mark.anyio

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


async def _all_pages(api: httpx.AsyncClient, url: str) -> list[dict[str, object]]:
    items, token = [], None
    while True:
        page = (await api.get(url, params={"page-token": token} if token else {})).json()
        items += page["items"]
        token = page.get("next_page_token")
        if not token:
            return items


async def test_pages_hold_20_items_and_chain_to_the_end(
    world: World, api: httpx.AsyncClient
) -> None:
    slug = world.projects[0].slug
    first = (await api.get(f"/project/{slug}/pipeline")).json()
    assert len(first["items"]) == 20
    items = await _all_pages(api, f"/project/{slug}/pipeline")
    assert [i["number"] for i in items] == [p.number for p in reversed(world.pipelines(slug))]


async def test_last_page_token_is_null_unless_a_fault_omits_it(
    world: World, faults: Faults, api: httpx.AsyncClient
) -> None:
    urls = [
        f"/pipeline/{pipeline.id}/workflow"
        for project in world.projects
        for pipeline in world.pipelines(project.slug)[-10:]
    ]
    bodies = [(await api.get(url)).json() for url in urls]
    assert all(body["next_page_token"] is None for body in bodies)
    faults.add(match="listWorkflowsByPipelineId", omit_last_page_token_ratio=1.0)
    bodies = [(await api.get(url)).json() for url in urls]
    assert all("next_page_token" not in body for body in bodies)
    # A page with more to come keeps its token whatever the fault says.
    slug = world.projects[0].slug
    faults.add(match="listPipelinesForProject", omit_last_page_token_ratio=1.0)
    assert (await api.get(f"/project/{slug}/pipeline")).json()["next_page_token"]


async def test_test_messages_are_strings_and_quirks_are_opt_in(
    world: World, faults: Faults, api: httpx.AsyncClient
) -> None:
    slug = world.projects[0].slug
    job = next(
        j for w in world.workflows(slug) for j in w.jobs
        if j.template.tests and j.ran and j.is_completed_at(world.now())
    )  # fmt: skip
    url = f"/project/{slug}/{job.number}/tests"
    items = (await api.get(url)).json()["items"]
    assert items and all(isinstance(item["message"], str) for item in items)
    assert all(item["message"] == "" for item in items if item["result"] != "failure")
    assert all(isinstance(item["run_time"], float) and "file" in item for item in items)
    faults.add(match="getTests", test_quirks_ratio=1.0)
    quirky = (await api.get(url)).json()["items"]
    assert all(isinstance(item["run_time"], str) and "file" not in item for item in quirky)
    assert [float(item["run_time"]) for item in quirky] == [item["run_time"] for item in items]


async def test_invalid_page_token_is_404_not_found(world: World, api: httpx.AsyncClient) -> None:
    slug = world.projects[0].slug
    job = next(j for w in world.workflows(slug) for j in w.jobs if j.number is not None)
    workflow = job.workflow
    for url in (
        f"/project/{slug}/pipeline",
        "/pipeline",
        f"/workflow/{workflow.id}/job",
        f"/project/{slug}/{job.number}/tests",
        f"/project/{slug}/{job.number}/artifacts",
        f"/insights/{slug}/workflows",
    ):
        response = await api.get(url, params={"page-token": "bm90LWEtdG9rZW4"})
        assert response.status_code == 404, url
        assert response.json() == {"message": "Not Found"}
    # A token from one list is not valid for another.
    token = (await api.get(f"/project/{slug}/pipeline")).json()["next_page_token"]
    other = world.projects[1].slug
    response = await api.get(f"/project/{other}/pipeline", params={"page-token": token})
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


async def test_unknown_project_is_404_project_not_found(api: httpx.AsyncClient) -> None:
    response = await api.get("/project/gh/nobody/nothing/pipeline")
    assert response.status_code == 404
    assert response.json() == {"message": "Project not found."}


async def test_unknown_route_answers_with_a_message(api: httpx.AsyncClient) -> None:
    response = await api.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


async def test_slug_forms_all_reach_the_project(world: World, api: httpx.AsyncClient) -> None:
    github = next(p for p in world.projects if p.slug.startswith("gh/"))
    bitbucket = next(p for p in world.projects if p.slug.startswith("bb/"))
    standalone = next(p for p in world.projects if p.slug.startswith("circleci/"))
    for path, expected in (
        (github.slug, github.slug),
        ("github/" + github.slug[3:], github.slug),
        ("bitbucket/" + bitbucket.slug[3:], bitbucket.slug),
        (standalone.slug, standalone.slug),
        (github.slug.replace("/", "%2F"), github.slug),
    ):
        response = await api.get(f"/project/{path}")
        assert response.status_code == 200, path
        assert response.json()["slug"] == expected


async def test_optional_fields_are_omitted_not_null(world: World, api: httpx.AsyncClient) -> None:
    now = world.now()
    workflow = next(
        w for p in world.projects for w in world.workflows(p.slug) if w.status_at(now) == "success"
    )
    body = (await api.get(f"/workflow/{workflow.id}")).json()
    for optional in ("canceled_by", "errored_by", "tag", "auto_rerun_number"):
        assert optional not in body


async def test_jobs_without_numbers(world: World, clock: SimClock, api: httpx.AsyncClient) -> None:
    """Approvals, blocked and never-run jobs carry no job_number and no started_at
    (docs/circleci-api.md §Jobs)."""
    now = world.now()
    seen: dict[str, dict[str, object]] = {}
    for project in world.projects:
        for workflow in world.workflows(project.slug)[-60:]:
            for job in (await api.get(f"/workflow/{workflow.id}/job")).json()["items"]:
                kind = "approval" if job["type"] == "approval" else job["status"]
                seen.setdefault(kind, job)
    assert {"approval", "not_run"} <= set(seen), sorted(seen)
    for kind in ("approval", "not_run"):
        assert "job_number" not in seen[kind]
    assert "started_at" not in seen["not_run"]
    assert now == clock.now()


async def test_timestamps_mix_whole_seconds_and_milliseconds(
    world: World, api: httpx.AsyncClient
) -> None:
    stamps = []
    for pipeline in world.pipelines(world.projects[0].slug)[-20:]:
        for workflow in (await api.get(f"/pipeline/{pipeline.id}/workflow")).json()["items"]:
            stamps.append(workflow["created_at"])
    assert all(TIMESTAMP.match(s) for s in stamps)
    assert any("." in s for s in stamps) and any("." not in s for s in stamps)


async def test_job_details_duration_is_milliseconds_and_web_url_legacy(
    world: World, api: httpx.AsyncClient
) -> None:
    now = world.now()
    job = next(
        j
        for w in world.workflows(world.projects[1].slug)
        for j in w.jobs
        if j.ran and j.is_completed_at(now)
    )
    slug = job.workflow.project.slug
    body = (await api.get(f"/project/{slug}/job/{job.number}")).json()
    assert job.started_at is not None and job.queued_at is not None
    assert body["duration"] == int((job.stopped_at - job.started_at).total_seconds() * 1000)
    assert body["web_url"] == f"https://circleci.com/{slug}/{job.number}"
    assert body["queued_at"] < body["started_at"]


async def test_page_token_accepted_on_test_lists(world: World, api: httpx.AsyncClient) -> None:
    now = world.now()
    job = next(
        j
        for p in world.projects
        for w in world.workflows(p.slug)
        for j in w.jobs
        if len(j.template.tests) > 20 and j.is_completed_at(now) and j.final_status == "success"
    )
    slug = job.workflow.project.slug
    items = await _all_pages(api, f"/project/{slug}/{job.number}/tests")
    assert len(items) == len(job.template.tests)
    assert len({(t["classname"], t["name"]) for t in items}) == len(items)


async def test_trigger_types_include_unknown_values(world: World) -> None:
    triggers = {p.trigger_type for proj in world.projects for p in world.pipelines(proj.slug)}
    assert {"webhook", "api", "explicit", "scheduled_pipeline", "unknown"} <= triggers


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


@pytest.mark.parametrize(
    "credentials",
    [
        lambda token: {"headers": {"Circle-Token": token}},
        lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
        lambda token: {"headers": {"Authorization": _basic(token)}},
        lambda token: {"params": {"circle-token": token}},
    ],
    ids=["circle-token", "bearer", "basic", "query"],
)
async def test_token_forms_are_accepted_on_v2_and_v1(
    clock: SimClock, credentials: Callable[[str], dict[str, Any]]
) -> None:
    world = World(SimConfig(projects=1, token="tok-123"), clock)
    slug = world.projects[0].slug
    now = world.now()
    number = next(j.number for w in world.workflows(slug) for j in w.jobs if j.number_at(now))
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/api") as api:
        for url in ("/v2/me", f"/v1.1/project/{slug}/{number}"):
            assert (await api.get(url, **credentials("tok-123"))).status_code == 200
            for refused in (await api.get(url, **credentials("nope")), await api.get(url)):
                assert refused.status_code == 401
                assert refused.json() == {"message": "Invalid token provided."}


async def test_auth_is_on_by_default_with_a_fresh_token(clock: SimClock) -> None:
    one, other = SimConfig(projects=1), SimConfig(projects=1)
    assert one.token.startswith("CCIPAT_") and one.token != other.token
    transport = httpx.ASGITransport(app=create_app(World(one, clock)))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/api/v2") as api:
        assert (await api.get("/me")).status_code == 401
        assert (await api.get("/me", headers={"Circle-Token": other.token})).status_code == 401
        assert (await api.get("/me", headers={"Circle-Token": one.token})).status_code == 200


async def test_control_endpoints_answer_loopback_only(world: World) -> None:
    for client, allowed in ((("127.0.0.1", 5000), True), (("::1", 5000), True),
                            (("192.0.2.7", 5000), False)):  # fmt: skip
        transport = httpx.ASGITransport(app=create_app(world), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as sim:
            for response in (await sim.get("/__sim/stats"), await sim.get("/__sim/faults")):
                assert (response.status_code == 200) is allowed, (client, response.text)
            posted = await sim.post("/__sim/faults", json={"match": "getTests", "error_ratio": 1})
            assert (posted.status_code == 200) is allowed


def test_config_repr_hides_credentials() -> None:
    config = SimConfig(token="tok-secret", webhook_secret="hook-secret")
    assert "tok-secret" not in repr(config)
    assert "hook-secret" not in repr(config)
