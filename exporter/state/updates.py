"""Run updates: what the collectors and the webhook receiver tell the state.

Every source of information (polling, webhooks) produces these, and `State.apply` is the one
place that turns them into the picture of each tracked branch. Times are Unix seconds.
`folded` marks a branch outside the configured set that is counted under `branch="other"`:
it feeds counters and histograms only, never the state sets or the `last_*` gauges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProjectUpdate:
    project: str
    name: str
    organization: str
    default_branch: str
    url: str


@dataclass(frozen=True, slots=True)
class PipelineUpdate:
    project: str
    branch: str
    pipeline_id: str
    number: int
    trigger: str
    created_at: float
    error_types: tuple[str, ...] = ()
    folded: bool = False


@dataclass(frozen=True, slots=True)
class WorkflowUpdate:
    project: str
    branch: str
    workflow: str
    workflow_id: str
    pipeline_number: int
    status: str
    created_at: float
    stopped_at: float | None
    url: str
    folded: bool = False


@dataclass(frozen=True, slots=True)
class JobUpdate:
    project: str
    branch: str
    workflow: str
    workflow_id: str
    job: str
    job_id: str
    job_number: int | None
    status: str
    # When the run was created (its workflow's created_at when the job never started):
    # orders runs so that an older update never overwrites a newer one.
    created_at: float
    started_at: float | None
    stopped_at: float | None
    url: str
    folded: bool = False


@dataclass(frozen=True, slots=True)
class JobDetailsUpdate:
    """Queue time of a completed job, from its job details."""

    project: str
    branch: str
    workflow: str
    job: str
    job_id: str
    queued_at: float
    started_at: float
    folded: bool = False


@dataclass(frozen=True, slots=True)
class FailedStepUpdate:
    """The first failed step of a failed job run, from API v1.1; `step` is "" when it could
    not be read (the job link stays)."""

    project: str
    branch: str
    workflow: str
    job: str
    job_id: str
    job_number: int
    step: str
    step_id: int | None = None  # the action's `step`
    index: int | None = None  # the container (parallelism) index
    allocation_id: str | None = None
    output_url: str | None = None


@dataclass(frozen=True, slots=True)
class TestResultsUpdate:
    project: str
    branch: str
    workflow: str
    job: str
    job_id: str
    created_at: float
    counts: Mapping[str, int] = field(default_factory=dict)


RunUpdate = (
    ProjectUpdate
    | PipelineUpdate
    | WorkflowUpdate
    | JobUpdate
    | JobDetailsUpdate
    | TestResultsUpdate
    | FailedStepUpdate
)
