"""The in-memory picture of every tracked branch, and the one place that applies run updates.

Counting rule: a completed run (workflow or job) enters the counters and histograms at most
once, keyed by its id, and only when it completed at or after `watch_start`, the moment the
exporter began watching. History read at start-up, and a run already counted, only move the
gauges. So polling, webhooks and restarts can all deliver the same run without double counts.
"""

from __future__ import annotations

import logging
from bisect import insort
from collections import defaultdict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from exporter.state.histogram import Histogram
from exporter.state.keys import (
    BranchKey,
    CollectionKey,
    JobKey,
    JobRunKey,
    PipelineErrorKey,
    PipelineKey,
    WorkflowKey,
    WorkflowRunKey,
)
from exporter.state.snapshot import (
    CollectionRow,
    FailedStep,
    JobRow,
    ProjectRow,
    ProjectSnapshot,
    RunInfo,
    Snapshot,
    WorkflowRow,
)
from exporter.state.statuses import (
    FAILURES,
    JOB_FAILURES,
    WORKFLOW_IN_PROGRESS,
    job_finished,
    workflow_finished,
)
from exporter.state.updates import (
    FailedStepUpdate,
    JobDetailsUpdate,
    JobUpdate,
    PipelineUpdate,
    ProjectUpdate,
    RunUpdate,
    TestResultsUpdate,
    WorkflowUpdate,
)

logger = logging.getLogger(__name__)

_K = TypeVar("_K", bound=tuple[str, ...])


@dataclass(frozen=True, slots=True)
class Expired:
    """What one `State.expire` removed: the series nothing was seen of for `series_ttl`."""

    workflows: frozenset[WorkflowKey] = frozenset()
    jobs: frozenset[JobKey] = frozenset()
    branches: frozenset[BranchKey] = frozenset()
    # Every key removed: the series above and the counters and histograms under them.
    keys: int = 0


@dataclass(frozen=True, slots=True)
class Buckets:
    workflow_duration: tuple[float, ...]
    job_duration: tuple[float, ...]
    queue: tuple[float, ...]


@dataclass(slots=True)
class _Run:
    """A run as last seen: ordered by (created_at, run_id) so an older update never wins."""

    created_at: float
    run_id: str
    status: str
    number: str
    url: str
    complete: bool

    def newer_than(self, other: _Run | None) -> bool:
        if other is None:
            return True
        if other.run_id == self.run_id:
            # The same run: a completed status is final, an earlier in-progress one is stale.
            return self.complete or not other.complete
        return (self.created_at, self.run_id) > (other.created_at, other.run_id)

    def info(self) -> RunInfo:
        return RunInfo(self.number, self.run_id, self.status, self.url)


@dataclass(slots=True)
class _WorkflowSeries:
    last_seen: float
    latest: _Run | None = None
    last_completed: _Run | None = None
    last_completed_at: float | None = None
    last_completed_duration: float | None = None
    # Completed runs, oldest first, back to the newest one that is not a failure: enough to
    # know the failure streak, even when runs arrive out of order.
    # (created_at, run_id, status, stopped_at)
    completed: list[tuple[float, str, str, float]] = field(default_factory=list)
    in_progress: dict[str, tuple[str, float]] = field(default_factory=dict)

    def streak(self) -> int:
        count = 0
        for _, _, status, _ in reversed(self.completed):
            if status not in FAILURES:
                break
            count += 1
        return count

    def failing_since(self) -> float | None:
        """When the current failure streak began: the first failed run's stop."""
        streak = self.streak()
        return self.completed[-streak][3] if streak else None

    def running_since(self) -> float | None:
        """created_at of the oldest run still running (or failing)."""
        times = [t for status, t in self.in_progress.values() if status != "on_hold"]
        return min(times, default=None)

    def add_completed(self, created_at: float, run_id: str, status: str, stopped_at: float) -> None:
        entry = (created_at, run_id, status, stopped_at)
        if any(e[1] == run_id for e in self.completed):
            return
        insort(self.completed, entry)
        # Drop what lies behind the newest non-failure: it can no longer change the streak.
        for i in range(len(self.completed) - 1, -1, -1):
            if self.completed[i][2] not in FAILURES:
                del self.completed[:i]
                break


@dataclass(slots=True)
class _JobSeries:
    last_seen: float
    latest: _Run | None = None
    last_completed: _Run | None = None
    last_completed_duration: float | None = None
    tests_created_at: float | None = None
    last_tests: dict[str, int] = field(default_factory=dict)
    failed_step: FailedStepUpdate | None = None  # of one run; shown while that run is the last


@dataclass(slots=True)
class _Settled:
    """A completed run the state has applied: when, and whether it was counted."""

    completed_at: float
    counted: bool
    queue_observed: bool = False


@dataclass(slots=True)
class _Collection:
    up: bool = False
    last_success: float | None = None
    errors: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _ProjectData:
    """Everything the state shows of one project: a unit of change for the publisher, which
    snapshots and renders again only the projects that changed since its last publish."""

    info: ProjectUpdate | None = None
    # Distinct (branch, workflow) and (branch, workflow, job) names held, for the series limit.
    names: set[tuple[str, ...]] = field(default_factory=set)
    pipelines: defaultdict[PipelineKey, int] = field(default_factory=lambda: defaultdict(int))
    pipeline_errors: defaultdict[PipelineErrorKey, int] = field(
        default_factory=lambda: defaultdict(int)
    )
    branch_seen: dict[BranchKey, float] = field(default_factory=dict)
    workflows: dict[WorkflowKey, _WorkflowSeries] = field(default_factory=dict)
    workflow_runs: defaultdict[WorkflowRunKey, int] = field(
        default_factory=lambda: defaultdict(int)
    )
    workflow_durations: dict[WorkflowRunKey, Histogram] = field(default_factory=dict)
    jobs: dict[JobKey, _JobSeries] = field(default_factory=dict)
    job_runs: defaultdict[JobRunKey, int] = field(default_factory=lambda: defaultdict(int))
    job_durations: dict[JobRunKey, Histogram] = field(default_factory=dict)
    job_queue: dict[JobKey, Histogram] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since the last `State.take_changes`: the projects whose series did,
    whether the collection health (`circleci_up` and the like) did, and whether only the times
    of successful collections moved (`success_times`: a quiet cycle, nothing else to show)."""

    projects: frozenset[str]
    health: bool
    success_times: bool = False

    def __bool__(self) -> bool:
        return bool(self.projects) or self.health or self.success_times


class State:
    """`max_series_per_project`: distinct (branch, workflow) and (branch, workflow, job) names
    one project may have; an update that would add one more is dropped, and
    `on_series_limit(project)` told. Each name is a dozen or so series (statuses, buckets).

    Every change is recorded against its project (`take_changes`), so that a publisher can
    snapshot (`snapshot_project`) and render only what changed."""

    def __init__(
        self,
        *,
        watch_start: float,
        buckets: Buckets,
        series_ttl: float,
        max_series_per_project: int | None = None,
        on_series_limit: Callable[[str], None] = lambda project: None,
    ) -> None:
        self.watch_start = watch_start
        self.buckets = buckets
        self.series_ttl = series_ttl
        self.max_series_per_project = max_series_per_project
        self.on_series_limit = on_series_limit
        self._data: dict[str, _ProjectData] = {}
        self._seen_pipelines: dict[str, float] = {}
        self._settled: dict[str, _Settled] = {}
        self._collections: dict[CollectionKey, _Collection] = {}
        self._changed: set[str] = set()
        self._health_changed = False
        self._success_times_moved = False

    def _project(self, project: str) -> _ProjectData:
        data = self._data.get(project)
        if data is None:
            data = self._data[project] = _ProjectData()
        return data

    def _changed_project(self, project: str) -> _ProjectData:
        """The project's data, about to change."""
        self._changed.add(project)
        return self._project(project)

    def take_changes(self) -> Changes:
        """What changed since the last call (the first call: everything so far)."""
        changes = Changes(frozenset(self._changed), self._health_changed, self._success_times_moved)
        self._changed = set()
        self._health_changed = False
        self._success_times_moved = False
        return changes

    def projects(self) -> list[str]:
        """Every project the state holds, in a stable order (the order they first appeared)."""
        return list(self._data)

    # -- the single update path ---------------------------------------------------------

    def apply(self, update: RunUpdate) -> None:
        match update:
            case ProjectUpdate():
                if self._project(update.project).info != update:
                    self._changed_project(update.project).info = update
            case PipelineUpdate():
                self._apply_pipeline(update)
            case WorkflowUpdate():
                self._apply_workflow(update)
            case JobUpdate():
                self._apply_job(update)
            case JobDetailsUpdate():
                self._apply_job_details(update)
            case TestResultsUpdate():
                self._apply_tests(update)
            case FailedStepUpdate():
                self._apply_failed_step(update)

    def _apply_pipeline(self, update: PipelineUpdate) -> None:
        data = self._project(update.project)
        branch = BranchKey(update.project, update.branch)
        # Not shown, only kept for expiry: no change to publish.
        data.branch_seen[branch] = max(update.created_at, data.branch_seen.get(branch, 0.0))
        if update.pipeline_id in self._seen_pipelines:
            return
        self._seen_pipelines[update.pipeline_id] = update.created_at
        if update.created_at < self.watch_start:
            return
        data = self._changed_project(update.project)
        data.pipelines[PipelineKey(update.project, update.branch, update.trigger)] += 1
        for error_type in update.error_types:
            data.pipeline_errors[PipelineErrorKey(update.project, update.branch, error_type)] += 1

    def _settle(self, run_id: str, completed_at: float) -> bool:
        """Record a completed run; True when it is to be counted now."""
        if run_id in self._settled:
            return False
        counted = completed_at >= self.watch_start
        self._settled[run_id] = _Settled(completed_at, counted)
        return counted

    def _admit(self, project: str, name: tuple[str, ...]) -> bool:
        """Whether an update of series `name` (project first) fits the project's limit."""
        names = self._project(project).names
        if name in names:
            return True
        if self.max_series_per_project is not None and len(names) >= self.max_series_per_project:
            self.on_series_limit(project)
            return False
        names.add(name)
        return True

    def _apply_workflow(self, update: WorkflowUpdate) -> None:
        if not self._admit(
            update.project, WorkflowKey(update.project, update.branch, update.workflow)
        ):
            return
        complete = workflow_finished(update.status, update.stopped_at)
        duration = (
            (update.stopped_at - update.created_at) if update.stopped_at is not None else None
        )
        already_settled = update.workflow_id in self._settled
        if complete and self._settle(update.workflow_id, update.stopped_at or update.created_at):
            data = self._changed_project(update.project)
            key = WorkflowRunKey(update.project, update.branch, update.workflow, update.status)
            data.workflow_runs[key] += 1
            if duration is not None:
                self._histogram(data.workflow_durations, key, self.buckets.workflow_duration)
                data.workflow_durations[key].observe(max(duration, 0.0))
        if update.folded:
            return
        if already_settled and not complete:
            return  # a stale in-progress view of a run that has finished
        data = self._project(update.project)
        workflow = WorkflowKey(update.project, update.branch, update.workflow)
        series = data.workflows.get(workflow)
        # Polling reads a running workflow again every cycle, and a run can be delivered by
        # both polling and webhooks: only a row that looks different is a change to publish.
        before = None if series is None else _workflow_row(series)
        activity = update.stopped_at or update.created_at
        if series is None:
            series = data.workflows[workflow] = _WorkflowSeries(activity)
        series.last_seen = max(series.last_seen, activity)
        self._update_workflow(series, update, complete, duration)
        if before is None or _workflow_row(series) != before:
            self._changed.add(update.project)

    @staticmethod
    def _update_workflow(
        series: _WorkflowSeries, update: WorkflowUpdate, complete: bool, duration: float | None
    ) -> None:
        run = _Run(
            update.created_at,
            update.workflow_id,
            update.status,
            str(update.pipeline_number),
            update.url,
            complete,
        )
        if run.newer_than(series.latest):
            series.latest = run
        if not complete:
            series.in_progress[update.workflow_id] = (update.status, update.created_at)
            return
        series.in_progress.pop(update.workflow_id, None)
        series.add_completed(
            update.created_at,
            update.workflow_id,
            update.status,
            update.stopped_at or update.created_at,
        )
        if run.newer_than(series.last_completed):
            series.last_completed = run
            series.last_completed_at = update.stopped_at
            series.last_completed_duration = duration

    def _apply_job(self, update: JobUpdate) -> None:
        if not self._admit(
            update.project, JobKey(update.project, update.branch, update.workflow, update.job)
        ):
            return
        complete = job_finished(update.status, update.stopped_at)
        duration = (
            update.stopped_at - update.started_at
            if update.stopped_at is not None and update.started_at is not None
            else None
        )
        already_settled = update.job_id in self._settled
        if complete and self._settle(update.job_id, update.stopped_at or update.created_at):
            data = self._changed_project(update.project)
            key = JobRunKey(
                update.project, update.branch, update.workflow, update.job, update.status
            )
            data.job_runs[key] += 1
            if duration is not None:
                self._histogram(data.job_durations, key, self.buckets.job_duration)
                data.job_durations[key].observe(max(duration, 0.0))
        if update.folded or (already_settled and not complete):
            return
        data = self._project(update.project)
        job = JobKey(update.project, update.branch, update.workflow, update.job)
        activity = update.stopped_at or update.started_at or update.created_at
        series = data.jobs.get(job)
        before = None if series is None else _job_row(series)  # as for workflows
        if series is None:
            series = data.jobs[job] = _JobSeries(activity)
        series.last_seen = max(series.last_seen, activity)
        number = "" if update.job_number is None else str(update.job_number)
        run = _Run(update.created_at, update.job_id, update.status, number, update.url, complete)
        if run.newer_than(series.latest):
            series.latest = run
        if complete and run.newer_than(series.last_completed):
            series.last_completed = run
            series.last_completed_duration = duration
        if before is None or _job_row(series) != before:
            self._changed.add(update.project)

    def _apply_job_details(self, update: JobDetailsUpdate) -> None:
        settled = self._settled.get(update.job_id)
        if settled is None or not settled.counted or settled.queue_observed:
            return
        settled.queue_observed = True
        data = self._changed_project(update.project)
        key = JobKey(update.project, update.branch, update.workflow, update.job)
        self._histogram(data.job_queue, key, self.buckets.queue)
        data.job_queue[key].observe(max(update.started_at - update.queued_at, 0.0))

    def _job_series(self, update: TestResultsUpdate | FailedStepUpdate) -> _JobSeries | None:
        data = self._data.get(update.project)
        key = JobKey(update.project, update.branch, update.workflow, update.job)
        return None if data is None else data.jobs.get(key)

    def _apply_tests(self, update: TestResultsUpdate) -> None:
        series = self._job_series(update)
        if series is None or not update.counts:
            return
        if series.tests_created_at is not None and update.created_at < series.tests_created_at:
            return
        if series.last_tests != update.counts:
            self._changed.add(update.project)
        series.tests_created_at = update.created_at
        series.last_tests = dict(update.counts)

    def _apply_failed_step(self, update: FailedStepUpdate) -> None:
        series = self._job_series(update)
        # Read after its run completed: if a newer run completed since, this step is moot.
        last = None if series is None else series.last_completed
        if series is not None and last is not None and last.run_id == update.job_id:
            if series.failed_step != update:
                self._changed.add(update.project)
            series.failed_step = update

    @staticmethod
    def _histogram(store: dict[_K, Histogram], key: _K, buckets: tuple[float, ...]) -> None:
        if key not in store:
            store[key] = Histogram(buckets)

    def forget_unfinished(self, run_ids: list[str]) -> None:
        """These workflow runs will never finish (CircleCI no longer knows them): they stop
        counting as in progress."""
        for project, data in self._data.items():
            for series in data.workflows.values():
                for run_id in run_ids:
                    if series.in_progress.pop(run_id, None) is not None:
                        self._changed.add(project)

    # -- collection health --------------------------------------------------------------

    def record_success(self, project: str, collector: str, at: float) -> None:
        key = CollectionKey(project, collector)
        status = self._collections.get(key)
        if status is not None and status.up and status.last_error is None:
            # Up before and up now: only the time moved (see Changes.success_times).
            self._success_times_moved |= status.last_success != at
        else:
            status = self._collections.setdefault(key, _Collection())
            self._health_changed = True
        status.up, status.last_success, status.last_error = True, at, None

    def record_failure(self, project: str, collector: str, error: str) -> None:
        status = self._collections.setdefault(CollectionKey(project, collector), _Collection())
        status.up = False
        status.errors += 1
        status.last_error = error
        self._health_changed = True

    # -- stale series ---------------------------------------------------------------------

    def expire(self, now: float) -> Expired:
        """Remove series not seen for `series_ttl`; return what went."""
        horizon = now - self.series_ttl
        stale_workflows: set[WorkflowKey] = set()
        stale_jobs: set[JobKey] = set()
        stale_branches: set[BranchKey] = set()
        removed = 0
        for project, data in self._data.items():
            workflows = _drop_stale(data.workflows, horizon)
            jobs = _drop_stale(data.jobs, horizon)
            branches = _drop_older(data.branch_seen, horizon)
            changed = bool(workflows or jobs)
            for series in data.workflows.values():
                # A run that never reported completion (a missed event) stops counting as running.
                for run_id in [r for r, (_, t) in series.in_progress.items() if t < horizon]:
                    del series.in_progress[run_id]
                    changed = True
            dropped = 0
            for store, stale in (
                (data.workflow_runs, workflows),
                (data.workflow_durations, workflows),
                (data.job_runs, jobs),
                (data.job_durations, jobs),
                (data.job_queue, jobs),
                (data.pipelines, branches),
                (data.pipeline_errors, branches),
            ):
                dropped += _drop_prefixed(store, stale)
            if changed or dropped:
                self._changed.add(project)
            removed += len(workflows) + len(jobs) + len(branches) + dropped
            stale_workflows |= workflows
            stale_jobs |= jobs
            stale_branches |= branches
            _recount_names(data)
        # Ids of runs older than the horizon can no longer arrive from polling.
        for run_id in [r for r, s in self._settled.items() if s.completed_at < horizon]:
            del self._settled[run_id]
        for pid in [p for p, t in self._seen_pipelines.items() if t < horizon]:
            del self._seen_pipelines[pid]
        return Expired(
            frozenset(stale_workflows), frozenset(stale_jobs), frozenset(stale_branches), removed
        )

    # -- snapshot -------------------------------------------------------------------------

    def snapshot_project(self, project: str) -> ProjectSnapshot:
        """An immutable copy of one project's series (empty for a project the state lacks)."""
        data = self._data.get(project) or _ProjectData()
        p = data.info
        return ProjectSnapshot(
            project=project,
            projects=MappingProxyType(
                {}
                if p is None
                else {project: ProjectRow(project, p.organization, p.name, p.url, p.default_branch)}
            ),
            pipelines=MappingProxyType(dict(data.pipelines)),
            pipeline_errors=MappingProxyType(dict(data.pipeline_errors)),
            workflows=MappingProxyType({k: _workflow_row(s) for k, s in data.workflows.items()}),
            workflow_runs=MappingProxyType(dict(data.workflow_runs)),
            workflow_durations=MappingProxyType(
                {k: h.freeze() for k, h in data.workflow_durations.items()}
            ),
            jobs=MappingProxyType({k: _job_row(s) for k, s in data.jobs.items()}),
            job_queue_times=MappingProxyType({k: h.freeze() for k, h in data.job_queue.items()}),
            job_runs=MappingProxyType(dict(data.job_runs)),
            job_durations=MappingProxyType({k: h.freeze() for k, h in data.job_durations.items()}),
        )

    def collections(self) -> Mapping[CollectionKey, CollectionRow]:
        """An immutable copy of the collection health, per (project, collector)."""
        return MappingProxyType(
            {
                k: CollectionRow(c.up, c.last_success, c.errors, c.last_error)
                for k, c in self._collections.items()
            }
        )

    def snapshot(self, now: float) -> Snapshot:
        """An immutable copy of everything, at once. (The publisher builds the same from
        per-project snapshots of what changed: `take_changes`, `snapshot_project`.)"""
        return Snapshot.of(
            taken_at=now,
            watch_start=self.watch_start,
            parts={project: self.snapshot_project(project) for project in self._data},
            collections=self.collections(),
        )


def _recount_names(data: _ProjectData) -> None:
    """The names still held, after expiry, for the series limit."""
    data.names.clear()
    for key in (*data.workflows, *data.workflow_runs):
        data.names.add(tuple(key[:3]))
    for key in (*data.jobs, *data.job_runs):
        data.names.add(tuple(key[:4]))


def _drop_stale(series: dict[_K, Any], horizon: float) -> set[_K]:
    stale = {k for k, s in series.items() if s.last_seen < horizon}
    for key in stale:
        del series[key]
    return stale


def _drop_older(times: dict[_K, float], horizon: float) -> set[_K]:
    stale = {k for k, t in times.items() if t < horizon}
    for key in stale:
        del times[key]
    return stale


def _drop_prefixed(store: dict[Any, Any], prefixes: AbstractSet[tuple[str, ...]]) -> int:
    """Delete the keys that extend one of `prefixes` (all prefixes have one length)."""
    if not prefixes:
        return 0
    width = len(next(iter(prefixes)))
    doomed = [k for k in store if k[:width] in prefixes]
    for key in doomed:
        del store[key]
    return len(doomed)


def _workflow_row(s: _WorkflowSeries) -> WorkflowRow:
    in_progress: dict[str, int] = dict.fromkeys(WORKFLOW_IN_PROGRESS, 0)
    on_hold_since: float | None = None
    for status, created_at in s.in_progress.values():
        in_progress[status] = in_progress.get(status, 0) + 1
        if status == "on_hold" and (on_hold_since is None or created_at < on_hold_since):
            on_hold_since = created_at
    return WorkflowRow(
        status=s.latest.status if s.latest else None,
        last_run=s.latest.info() if s.latest else None,
        last_completed_status=s.last_completed.status if s.last_completed else None,
        last_completed_at=s.last_completed_at,
        last_completed_duration=s.last_completed_duration,
        consecutive_failures=s.streak(),
        in_progress=MappingProxyType(in_progress),
        on_hold_since=on_hold_since,
        failing_since=s.failing_since(),
        running_since=s.running_since(),
    )


def _job_row(s: _JobSeries) -> JobRow:
    return JobRow(
        last_run=s.latest.info() if s.latest else None,
        last_completed_status=s.last_completed.status if s.last_completed else None,
        last_completed_duration=s.last_completed_duration,
        last_tests=MappingProxyType(dict(s.last_tests)),
        failed_step=_failed_step(s),
    )


def _failed_step(s: _JobSeries) -> FailedStep | None:
    """The failed step, while the run it belongs to is the job's last completed run and failed."""
    step, run = s.failed_step, s.last_completed
    if step is None or run is None or run.run_id != step.job_id or run.status not in JOB_FAILURES:
        return None
    return FailedStep(
        job_number=step.job_number,
        url=run.url,
        step=step.step,
        step_id=step.step_id,
        index=step.index,
        allocation_id=step.allocation_id,
        output_url=step.output_url,
    )
