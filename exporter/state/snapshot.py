"""An immutable copy of the state, taken after each collection cycle and rendered by
`exporter.metrics`. Keys are label-value tuples in the order the field names say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.state.histogram import HistogramData
from exporter.state.keys import (
    CollectionKey,
    JobKey,
    JobRunKey,
    PipelineErrorKey,
    PipelineKey,
    WorkflowKey,
    WorkflowRunKey,
)


@dataclass(frozen=True, slots=True)
class ProjectRow:
    project: str
    organization: str
    name: str
    url: str
    default_branch: str


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The most recent run of a workflow or job: the link metrics' labels."""

    number: str  # pipeline number for workflows, job number for jobs ("" when it has none)
    run_id: str
    status: str
    url: str


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    """One (project, branch, workflow)."""

    status: str | None
    last_run: RunInfo | None
    last_completed_status: str | None
    last_completed_at: float | None
    last_completed_duration: float | None
    consecutive_failures: int
    in_progress: Mapping[str, int]
    on_hold_since: float | None
    failing_since: float | None = None  # stop of the first run of the failure streak
    running_since: float | None = None  # created_at of the oldest run in progress (not on hold)


@dataclass(frozen=True, slots=True)
class FailedStep:
    """The first failed step of a job's last completed run, when that run failed. `step` is ""
    when API v1.1 could not tell (e.g. some Bitbucket Cloud projects)."""

    job_number: int
    url: str  # the failed run's job page
    step: str
    step_id: int | None
    index: int | None
    allocation_id: str | None
    output_url: str | None


@dataclass(frozen=True, slots=True)
class JobRow:
    """One (project, branch, workflow, job)."""

    last_run: RunInfo | None
    last_completed_status: str | None
    last_completed_duration: float | None
    last_tests: Mapping[str, int]
    failed_step: FailedStep | None = None


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """One (project, collector)."""

    up: bool
    last_success: float | None
    errors: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float
    watch_start: float  # counters count runs completed from here on (State.watch_start)
    projects: Mapping[str, ProjectRow]
    pipelines: Mapping[PipelineKey, int]
    pipeline_errors: Mapping[PipelineErrorKey, int]
    workflows: Mapping[WorkflowKey, WorkflowRow]
    workflow_runs: Mapping[WorkflowRunKey, int]
    workflow_durations: Mapping[WorkflowRunKey, HistogramData]
    jobs: Mapping[JobKey, JobRow]
    job_queue_times: Mapping[JobKey, HistogramData]
    job_runs: Mapping[JobRunKey, int]
    job_durations: Mapping[JobRunKey, HistogramData]
    collections: Mapping[CollectionKey, CollectionRow]
