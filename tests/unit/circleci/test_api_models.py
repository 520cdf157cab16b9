"""The models accept what the live API sends, not only what the spec promises
(docs/circleci-api.md §Live departures)."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.circleci import models


def test_pipeline_with_vcs(load: Callable[[str], Any]) -> None:
    pipeline = models.Pipeline.model_validate(load("pipelines.page1.json")["items"][0])
    assert pipeline.number == 1042
    assert pipeline.branch == "main"
    assert pipeline.tag is None
    assert pipeline.trigger is not None and pipeline.trigger.type == "webhook"
    assert pipeline.created_at == datetime(2025, 6, 3, 14, 21, 8, 114000, tzinfo=UTC)


def test_standalone_pipeline_branch_from_trigger_parameters(load: Callable[[str], Any]) -> None:
    pipeline = models.Pipeline.model_validate(load("pipeline.standalone.json"))
    assert pipeline.vcs is None
    assert pipeline.branch == "release/2.4"
    assert pipeline.tag is None  # an empty tag parameter means "no tag"
    assert pipeline.trigger is not None
    assert pipeline.trigger.type == "Decoupled Ingestion System"  # outside the spec's enum
    assert pipeline.trigger.actor is not None and pipeline.trigger.actor.avatar_url is None


def test_errored_pipeline_keeps_its_errors(load: Callable[[str], Any]) -> None:
    pipeline = models.Pipeline.model_validate(load("pipelines.page2.json")["items"][0])
    assert pipeline.state == "errored"
    assert [error.type for error in pipeline.errors] == ["config"]


def test_pipeline_tag_from_vcs() -> None:
    pipeline = models.Pipeline.model_validate(
        {
            "id": "p",
            "number": 1,
            "project_slug": "gh/acme/api",
            "created_at": "2025-06-03T14:21:08Z",
            "state": "created",
            "vcs": {"tag": "v2.4.0"},
        }
    )
    assert (pipeline.tag, pipeline.branch) == ("v2.4.0", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-03T14:29:41Z", datetime(2025, 6, 3, 14, 29, 41, tzinfo=UTC)),
        ("2025-06-03T14:29:41.520Z", datetime(2025, 6, 3, 14, 29, 41, 520000, tzinfo=UTC)),
        ("2025-06-03T16:29:41+02:00", datetime(2025, 6, 3, 14, 29, 41, tzinfo=UTC)),
        ("2025-06-03T14:29:41", datetime(2025, 6, 3, 14, 29, 41, tzinfo=UTC)),
    ],
)
def test_timestamps_become_utc_whatever_the_precision(text: str, expected: datetime) -> None:
    workflow = models.Workflow.model_validate(
        {
            "id": "w",
            "name": "build",
            "pipeline_id": "p",
            "pipeline_number": 1,
            "project_slug": "gh/acme/api",
            "status": "success",
            "created_at": text,
        }
    )
    assert workflow.created_at == expected
    assert workflow.created_at.utcoffset() is not None
    assert workflow.stopped_at is None


def test_workflows_with_null_and_missing_optionals(load: Callable[[str], Any]) -> None:
    page = models.Page[models.Workflow].model_validate(load("workflows.json"))
    failed, on_hold = page.items
    assert failed.stopped_at == datetime(2025, 6, 3, 14, 29, 41, 520000, tzinfo=UTC)
    assert on_hold.stopped_at is None
    assert on_hold.status == "on_hold"
    assert failed.tag is None and failed.canceled_by is None
    assert page.next_page_token is None


def test_jobs_without_number_or_start(load: Callable[[str], Any]) -> None:
    build, approval, blocked = models.Page[models.Job].model_validate(load("jobs.json")).items
    assert (build.job_number, build.type) == (8812, "build")
    assert approval.job_number is None and approval.started_at is None
    assert approval.type == "approval"
    assert blocked.job_number is None and blocked.started_at is None
    assert blocked.dependencies == [approval.id]


def test_job_details_duration_is_milliseconds(load: Callable[[str], Any]) -> None:
    details = models.JobDetails.model_validate(load("job-details.json"))
    assert details.duration == 508882
    assert details.duration_seconds == pytest.approx(508.882)
    assert details.web_url == "https://circleci.com/gh/acme/api/8812"
    assert details.executor is not None and details.executor.resource_class == "large"
    assert [run.status for run in details.parallel_runs] == ["success", "failed"]


def test_job_details_minimal_payload() -> None:
    details = models.JobDetails.model_validate(
        {"number": 7, "name": "lint", "status": "queued", "project": {"slug": "gh/acme/api"}}
    )
    assert details.duration_seconds is None
    assert details.started_at is None
    assert details.project is not None and details.project.id is None


def test_test_results_run_time_string_and_missing_file(load: Callable[[str], Any]) -> None:
    ok, failed, skipped = models.Page[models.TestResult].model_validate(load("tests.json")).items
    assert ok.run_time == pytest.approx(0.0143)
    assert failed.run_time == 2.5
    assert failed.file is None
    assert skipped.message is None and skipped.run_time == 0.0


@pytest.mark.parametrize("fixture", ["flaky-tests.snake.json", "flaky-tests.kebab.json"])
def test_flaky_tests_in_both_casings(load: Callable[[str], Any], fixture: str) -> None:
    flaky = models.FlakyTests.model_validate(load(fixture))
    assert flaky.total_flaky_tests == 1
    (test,) = flaky.flaky_tests
    assert test.test_name == "test_login_rate_limited"
    assert test.job_name == "unit-tests"
    assert test.job_number == 8731
    assert test.times_flaked == 6
    assert test.pipeline_number == 1033
    assert test.workflow_created_at is not None
    assert test.workflow_created_at.date().isoformat() == "2025-06-01"


def test_schedule_kebab_case(load: Callable[[str], Any]) -> None:
    (schedule,) = models.Page[models.Schedule].model_validate(load("schedules.json")).items
    assert schedule.project_slug == "gh/acme/api"
    assert schedule.updated_at == datetime(2025, 3, 2, 11, 15, 22, 310000, tzinfo=UTC)
    assert schedule.timetable.per_hour == 1
    assert schedule.timetable.hours_of_day == [2]
    assert schedule.timetable.months == []


@pytest.mark.parametrize("fixture", ["webhooks.json", "webhook.created.json"])
def test_webhook_both_casings(load: Callable[[str], Any], fixture: str) -> None:
    payload = load(fixture)
    webhook = models.Webhook.model_validate(payload["items"][0] if "items" in payload else payload)
    assert webhook.verify_tls is True
    assert webhook.signing_secret is not None and webhook.signing_secret.startswith("****")
    assert webhook.created_at is not None
    assert webhook.scope is not None and webhook.scope.type == "project"


def test_project_default_branch(load: Callable[[str], Any]) -> None:
    project = models.Project.model_validate(load("project.json"))
    assert project.vcs_info.default_branch == "main"
    assert project.organization_slug == "gh/acme"


def test_insights_workflow_metrics_without_mttr(load: Callable[[str], Any]) -> None:
    page = models.Page[models.ProjectWorkflowMetrics].model_validate(
        load("insights-workflows.json")
    )
    build, deploy = page.items
    assert build.metrics.mttr == 3120
    assert build.metrics.duration_metrics.p95 == 702
    assert deploy.metrics.mttr is None and deploy.metrics.total_recoveries is None


def test_insights_summary_trends(load: Callable[[str], Any]) -> None:
    summary = models.WorkflowSummary.model_validate(load("insights-workflow-summary.json"))
    assert summary.metrics.completed_runs == 412
    assert summary.trends.mttr == -1.0  # -1.0 means "infinite" in API trends
    assert summary.workflow_names == ["build-and-test", "deploy", "nightly"]


def test_test_metrics(load: Callable[[str], Any]) -> None:
    metrics = models.TestMetrics.model_validate(load("insights-test-metrics.json"))
    assert metrics.most_failed_tests[0].flaky is True
    assert metrics.slowest_tests[0].file is None
    assert metrics.test_runs[0].test_counts.failure == 5


def test_org_summary(load: Callable[[str], Any]) -> None:
    org = models.OrgSummary.model_validate(load("insights-org-summary.json"))
    assert org.org_data.metrics.total_runs == 1290
    assert org.org_project_data[0].project_name == "api"
    assert org.org_project_data[0].metrics.throughput is None


def test_job_v1_steps(load: Callable[[str], Any]) -> None:
    job = models.JobV1.model_validate(load("job-v1.json"))
    assert (job.build_num, job.outcome, job.vcs_tag) == (8812, "failed", None)
    assert job.workflows is not None and job.workflows.workflow_name == "build-and-test"
    assert [step.actions[0].exit_code for step in job.steps] == [None, 1]


def test_required_identity_is_enforced() -> None:
    with pytest.raises(ValidationError, match="id"):
        models.Workflow.model_validate(
            {
                "id": None,
                "name": "build",
                "pipeline_id": "p",
                "pipeline_number": 1,
                "project_slug": "gh/acme/api",
                "status": "success",
                "created_at": "2025-06-03T14:21:08Z",
            }
        )
