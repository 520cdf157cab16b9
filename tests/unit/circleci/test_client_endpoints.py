"""Each client method calls the documented path and query, and parses the answer."""

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import respx
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter import __version__
from exporter.circleci import ApiTelemetry, CircleCIClient, RateLimiter, models

SLUG = "gh/acme/api"
STANDALONE = "circleci/43G3kM5RtfFE7v5sa4nWAU/44n9pujWcTnVZ2b5S8Fnat"
PIPELINE_ID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
WORKFLOW_ID = "fda08377-fe7e-46b1-8992-3a7aaecac9c3"
PROJECT_ID = "2f8a7c6e-4b1d-4e3a-9c8b-7a6f5e4d3c2b"
MAY_1 = datetime(2025, 5, 1, tzinfo=UTC)
JUNE_1 = datetime(2025, 6, 1, tzinfo=UTC)

Call = Callable[[CircleCIClient], Any]


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


CASES: list[tuple[str, Call, str, list[tuple[str, str]], str, Callable[[Any], bool]]] = [
    (
        "getProjectBySlug",
        lambda c: c.get_project("github/acme/api"),
        "/api/v2/project/gh/acme/api",
        [],
        "project.json",
        lambda r: r.vcs_info.default_branch == "main",
    ),
    (
        "getProjectBySlug standalone",
        lambda c: c.get_project(STANDALONE),
        f"/api/v2/project/{STANDALONE}",
        [],
        "project.json",
        lambda r: isinstance(r, models.Project),
    ),
    (
        "listPipelinesForProject",
        lambda c: _collect(c.iter_project_pipelines(SLUG, branch="feature/login")),
        "/api/v2/project/gh/acme/api/pipeline",
        [("branch", "feature/login")],
        "pipelines.page2.json",
        lambda r: [p.number for p in r] == [1040],
    ),
    (
        "listPipelines",
        lambda c: _collect(c.iter_org_pipelines("github/acme")),
        "/api/v2/pipeline",
        [("org-slug", "gh/acme")],
        "pipelines.page2.json",
        lambda r: r[0].state == "errored",
    ),
    (
        "listPipelines mine",
        lambda c: _collect(c.iter_org_pipelines("gh/acme", mine=True)),
        "/api/v2/pipeline",
        [("org-slug", "gh/acme"), ("mine", "true")],
        "pipelines.page2.json",
        lambda r: len(r) == 1,
    ),
    (
        "getPipelineById",
        lambda c: c.get_pipeline(PIPELINE_ID),
        f"/api/v2/pipeline/{PIPELINE_ID}",
        [],
        "pipeline.standalone.json",
        lambda r: r.branch == "release/2.4",
    ),
    (
        "listWorkflowsByPipelineId",
        lambda c: _collect(c.iter_pipeline_workflows(PIPELINE_ID)),
        f"/api/v2/pipeline/{PIPELINE_ID}/workflow",
        [],
        "workflows.json",
        lambda r: [w.status for w in r] == ["failed", "on_hold"],
    ),
    (
        "listWorkflowJobs",
        lambda c: _collect(c.iter_workflow_jobs(WORKFLOW_ID)),
        f"/api/v2/workflow/{WORKFLOW_ID}/job",
        [],
        "jobs.json",
        lambda r: [j.job_number for j in r] == [8812, None, None],
    ),
    (
        "getJobDetails",
        lambda c: c.get_job_details(SLUG, 8812),
        "/api/v2/project/gh/acme/api/job/8812",
        [],
        "job-details.json",
        lambda r: r.duration == 508882,
    ),
    (
        "getTests",
        lambda c: _collect(c.iter_job_tests(SLUG, 8812)),
        "/api/v2/project/gh/acme/api/8812/tests",
        [],
        "tests.json",
        lambda r: [t.result for t in r] == ["success", "failure", "skipped"],
    ),
    (
        "getJobV1",
        lambda c: c.get_job_v1(SLUG, 8812),
        "/api/v1.1/project/github/acme/api/8812",
        [],
        "job-v1.json",
        lambda r: isinstance(r, models.JobV1) and r.build_num == 8812,
    ),
    (
        "listSchedulesForProject",
        lambda c: _collect(c.iter_project_schedules(SLUG)),
        "/api/v2/project/gh/acme/api/schedule",
        [],
        "schedules.json",
        lambda r: r[0].name == "nightly",
    ),
    (
        "getProjectWorkflowMetrics",
        lambda c: _collect(
            c.iter_workflow_metrics(SLUG, all_branches=True, reporting_window="last-30-days")
        ),
        "/api/v2/insights/gh/acme/api/workflows",
        [("all-branches", "true"), ("reporting-window", "last-30-days")],
        "insights-workflows.json",
        lambda r: [m.name for m in r] == ["build-and-test", "deploy"],
    ),
    (
        "getProjectWorkflowRuns",
        lambda c: _collect(
            c.iter_workflow_runs(
                SLUG, "build-and-test", branch="main", start_date=MAY_1, end_date=JUNE_1
            )
        ),
        "/api/v2/insights/gh/acme/api/workflows/build-and-test",
        [
            ("branch", "main"),
            ("start-date", "2025-05-01T00:00:00Z"),
            ("end-date", "2025-06-01T00:00:00Z"),
        ],
        "insights-workflow-runs.json",
        lambda r: [run.status for run in r] == ["failed", "success"],
    ),
    (
        "getProjectJobRuns",
        lambda c: _collect(
            c.iter_job_runs(
                SLUG,
                "build and/test",
                "unit tests",
                branch="main",
                start_date=MAY_1,
                end_date=JUNE_1,
            )
        ),
        "/api/v2/insights/gh/acme/api/workflows/build%20and%2Ftest/jobs/unit%20tests",
        [
            ("branch", "main"),
            ("start-date", "2025-05-01T00:00:00Z"),
            ("end-date", "2025-06-01T00:00:00Z"),
        ],
        "insights-job-runs.json",
        lambda r: [(run.status, run.duration) for run in r] == [("failed", 322), ("success", 341)],
    ),
    (
        "getProjectWorkflowJobMetrics",
        lambda c: _collect(c.iter_workflow_job_metrics(SLUG, "build and/test", job_name="unit")),
        "/api/v2/insights/gh/acme/api/workflows/build%20and%2Ftest/jobs",
        [("job-name", "unit")],
        "insights-workflow-jobs.json",
        lambda r: r[0].metrics.failed_runs == 30,
    ),
    (
        "getWorkflowSummary",
        lambda c: c.get_workflow_summary(SLUG, "build-and-test", branch="main"),
        "/api/v2/insights/gh/acme/api/workflows/build-and-test/summary",
        [("branch", "main")],
        "insights-workflow-summary.json",
        lambda r: r.metrics.total_runs == 412,
    ),
    (
        "getProjectWorkflowTestMetrics",
        lambda c: c.get_workflow_test_metrics(SLUG, "build-and-test", all_branches=True),
        "/api/v2/insights/gh/acme/api/workflows/build-and-test/test-metrics",
        [("all-branches", "true")],
        "insights-test-metrics.json",
        lambda r: r.total_test_runs == 18402,
    ),
    (
        "getFlakyTests",
        lambda c: c.get_flaky_tests(SLUG),
        "/api/v2/insights/gh/acme/api/flaky-tests",
        [],
        "flaky-tests.snake.json",
        lambda r: r.total_flaky_tests == 1,
    ),
    (
        "getAllInsightsBranches",
        lambda c: c.get_insights_branches(SLUG, workflow_name="build-and-test"),
        "/api/v2/insights/gh/acme/api/branches",
        [("workflow-name", "build-and-test")],
        "insights-branches.json",
        lambda r: "release/2.4" in r.branches,
    ),
    (
        "getOrgSummaryData",
        lambda c: c.get_org_summary(
            "github/acme", reporting_window="last-7-days", project_names=["api", "web"]
        ),
        "/api/v2/insights/gh/acme/summary",
        [("reporting-window", "last-7-days"), ("project-names", "api"), ("project-names", "web")],
        "insights-org-summary.json",
        lambda r: r.all_projects == ["api", "web", "infra"],
    ),
    (
        "getWebhooks",
        lambda c: _collect(c.iter_webhooks(PROJECT_ID)),
        "/api/v2/webhook",
        [("scope-id", PROJECT_ID), ("scope-type", "project")],
        "webhooks.json",
        lambda r: r[0].events == ["workflow-completed", "job-completed"],
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "path", "params", "fixture", "check"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_endpoint(
    api: respx.MockRouter,
    client: CircleCIClient,
    load: Callable[[str], Any],
    call: Call,
    path: str,
    params: list[tuple[str, str]],
    fixture: str,
    check: Callable[[Any], bool],
) -> None:
    route = api.route().respond(json=load(fixture))
    result = await call(client)
    assert check(result)
    (sent,) = route.calls
    assert sent.request.method == "GET"
    assert sent.request.url.raw_path.split(b"?")[0].decode() == path
    assert sorted(sent.request.url.params.multi_items()) == sorted(params)


@pytest.mark.anyio
async def test_headers_sent(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any], token: str
) -> None:
    route = api.get("/v2/project/gh/acme/api").respond(json=load("project.json"))
    await client.get_project(SLUG)
    headers = route.calls.last.request.headers
    assert headers["Circle-Token"] == token
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == f"ocean-ci-exporter/{__version__}"


@pytest.mark.anyio
async def test_no_token_sends_no_auth_header(
    api: respx.MockRouter, registry: CollectorRegistry, load: Callable[[str], Any]
) -> None:
    route = api.get("/v2/project/gh/acme/api").respond(json=load("project.json"))
    anonymous = CircleCIClient(
        "https://circleci.com/api",
        None,
        limiter=RateLimiter(10.0, 10, 1),
        telemetry=ApiTelemetry(registry),
    )
    async with anonymous:
        await anonymous.get_project(SLUG)
    assert "Circle-Token" not in route.calls.last.request.headers
    assert repr(anonymous) == "CircleCIClient(base_url='https://circleci.com/api', token=none)"


@pytest.mark.anyio
async def test_create_webhook_sends_spec_body(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    route = api.post("/v2/webhook").respond(json=load("webhook.created.json"))
    webhook = await client.create_webhook(
        project_id=PROJECT_ID,
        name="ocean-ci-exporter",
        url="https://ci-exporter.acme.dev/webhooks/circleci",
        events=["workflow-completed"],
        signing_secret=SecretStr("hook-secret-123456"),
    )
    assert webhook.id == "f2e3d4c5-b6a7-4f8e-9d0c-1b2a3c4d5e6f"
    assert json.loads(route.calls.last.request.content) == {
        "name": "ocean-ci-exporter",
        "url": "https://ci-exporter.acme.dev/webhooks/circleci",
        "events": ["workflow-completed"],
        "verify-tls": True,
        "signing-secret": "hook-secret-123456",
        "scope": {"id": PROJECT_ID, "type": "project"},
    }


@pytest.mark.anyio
async def test_update_webhook_sends_only_changes(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    webhook_id = "f2e3d4c5-b6a7-4f8e-9d0c-1b2a3c4d5e6f"
    route = api.put(f"/v2/webhook/{webhook_id}").respond(json=load("webhook.created.json"))
    await client.update_webhook(
        webhook_id, events=["workflow-completed", "job-completed"], verify_tls=False
    )
    assert json.loads(route.calls.last.request.content) == {
        "events": ["workflow-completed", "job-completed"],
        "verify-tls": False,
    }


@pytest.mark.anyio
async def test_argument_mistakes_fail_before_any_request(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.route().respond(json={})
    with pytest.raises(ValueError, match="either branch or all_branches"):
        await client.get_workflow_summary(SLUG, "build", branch="main", all_branches=True)
    with pytest.raises(ValueError, match="end_date needs start_date"):
        client.iter_workflow_runs(SLUG, "build", end_date=JUNE_1)
    with pytest.raises(ValueError, match="invalid slug"):
        await client.get_project("acme/api")
    assert not route.called
