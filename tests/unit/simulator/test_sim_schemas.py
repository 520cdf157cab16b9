"""Every endpoint's responses validate against CircleCI's published OpenAPI schemas.

The spec is OpenAPI 3.0, so `x-nullable`/`nullable` become `null` alternatives, and the few
places where the live API knowingly departs from the spec (docs/circleci-api.md §Live departures)
are relaxed here, each named in LIVE_DEVIATIONS. Everything else is checked as published.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from exporter.simulator import SimClock, SimConfig, World, create_app
from exporter.simulator.app import API_ROUTES
from tests.fixtures import OPENAPI_SPEC

pytestmark = pytest.mark.anyio

# v1.1 and the step output endpoints have no OpenAPI spec (tests/unit/simulator/test_sim_steps.py)
V1_ONLY = {"getJobV1", "getActionOutput", "getPrivateStepOutput"}


def _openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: _openapi_to_jsonschema(value)
        for key, value in node.items()
        if key not in ("x-nullable", "nullable", "example", "x-codeSamples")
    }
    if node.get("x-nullable") or node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _relax_next_page_token(schema: dict[str, Any]) -> None:
    # A consumer tolerates a missing `next_page_token` (docs/circleci-api.md §Pagination).
    if "next_page_token" in schema.get("properties", {}):
        schema["required"] = [k for k in schema.get("required", []) if k != "next_page_token"]


def _relax_jobs(schema: dict[str, Any]) -> None:
    # started_at is null or absent for jobs that never started (docs/circleci-api.md §Jobs).
    item = schema["properties"]["items"]["items"]
    item["required"] = [k for k in item["required"] if k != "started_at"]
    item["properties"]["started_at"] = {"type": ["string", "null"]}


def _relax_job_details(schema: dict[str, Any]) -> None:
    # A queued job has no start yet, in its details too (docs/circleci-api.md §Jobs).
    schema["properties"]["started_at"] = {"type": ["string", "null"]}


def _relax_trigger_type(schema: dict[str, Any]) -> None:
    # Unknown trigger types ("unknown", ...) occur live (docs/circleci-api.md §Pipelines).
    pipeline = schema["properties"]["items"]["items"] if "items" in schema["properties"] else schema
    pipeline["properties"]["trigger"]["properties"]["type"] = {"type": "string"}


def _snake_case(node: Any) -> Any:
    if isinstance(node, list):
        return [_snake_case(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _snake_case(value) for key, value in node.items()}
    if isinstance(node.get("properties"), dict):
        converted["properties"] = {
            key.replace("-", "_"): _snake_case(value) for key, value in node["properties"].items()
        }
    if isinstance(node.get("required"), list):
        converted["required"] = [key.replace("-", "_") for key in node["required"]]
    return converted


def _relax_flaky_tests(schema: dict[str, Any]) -> None:
    # The live flaky-tests body is snake_case, the spec says kebab-case (docs/circleci-api.md
    # §Insights).
    schema.update(_snake_case(schema))


LIVE_DEVIATIONS = {
    "getFlakyTests": _relax_flaky_tests,
    "listWorkflowJobs": _relax_jobs,
    "getJobDetails": _relax_job_details,
    "listPipelinesForProject": _relax_trigger_type,
    "listPipelines": _relax_trigger_type,
    "getPipelineById": _relax_trigger_type,
    "getPipelineByNumber": _relax_trigger_type,
}


# Operations the vendored spec lacks, with the response shape of CircleCI's API reference.
_DATE_TIME = {"type": "string", "format": "date-time"}
UNPUBLISHED = {
    "getProjectJobRuns": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "next_page_token": {"type": ["string", "null"]},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "started_at", "stopped_at", "status", "credits_used"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "started_at": _DATE_TIME,
                        "stopped_at": _DATE_TIME,
                        "status": {"type": "string"},
                        "credits_used": {"type": "integer"},
                        "duration": {"type": "integer"},
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    spec = json.loads(OPENAPI_SPEC.read_text())
    components = _openapi_to_jsonschema(spec["components"])
    found = {}
    for operations in spec["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            success = next(code for code in operation["responses"] if code.startswith("2"))
            content = operation["responses"][success].get("content", {})
            if "application/json" not in content:
                continue
            schema = _openapi_to_jsonschema(copy.deepcopy(content["application/json"]["schema"]))
            found[operation["operationId"] + ":as-published"] = Draft202012Validator(schema)
            schema = copy.deepcopy(schema)
            _relax_next_page_token(schema)
            LIVE_DEVIATIONS.get(operation["operationId"], lambda s: None)(schema)
            # Remaining `$ref`s point into #/components; carry them along so they resolve.
            schema["components"] = components
            found[operation["operationId"]] = Draft202012Validator(schema)
    for operation_id, schema in UNPUBLISHED.items():
        found[operation_id] = Draft202012Validator(schema)
    return found


async def _samples(api: httpx.AsyncClient, world: World) -> list[tuple[str, httpx.Response]]:
    """Requests covering every route, over projects of every kind and runs in every state."""
    now = world.now()
    calls: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("getCurrentUser", "GET", "/api/v2/me", None),
        ("getCollaborations", "GET", "/api/v2/me/collaborations", None),
    ]
    for org in world.organizations:
        calls.append(("listPipelines", "GET", f"/api/v2/pipeline?org-slug={org.slug}", None))
        calls.append(("getOrgSummaryData", "GET", f"/api/v2/insights/{org.slug}/summary", None))
    for project in world.projects:
        slug = project.slug
        base, insights = f"/api/v2/project/{slug}", f"/api/v2/insights/{slug}"
        pipelines = world.pipelines(slug)
        calls += [
            ("getProjectBySlug", "GET", base, None),
            ("listPipelinesForProject", "GET", f"{base}/pipeline", None),
            (
                "listPipelinesForProject",
                "GET",
                f"{base}/pipeline?branch={project.default_branch}",
                None,
            ),
            ("getPipelineByNumber", "GET", f"{base}/pipeline/{pipelines[-1].number}", None),
            ("listSchedulesForProject", "GET", f"{base}/schedule", None),
            ("getFlakyTests", "GET", f"{insights}/flaky-tests", None),
            ("getAllInsightsBranches", "GET", f"{insights}/branches", None),
            ("getProjectWorkflowMetrics", "GET", f"{insights}/workflows?all-branches=true", None),
            (
                "getProjectWorkflowMetrics",
                "GET",
                f"{insights}/workflows?reporting-window=last-7-days",
                None,
            ),
            ("getProjectWorkflowsPageData", "GET", f"/api/v2/insights/pages/{slug}/summary", None),
        ]
        for template in project.workflows:
            wf = f"{insights}/workflows/{template.name}"
            calls += [
                ("getProjectWorkflowRuns", "GET", wf, None),
                ("getProjectWorkflowJobMetrics", "GET", f"{wf}/jobs", None),
                (
                    "getProjectJobRuns",
                    "GET",
                    f"{wf}/jobs/{next(j.name for j in template.jobs if j.type == 'build')}",
                    None,
                ),
                ("getWorkflowSummary", "GET", f"{wf}/summary", None),
                ("getProjectWorkflowTestMetrics", "GET", f"{wf}/test-metrics", None),
                (
                    "getJobTimeseries",
                    "GET",
                    f"/api/v2/insights/time-series/{slug}/workflows/{template.name}/jobs?granularity=hourly",
                    None,
                ),
            ]
        for pipeline in pipelines[-40:]:
            calls += [
                ("getPipelineById", "GET", f"/api/v2/pipeline/{pipeline.id}", None),
                (
                    "listWorkflowsByPipelineId",
                    "GET",
                    f"/api/v2/pipeline/{pipeline.id}/workflow",
                    None,
                ),
            ]
            for workflow in pipeline.workflows_at(now):
                calls += [
                    ("getWorkflowById", "GET", f"/api/v2/workflow/{workflow.id}", None),
                    ("listWorkflowJobs", "GET", f"/api/v2/workflow/{workflow.id}/job", None),
                ]
                for job in workflow.jobs:
                    if job.number_at(now) is not None:
                        calls += [
                            ("getJobDetails", "GET", f"{base}/job/{job.number}", None),
                            ("getTests", "GET", f"{base}/{job.number}/tests", None),
                            ("getJobArtifacts", "GET", f"{base}/{job.number}/artifacts", None),
                        ]
    project = world.projects[0]
    hook = {
        "name": "exporter",
        "url": "https://example.com/hook",
        "verify-tls": True,
        "signing-secret": "s3cret-value",
        "scope": {"id": project.id, "type": "project"},
        "events": ["workflow-completed", "job-completed"],
    }
    responses = []
    for operation, method, url, body in calls:
        responses.append((operation, await api.request(method, url, json=body)))
    created = await api.post("/api/v2/webhook", json=hook)
    hook_id = created.json()["id"]
    responses += [
        ("createWebhook", created),
        ("getWebhooks", await api.get(f"/api/v2/webhook?scope-id={project.id}&scope-type=project")),
        ("getWebhookById", await api.get(f"/api/v2/webhook/{hook_id}")),
        ("updateWebhook", await api.put(f"/api/v2/webhook/{hook_id}", json={"name": "renamed"})),
        ("deleteWebhook", await api.delete(f"/api/v2/webhook/{hook_id}")),
    ]
    return responses


async def test_every_endpoint_matches_the_spec(
    validators: dict[str, Draft202012Validator], clock: SimClock
) -> None:
    world = World(SimConfig(projects=5, seed=3), clock)
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers={"Circle-Token": world.config.token}
    ) as api:
        samples = await _samples(api, world)
    covered = {operation for operation, _ in samples}
    assert covered == {route.operation_id for route in API_ROUTES} - V1_ONLY
    for operation, response in samples:
        assert response.is_success, (operation, response.url, response.text)
        errors = list(validators[operation].iter_errors(response.json()))
        assert not errors, (
            f"{operation} {response.url}: {errors[0].message} at {list(errors[0].path)}"
        )


async def test_kebab_case_flaky_tests_match_the_spec(
    validators: dict[str, Draft202012Validator], clock: SimClock
) -> None:
    world = World(SimConfig(projects=5, seed=3, flaky_tests_casing="kebab"), clock)
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://sim/api/v2",
        headers={"Circle-Token": world.config.token},
    ) as api:
        bodies = [(await api.get(f"/insights/{p.slug}/flaky-tests")).json() for p in world.projects]
    assert any(body["flaky-tests"] for body in bodies), "the world should have flaky tests"
    for body in bodies:
        validators["getFlakyTests:as-published"].validate(body)
        assert body["total-flaky-tests"] == len(body["flaky-tests"])
