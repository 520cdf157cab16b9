"""The simulator against CircleCI's published OpenAPI spec and what real clients of the live API
expect.

Every GET operation the simulator serves is requested over projects of every kind and runs in
every state, and each answer is validated against the vendored spec
(tests/fixtures/circleci/openapi-v2.json) with `x-nullable`/`nullable` read as "or null". Where
the live API knowingly departs from the spec, DEVIATIONS relaxes exactly that, once, naming the
source that shows the live behaviour. Every other finding fails the test, all of them listed.

Every list is also read the way a generic client reads it: follow `next_page_token` until it is
null. Each page must carry `items` and the key, and the walk must end without a repeat.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from exporter.simulator import SimClock, SimConfig, World, create_app
from exporter.simulator.app import API_ROUTES

pytestmark = pytest.mark.anyio

SPEC_PATH = Path(__file__).parents[1] / "fixtures" / "circleci" / "openapi-v2.json"
JSON = dict[str, Any]
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: `x-nullable`/`nullable` become a `null` alternative."""
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


# -- deliberate deviations, each with its source ------------------------------------------------


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


def _flaky_tests_in_snake_case(schema: JSON) -> None:
    # The spec says kebab-case; CircleCI's own client (its MCP server, src/clients/schemas.ts
    # FlakyTestSchema) reads `flaky_tests`, `total_flaky_tests`, `job_number` from the live API.
    schema.update(_snake_case(schema))


def _unknown_trigger_types(schema: JSON) -> None:
    # The spec's trigger.type enum lacks values the live API sends ("unknown", "gitlab", ...):
    # docs/circleci-api.md §Live departures.
    pipeline = schema["properties"]["items"]["items"] if "items" in schema["properties"] else schema
    pipeline["properties"]["trigger"]["properties"]["type"] = {"type": "string"}


def _jobs_without_started_at(schema: JSON) -> None:
    # Approval, blocked and never-run jobs have no started_at, queued ones null, although the
    # spec requires a time: docs/circleci-api.md §Live departures.
    item = schema["properties"]["items"]["items"]
    item["required"] = [k for k in item["required"] if k != "started_at"]
    item["properties"]["started_at"] = {"type": ["string", "null"]}


def _queued_job_not_started(schema: JSON) -> None:
    # The same for one job's details while it is queued.
    schema["properties"]["started_at"] = {"type": ["string", "null"]}


DEVIATIONS: dict[str, Callable[[JSON], None]] = {
    "getFlakyTests": _flaky_tests_in_snake_case,
    "listPipelinesForProject": _unknown_trigger_types,
    "listMyPipelines": _unknown_trigger_types,
    "listPipelines": _unknown_trigger_types,
    "getPipelineById": _unknown_trigger_types,
    "getPipelineByNumber": _unknown_trigger_types,
    "listWorkflowJobs": _jobs_without_started_at,
    "getJobDetails": _queued_job_not_started,
}

# -- operations the vendored spec lacks ---------------------------------------------------------

_DATE_TIME = {"type": "string", "format": "date-time"}
_PAGE_TOKEN = {"type": ["string", "null"]}


def _page(item: JSON) -> JSON:
    return {
        "type": "object",
        "required": ["items", "next_page_token"],
        "properties": {"items": {"type": "array", "items": item}, "next_page_token": _PAGE_TOKEN},
    }


def _strict(required: dict[str, Any]) -> JSON:
    return {"type": "object", "required": list(required), "properties": required}


UNPUBLISHED: dict[str, JSON] = {
    # In CircleCI's API reference, not in the vendored spec; the shape of CircleCI's generated
    # client (CircleCI-Archived/java-api-client, InlineResponse2005Items).
    "getProjectJobRuns": _page(
        _strict(
            {
                "id": {"type": "string", "format": "uuid"},
                "started_at": _DATE_TIME,
                "stopped_at": _DATE_TIME,
                # The client's enum (success, not_run, failed, canceled, unauthorized) leaves
                # out infrastructure_fail and timedout; whether the live endpoint reports those
                # as such or as failed is unknown, so only the type is checked.
                "status": {"type": "string"},
                "credits_used": {"type": "integer", "minimum": 0},
                "duration": {"type": "integer", "minimum": 0},
            }
        )
    ),
    # API v1.1 has no OpenAPI spec: the fields its reference (circleci.com/docs/api/v1) shows.
    "getCurrentUserV1": _strict({"login": {"type": "string"}, "name": {"type": "string"}}),
    "listFollowedProjectsV1": {
        "type": "array",
        "items": _strict(
            {
                "vcs_url": {"type": "string"},
                "username": {"type": "string"},
                "reponame": {"type": "string"},
                "followed": {"const": True},
                "branches": {"type": "object"},
            }
        ),
    },
    "getJobV1": _strict(
        {
            "build_num": {"type": "integer"},
            "lifecycle": {"enum": ["queued", "not_run", "not_running", "running", "finished"]},
            "steps": {"type": "array"},
            "workflows": {"type": "object"},
        }
    ),
    "getTestsV1": _strict(
        {
            "tests": {
                "type": "array",
                "items": _strict(
                    {
                        "classname": {"type": "string"},
                        "file": {"type": "string"},
                        "name": {"type": "string"},
                        "result": {"type": "string"},
                        "run_time": {"type": "number"},
                        "message": {"type": ["string", "null"]},
                        "source": {"type": "string"},
                    }
                ),
            }
        }
    ),
    "getArtifactsV1": {
        "type": "array",
        "items": _strict(
            {
                "path": {"type": "string"},
                "pretty_path": {"type": "string"},
                "node_index": {"type": "integer"},
                "url": {"type": "string"},
            }
        ),
    },
    "getActionOutput": {
        "type": "array",
        "items": _strict(
            {"message": {"type": "string"}, "time": _DATE_TIME, "type": {"enum": ["out", "err"]}}
        ),
    },
}
# Plain-text answers: nothing to validate but the status.
PLAIN_TEXT = {"getPrivateStepOutput"}


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    spec = json.loads(SPEC_PATH.read_text())
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
            DEVIATIONS.get(operation["operationId"], lambda s: None)(schema)
            # Remaining `$ref`s point into #/components; carry them along so they resolve.
            schema["components"] = components
            found[operation["operationId"]] = Draft202012Validator(schema)
    for operation_id, schema in UNPUBLISHED.items():
        found[operation_id] = Draft202012Validator(schema)
    return found


@pytest.fixture
def world() -> World:
    clock = SimClock.manual(START)
    return World(SimConfig(projects=5, seed=3, token="fidelity-token"), clock)


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers={"Circle-Token": world.config.token}
    ) as client:
        yield client


# -- one real answer of every GET operation -----------------------------------------------------


def _calls(world: World) -> list[tuple[str, str]]:
    """(operationId, url) over projects of every kind and runs in every state."""
    now = world.now()
    me = world.me
    calls = [
        ("getCurrentUser", "/api/v2/me"),
        ("getUser", f"/api/v2/user/{me.id}"),
        ("getCollaborations", "/api/v2/me/collaborations"),
        ("listPipelines", "/api/v2/pipeline"),
        ("listPipelines", "/api/v2/pipeline?mine=true"),
        ("getCurrentUserV1", "/api/v1.1/me"),
        ("listFollowedProjectsV1", "/api/v1.1/projects"),
    ]
    for org in world.organizations:
        calls.append(("listPipelines", f"/api/v2/pipeline?org-slug={org.slug}"))
        calls.append(("getOrgSummaryData", f"/api/v2/insights/{org.slug}/summary"))
    for project in world.projects:
        slug = project.slug
        base, insights = f"/api/v2/project/{slug}", f"/api/v2/insights/{slug}"
        pipelines = world.pipelines(slug)
        calls += [
            ("getProjectBySlug", base),
            ("listPipelinesForProject", f"{base}/pipeline"),
            ("listPipelinesForProject", f"{base}/pipeline?branch={project.default_branch}"),
            ("listMyPipelines", f"{base}/pipeline/mine"),
            ("getPipelineByNumber", f"{base}/pipeline/{pipelines[-1].number}"),
            ("listSchedulesForProject", f"{base}/schedule"),
            ("getFlakyTests", f"{insights}/flaky-tests"),
            ("getAllInsightsBranches", f"{insights}/branches"),
            ("getProjectWorkflowMetrics", f"{insights}/workflows?all-branches=true"),
            ("getProjectWorkflowMetrics", f"{insights}/workflows?reporting-window=last-7-days"),
            ("getProjectWorkflowsPageData", f"/api/v2/insights/pages/{slug}/summary"),
        ]
        for schedule in project.schedules:
            calls.append(("getScheduleById", f"/api/v2/schedule/{schedule.id}"))
        for template in project.workflows:
            wf = f"{insights}/workflows/{template.name}"
            calls += [
                ("getProjectWorkflowRuns", wf),
                ("getProjectWorkflowJobMetrics", f"{wf}/jobs"),
                ("getWorkflowSummary", f"{wf}/summary"),
                ("getProjectWorkflowTestMetrics", f"{wf}/test-metrics"),
                (
                    "getJobTimeseries",
                    f"/api/v2/insights/time-series/{slug}/workflows/{template.name}/jobs"
                    "?granularity=hourly",
                ),
            ]
            calls += [("getProjectJobRuns", f"{wf}/jobs/{job.name}") for job in template.jobs]
        for pipeline in pipelines[-40:]:
            calls += [
                ("getPipelineById", f"/api/v2/pipeline/{pipeline.id}"),
                ("getPipelineConfigById", f"/api/v2/pipeline/{pipeline.id}/config"),
                ("listWorkflowsByPipelineId", f"/api/v2/pipeline/{pipeline.id}/workflow"),
            ]
            for workflow in pipeline.workflows_at(now):
                calls += [
                    ("getWorkflowById", f"/api/v2/workflow/{workflow.id}"),
                    ("listWorkflowJobs", f"/api/v2/workflow/{workflow.id}/job"),
                ]
                for job in workflow.jobs:
                    if job.number_at(now) is None:
                        continue
                    v1 = f"/api/v1.1/project/{slug}/{job.number}"
                    calls += [
                        ("getJobDetails", f"{base}/job/{job.number}"),
                        ("getTests", f"{base}/{job.number}/tests"),
                        ("getJobArtifacts", f"{base}/{job.number}/artifacts"),
                        ("getJobV1", v1),
                        ("getTestsV1", f"{v1}/tests"),
                        ("getArtifactsV1", f"{v1}/artifacts"),
                    ]
    return calls


async def _output_calls(api: httpx.AsyncClient, world: World) -> list[tuple[str, str]]:
    """Step output URLs, as a v1.1 job of a failed run hands them out."""
    for project in world.projects:
        for workflow in world.workflows(project.slug):
            for job in workflow.jobs:
                if job.ran and job.final_status == "failed" and job.number is not None:
                    body = (await api.get(f"/api/v1.1/project/{project.slug}/{job.number}")).json()
                    actions = [a for step in body["steps"] for a in step["actions"]]
                    url = next(a["output_url"] for a in actions if a.get("output_url"))
                    step, index = actions[-1]["step"], actions[-1]["index"]
                    private = f"/api/private/output/raw/{project.slug}/{job.number}"
                    return [
                        ("getActionOutput", httpx.URL(url).raw_path.decode()),
                        ("getPrivateStepOutput", f"{private}/output/{index}/{step}"),
                    ]
    raise AssertionError("the world should have a failed job")


def _hook(project_id: str) -> JSON:
    return {
        "name": "exporter",
        "url": "https://example.com/hook",
        "verify-tls": True,
        "signing-secret": "s3cret-value",
        "scope": {"id": project_id, "type": "project"},
        "events": ["workflow-completed", "job-completed"],
    }


async def _webhook_calls(api: httpx.AsyncClient, world: World) -> list[tuple[str, str]]:
    project = world.projects[0]
    created = (await api.post("/api/v2/webhook", json=_hook(project.id))).json()
    return [
        ("getWebhooks", f"/api/v2/webhook?scope-id={project.id}&scope-type=project"),
        ("getWebhookById", f"/api/v2/webhook/{created['id']}"),
    ]


def _findings(operation: str, url: str, response: httpx.Response, validator: Any) -> list[str]:
    if not response.is_success:
        return [f"{operation} {url}: HTTP {response.status_code} {response.text[:200]}"]
    if operation in PLAIN_TEXT:
        return []
    return [
        f"{operation} {url}: {error.message} at {list(error.absolute_path)}"
        for error in validator.iter_errors(response.json())
    ]


async def test_every_get_operation_matches_the_spec(
    validators: dict[str, Draft202012Validator], world: World, api: httpx.AsyncClient
) -> None:
    calls = _calls(world) + await _output_calls(api, world) + await _webhook_calls(api, world)
    served = {route.operation_id for route in API_ROUTES if route.method == "GET"}
    assert {operation for operation, _ in calls} == served
    findings = []
    for operation, url in calls:
        validator = validators.get(operation)
        assert validator is not None or operation in PLAIN_TEXT, f"no schema for {operation}"
        findings += _findings(operation, url, await api.get(url), validator)
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(findings[:50])


async def test_kebab_case_flaky_tests_match_the_spec_as_published(
    validators: dict[str, Draft202012Validator],
) -> None:
    clock = SimClock.manual(START)
    world = World(SimConfig(projects=5, seed=3, flaky_tests_casing="kebab"), clock)
    transport = httpx.ASGITransport(app=create_app(world))
    headers = {"Circle-Token": world.config.token}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers=headers
    ) as api:
        bodies = [
            (await api.get(f"/api/v2/insights/{p.slug}/flaky-tests")).json() for p in world.projects
        ]
    assert any(body["flaky-tests"] for body in bodies), "the world should have flaky tests"
    for body in bodies:
        validators["getFlakyTests:as-published"].validate(body)
        assert body["total-flaky-tests"] == len(body["flaky-tests"])


# -- pagination ---------------------------------------------------------------------------------


def with_page_token(url: str, token: str | None) -> str:
    """`url` with `page-token` added to the query it already has (httpx's `params=` would
    replace that query)."""
    return str(httpx.URL(url).copy_add_param("page-token", token)) if token else url


def _list_urls(world: World) -> dict[str, list[str]]:
    """Every list endpoint, on lists long enough to span pages where the world has them."""
    now = world.now()
    project = max(world.projects, key=lambda p: len(world.pipelines(p.slug)))
    slug, base = project.slug, f"/api/v2/project/{project.slug}"
    insights = f"/api/v2/insights/{slug}/workflows"
    pipeline = world.pipelines(slug)[-30]
    workflow = pipeline.workflows_at(now)[0]
    tested = max(
        (j for w in world.workflows(slug) for j in w.jobs if j.ran and j.is_completed_at(now)),
        key=lambda j: (len(j.template.tests), j.template.parallelism),
    )
    template = project.workflows[0]
    hook_scope = f"scope-id={project.id}&scope-type=project"
    return {
        "listPipelinesForProject": [f"{base}/pipeline", f"{base}/pipeline?branch=nowhere"],
        "listMyPipelines": [f"{base}/pipeline/mine"],
        "listPipelines": [
            "/api/v2/pipeline",
            "/api/v2/pipeline?mine=true",
            f"/api/v2/pipeline?org-slug={project.organization.slug}",
        ],
        "listWorkflowsByPipelineId": [f"/api/v2/pipeline/{pipeline.id}/workflow"],
        "listWorkflowJobs": [f"/api/v2/workflow/{workflow.id}/job"],
        "getTests": [f"{base}/{tested.number}/tests"],
        "getJobArtifacts": [f"{base}/{tested.number}/artifacts"],
        "listSchedulesForProject": [f"{base}/schedule"],
        "getProjectWorkflowMetrics": [f"{insights}?all-branches=true"],
        "getProjectWorkflowRuns": [f"{insights}/{template.name}?all-branches=true"],
        "getProjectWorkflowJobMetrics": [f"{insights}/{template.name}/jobs"],
        "getProjectJobRuns": [f"{insights}/{template.name}/jobs/build?all-branches=true"],
        "getJobTimeseries": [
            f"/api/v2/insights/time-series/{slug}/workflows/{template.name}/jobs?granularity=hourly"
        ],
        "getWebhooks": [f"/api/v2/webhook?{hook_scope}"],
    }


def test_every_paginated_operation_is_walked() -> None:
    spec = json.loads(SPEC_PATH.read_text())
    world = World(SimConfig(projects=1), SimClock.manual(START))
    served = {route.operation_id for route in API_ROUTES if route.method == "GET"}
    paginated = {
        operation["operationId"]
        for operations in spec["paths"].values()
        for method, operation in operations.items()
        if method == "get"
        and operation.get("operationId") in served
        and "next_page_token" in json.dumps(operation["responses"])
    }
    assert paginated | {"getProjectJobRuns"} == set(_list_urls(world))


async def _walk(api: httpx.AsyncClient, url: str) -> tuple[int, list[str]]:
    """Follow next_page_token to the end like a generic client; (pages, problems)."""
    problems, seen_tokens, seen_items = [], set(), set()
    token: str | None = None
    for pages in range(1, 1000):
        response = await api.get(with_page_token(url, token))
        if response.status_code != 200:
            return pages, [f"{url} page {pages}: HTTP {response.status_code}"]
        body = response.json()
        if not isinstance(body.get("items"), list) or "next_page_token" not in body:
            return pages, [f"{url} page {pages}: keys {sorted(body)}"]
        for item in body["items"]:
            key = json.dumps(item, sort_keys=True)
            if key in seen_items:
                problems.append(f"{url} page {pages}: item repeated: {key[:80]}")
            seen_items.add(key)
        token = body["next_page_token"]
        if token is None:
            return pages, problems
        if token in seen_tokens:
            return pages, [*problems, f"{url} page {pages}: token repeated"]
        seen_tokens.add(token)
    return pages, [*problems, f"{url}: no end after {pages} pages"]


async def test_every_list_walks_from_the_first_page_to_the_end(
    world: World, api: httpx.AsyncClient
) -> None:
    await _webhook_calls(api, world)  # a webhook, so that list is not empty
    problems, pages_by_operation = [], {}
    for operation, urls in _list_urls(world).items():
        for url in urls:
            pages, found = await _walk(api, url)
            problems += found
            pages_by_operation[operation] = max(pages, pages_by_operation.get(operation, 0))
    assert not problems, "\n".join(problems)
    # The long lists span pages, so the walk is tested, not only the first page.
    multi_page = {"listPipelinesForProject", "listPipelines", "getTests"}
    multi_page |= {"getProjectWorkflowRuns", "getProjectJobRuns", "getJobTimeseries"}
    assert {op for op, pages in pages_by_operation.items() if pages > 1} >= multi_page


async def test_a_walk_reads_every_pipeline_once(world: World, api: httpx.AsyncClient) -> None:
    slug = world.projects[0].slug
    numbers, token = [], None
    while True:
        body = (await api.get(with_page_token(f"/api/v2/project/{slug}/pipeline", token))).json()
        numbers += [item["number"] for item in body["items"]]
        if (token := body["next_page_token"]) is None:
            break
    assert numbers == [p.number for p in reversed(world.pipelines(slug))]


# -- errors -------------------------------------------------------------------------------------


async def test_an_invalid_page_token_is_404_not_found(world: World, api: httpx.AsyncClient) -> None:
    for operation, urls in _list_urls(world).items():
        for token in ("bm90LWEtdG9rZW4", "%%%"):
            response = await api.get(with_page_token(urls[0], token))
            assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (
                operation
            )


async def test_401_without_a_valid_token_on_v2_and_v1(world: World) -> None:
    slug = world.projects[0].slug
    number = next(j.number for w in world.workflows(slug) for j in w.jobs if j.number)
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as anonymous:
        for url in ("/api/v2/me", f"/api/v2/project/{slug}/pipeline", "/api/v1.1/me",
                    f"/api/v1.1/project/{slug}/{number}"):  # fmt: skip
            for headers in ({}, {"Circle-Token": "wrong"}):
                response = await anonymous.get(url, headers=headers)
                assert response.status_code == 401, url
                assert response.json() == {"message": "Invalid token provided."}


async def test_404_shapes(api: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for url, message in [
        ("/api/v2/project/gh/nobody/nothing", "Project not found."),
        ("/api/v2/project/gh/nobody/nothing/pipeline", "Project not found."),
        (f"/api/v2/pipeline/{missing}", None),
        (f"/api/v2/pipeline/{missing}/config", None),
        (f"/api/v2/workflow/{missing}", None),
        (f"/api/v2/user/{missing}", None),
        (f"/api/v2/schedule/{missing}", None),
        ("/api/v2/no/such/route", "Not Found"),
    ]:
        response = await api.get(url)
        assert response.status_code == 404, url
        body = response.json()
        assert list(body) == ["message"] and isinstance(body["message"], str), url
        if message is not None:
            assert body["message"] == message, url


async def test_webhook_writes_match_the_spec(
    validators: dict[str, Draft202012Validator], world: World, api: httpx.AsyncClient
) -> None:
    project = world.projects[0]
    created = await api.post("/api/v2/webhook", json=_hook(project.id))
    hook_id = created.json()["id"]
    answers = [
        ("createWebhook", created),
        ("updateWebhook", await api.put(f"/api/v2/webhook/{hook_id}", json={"name": "renamed"})),
        ("deleteWebhook", await api.delete(f"/api/v2/webhook/{hook_id}")),
    ]
    findings = []
    for operation, response in answers:
        findings += _findings(operation, str(response.url), response, validators[operation])
    assert not findings, "\n".join(findings)
