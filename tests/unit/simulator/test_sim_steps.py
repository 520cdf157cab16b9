"""v1.1 steps and step output: one failing step per failed job, served like CircleCI serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.simulator import SimClock, SimConfig, World, create_app
from exporter.simulator.model import Job

pytestmark = pytest.mark.anyio

TOKEN = "sim-token"


@pytest.fixture
def world(clock: SimClock) -> World:
    return World(SimConfig(projects=5, seed=7, token=TOKEN), clock)


@pytest.fixture
async def sim(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def _jobs(world: World, status: str, *, tests: bool | None = None) -> list[Job]:
    now = world.now()
    found = []
    for project in world.projects:
        for workflow in world.workflows(project.slug):
            for job in workflow.jobs:
                if job.type != "build" or job.number_at(now) is None:
                    continue
                if job.status_at(now) != status:
                    continue
                if tests is not None and bool(job.failed_tests) != tests:
                    continue
                found.append(job)
    assert found, f"no {status} job in the world"
    return found


async def _v1(sim: httpx.AsyncClient, job: Job) -> dict[str, Any]:
    slug = job.workflow.project.slug
    response = await sim.get(
        f"/api/v1.1/project/{slug}/{job.number}", headers={"Circle-Token": TOKEN}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _actions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [action for step in body["steps"] for action in step["actions"]]


@pytest.mark.parametrize("tests", [True, False])
async def test_a_failed_job_has_exactly_one_failing_step_with_its_error_at_the_end(
    world: World, sim: httpx.AsyncClient, tests: bool
) -> None:
    job = _jobs(world, "failed", tests=tests)[0]
    body = await _v1(sim, job)
    failing = [a for a in _actions(body) if a["failed"]]
    assert len(failing) == 1
    action = failing[0]
    assert action["status"] == "failed"
    assert action["exit_code"] == 1
    assert action["has_output"] is True
    assert action["allocation_id"]
    spin_up = body["steps"][0]
    assert spin_up["name"] == "Spin up environment"
    assert {a["status"] for a in spin_up["actions"]} == {"success"}
    assert body["steps"][-1]["actions"][0]["step"] == action["step"]  # nothing ran after it

    # The pre-signed URL is served by the simulator itself, without a token.
    assert action["output_url"].startswith("http://sim/")
    response = await sim.get(action["output_url"])
    assert response.status_code == 200
    lines = response.json()
    assert {frozenset(line) for line in lines} == {frozenset({"message", "time", "type"})}
    assert lines[-1]["message"].strip() == "Exited with code exit status 1"
    error = lines[-2]["message"]
    if tests:
        test = job.template.tests[job.failed_tests[-1]]
        assert "failed" in error and "passed" in error
        assert any(f"FAILED {test.file}::{test.name}" in line["message"] for line in lines)
    else:
        assert "error" in error.lower() or "undefined" in error


async def test_private_output_endpoints_serve_the_same_lines_as_plain_text(
    world: World, sim: httpx.AsyncClient
) -> None:
    job = _jobs(world, "failed", tests=False)[0]
    action = next(a for a in _actions(await _v1(sim, job)) if a["failed"])
    lines = (await sim.get(action["output_url"])).json()
    slug = job.workflow.project.slug
    base = f"/api/private/output/raw/{slug}/{job.number}"
    where = f"{action['index']}/{action['step']}"
    auth = {"Circle-Token": TOKEN}
    out = await sim.get(f"{base}/output/{where}", headers=auth)
    err = await sim.get(f"{base}/error/{where}", headers=auth)
    assert out.status_code == err.status_code == 200
    assert out.headers["content-type"].startswith("text/plain")
    assert out.text == "".join(line["message"] for line in lines if line["type"] == "out")
    assert err.text == "".join(line["message"] for line in lines if line["type"] == "err")
    assert err.text  # a build error goes to stderr
    assert (await sim.get(f"{base}/output/{where}")).status_code == 401
    assert (await sim.get(f"{base}/output/0/999", headers=auth)).status_code == 404


async def test_a_successful_job_has_no_failing_step(world: World, sim: httpx.AsyncClient) -> None:
    job = _jobs(world, "success")[0]
    actions = _actions(await _v1(sim, job))
    assert actions
    assert not [a for a in actions if a["failed"]]
    assert {a["status"] for a in actions} == {"success"}
    assert {a["exit_code"] for a in actions} == {0}


async def test_a_parallel_failure_fails_on_one_container_only(
    world: World, sim: httpx.AsyncClient
) -> None:
    parallel = [j for j in _jobs(world, "failed") if j.template.parallelism > 1]
    if not parallel:
        pytest.fail("the world has no failed parallel job")
    body = await _v1(sim, parallel[0])
    command = body["steps"][-1]["actions"]
    assert len(command) == parallel[0].template.parallelism
    assert [a["status"] for a in command].count("failed") == 1
    assert len([a for a in _actions(body) if a["failed"]]) == 1
