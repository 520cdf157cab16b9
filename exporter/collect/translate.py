"""API objects → run updates. Pure functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from exporter.circleci import models, slugs
from exporter.collect.branches import Placement
from exporter.state.statuses import OTHER_TEST_RESULT, TEST_RESULTS
from exporter.state.updates import (
    JobUpdate,
    PipelineUpdate,
    ProjectUpdate,
    TestResultsUpdate,
    WorkflowUpdate,
)


def seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def project_update(project_slug: str, project: models.Project) -> ProjectUpdate:
    return ProjectUpdate(
        project=project_slug,
        name=project.name,
        organization=project.organization_name or slugs.org_slug_of(project_slug),
        default_branch=project.vcs_info.default_branch or "",
        url=slugs.project_url(project_slug),
    )


def pipeline_update(
    project_slug: str, pipeline: models.Pipeline, place: Placement
) -> PipelineUpdate:
    errored = pipeline.state == "errored"
    return PipelineUpdate(
        project=project_slug,
        branch=place.label,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        # A pipeline without a trigger block is rare; count it rather than drop it.
        trigger=pipeline.trigger.type if pipeline.trigger else "unknown",
        created_at=pipeline.created_at.timestamp(),
        error_types=tuple(e.type for e in pipeline.errors) if errored else (),
        folded=place.folded,
    )


def workflow_run_update(
    project_slug: str,
    place: Placement,
    *,
    workflow_id: str,
    name: str,
    pipeline_number: int,
    status: str,
    created_at: datetime,
    stopped_at: datetime | None,
) -> WorkflowUpdate:
    """The update for one workflow run, whether polling or a webhook reported it."""
    return WorkflowUpdate(
        project=project_slug,
        branch=place.label,
        workflow=name,
        workflow_id=workflow_id,
        pipeline_number=pipeline_number,
        status=status,
        created_at=created_at.timestamp(),
        stopped_at=seconds(stopped_at),
        url=slugs.workflow_url(project_slug, pipeline_number, workflow_id),
        folded=place.folded,
    )


def job_run_update(
    project_slug: str,
    place: Placement,
    *,
    workflow_id: str,
    workflow_name: str,
    workflow_created_at: datetime,
    pipeline_number: int,
    job_id: str,
    name: str,
    number: int | None,
    status: str,
    started_at: datetime | None,
    stopped_at: datetime | None,
) -> JobUpdate:
    """The update for one job run, whether polling or a webhook reported it. A job that never
    started is ordered by its workflow's creation."""
    started = seconds(started_at)
    return JobUpdate(
        project=project_slug,
        branch=place.label,
        workflow=workflow_name,
        workflow_id=workflow_id,
        job=name,
        job_id=job_id,
        job_number=number,
        status=status,
        created_at=started if started is not None else workflow_created_at.timestamp(),
        started_at=started,
        stopped_at=seconds(stopped_at),
        url=slugs.job_url(project_slug, pipeline_number, workflow_id, number),
        folded=place.folded,
    )


def workflow_update(
    project_slug: str, workflow: models.Workflow, place: Placement
) -> WorkflowUpdate:
    return workflow_run_update(
        project_slug,
        place,
        workflow_id=workflow.id,
        name=workflow.name,
        pipeline_number=workflow.pipeline_number,
        status=workflow.status,
        created_at=workflow.created_at,
        stopped_at=workflow.stopped_at,
    )


def job_update(
    project_slug: str, workflow: models.Workflow, job: models.Job, place: Placement
) -> JobUpdate:
    return job_run_update(
        project_slug,
        place,
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        workflow_created_at=workflow.created_at,
        pipeline_number=workflow.pipeline_number,
        job_id=job.id,
        name=job.name,
        number=job.job_number,
        status=job.status,
        started_at=job.started_at,
        stopped_at=job.stopped_at,
    )


def test_results_update(job: JobUpdate, results: Iterable[models.TestResult]) -> TestResultsUpdate:
    return TestResultsUpdate(
        project=job.project,
        branch=job.branch,
        workflow=job.workflow,
        job=job.job,
        job_id=job.job_id,
        created_at=job.created_at,
        # A result outside the known set would mint a label value per string (5000 series from
        # one page of a hostile or odd test reporter): those are counted as "other".
        counts=dict(
            Counter(r.result if r.result in TEST_RESULTS else OTHER_TEST_RESULT for r in results)
        ),
    )
