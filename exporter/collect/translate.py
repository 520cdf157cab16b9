"""API objects → run updates. Pure functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from exporter.circleci import models, slugs
from exporter.collect.branches import Placement
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


def workflow_update(
    project_slug: str, workflow: models.Workflow, place: Placement
) -> WorkflowUpdate:
    return WorkflowUpdate(
        project=project_slug,
        branch=place.label,
        workflow=workflow.name,
        workflow_id=workflow.id,
        pipeline_number=workflow.pipeline_number,
        status=workflow.status,
        created_at=workflow.created_at.timestamp(),
        stopped_at=seconds(workflow.stopped_at),
        url=slugs.workflow_url(project_slug, workflow.pipeline_number, workflow.id),
        folded=place.folded,
    )


def job_update(
    project_slug: str, workflow: models.Workflow, job: models.Job, place: Placement
) -> JobUpdate:
    started_at = seconds(job.started_at)
    return JobUpdate(
        project=project_slug,
        branch=place.label,
        workflow=workflow.name,
        workflow_id=workflow.id,
        job=job.name,
        job_id=job.id,
        job_number=job.job_number,
        status=job.status,
        created_at=started_at if started_at is not None else workflow.created_at.timestamp(),
        started_at=started_at,
        stopped_at=seconds(job.stopped_at),
        url=slugs.job_url(project_slug, workflow.pipeline_number, workflow.id, job.job_number),
        folded=place.folded,
    )


def test_results_update(job: JobUpdate, results: Iterable[models.TestResult]) -> TestResultsUpdate:
    return TestResultsUpdate(
        project=job.project,
        branch=job.branch,
        workflow=job.workflow,
        job=job.job,
        job_id=job.job_id,
        created_at=job.created_at,
        counts=dict(Counter(r.result for r in results)),
    )
