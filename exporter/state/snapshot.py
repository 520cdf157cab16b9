"""An immutable copy of the state, taken after each collection cycle and rendered by
`exporter.metrics`, one project at a time (`ProjectSnapshot`) so that only the projects that
changed are copied and rendered again. Keys are label-value tuples in the order the field
names say, their project first."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

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
class ProjectSnapshot:
    """An immutable copy of one project's series (`State.snapshot_project`): what the
    publisher keeps, and renders again only when the project changed. Its mappings hold only
    this project's keys; `projects` holds its row once the project itself was read."""

    project: str
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


_K = TypeVar("_K", bound=tuple[str, ...])
_V = TypeVar("_V")


class _ByProject(Mapping[_K, _V]):
    """One read-only mapping made of per-project ones, without copying them: every key starts
    with its project, so a lookup goes straight to its project's mapping."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Sequence[tuple[str, Mapping[_K, _V]]]) -> None:
        self._parts = dict(parts)

    def __getitem__(self, key: _K) -> _V:
        part = self._parts.get(key[0])
        if part is None:
            raise KeyError(key)
        return part[key]

    def __iter__(self) -> Iterator[_K]:
        for part in self._parts.values():
            yield from part

    def __len__(self) -> int:
        return sum(len(part) for part in self._parts.values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self)!r})"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole picture: the per-project snapshots in `parts` (in the state's order), seen
    through mappings that span them, plus the collection health."""

    taken_at: float
    watch_start: float  # counters count runs completed from here on (State.watch_start)
    parts: Mapping[str, ProjectSnapshot]
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

    @classmethod
    def of(
        cls,
        *,
        taken_at: float,
        watch_start: float,
        parts: Mapping[str, ProjectSnapshot],
        collections: Mapping[CollectionKey, CollectionRow],
    ) -> Snapshot:
        """The whole picture from per-project snapshots; costs a few operations per project."""
        values = tuple(parts.values())
        return cls(
            taken_at=taken_at,
            watch_start=watch_start,
            parts=MappingProxyType(dict(parts)),
            projects=MappingProxyType({k: v for p in values for k, v in p.projects.items()}),
            pipelines=_ByProject([(p.project, p.pipelines) for p in values]),
            pipeline_errors=_ByProject([(p.project, p.pipeline_errors) for p in values]),
            workflows=_ByProject([(p.project, p.workflows) for p in values]),
            workflow_runs=_ByProject([(p.project, p.workflow_runs) for p in values]),
            workflow_durations=_ByProject([(p.project, p.workflow_durations) for p in values]),
            jobs=_ByProject([(p.project, p.jobs) for p in values]),
            job_queue_times=_ByProject([(p.project, p.job_queue_times) for p in values]),
            job_runs=_ByProject([(p.project, p.job_runs) for p in values]),
            job_durations=_ByProject([(p.project, p.job_durations) for p in values]),
            collections=collections,
        )
