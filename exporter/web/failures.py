"""What the on-call page and `/api/v1/failures` show, read off a snapshot: red default branches
with their failing jobs and steps, runs waiting or running long, and collection health.

Only reads the snapshot; the log lines are added by the caller through a read-only `LogReader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.state.keys import CollectionKey
from exporter.state.snapshot import FailedStep, Snapshot
from exporter.state.statuses import FAILURES

# A run is "running long" past twice its workflow's last duration, and never before this.
RUNNING_LONG_FLOOR = 600.0
# Without a last duration to compare with, this long.
RUNNING_LONG_UNKNOWN = 3600.0


@dataclass(frozen=True, slots=True)
class FailingJob:
    job: str
    job_number: int
    step: str  # "" when API v1.1 could not tell
    url: str
    log_path: str | None  # the exporter's log tail endpoint, when it can serve one
    failed_step: FailedStep = field(repr=False)


@dataclass(frozen=True, slots=True)
class RedBranch:
    project: str
    project_name: str
    branch: str
    workflow: str
    since: float | None
    streak: int
    status: str
    workflow_url: str
    jobs: tuple[FailingJob, ...]


@dataclass(frozen=True, slots=True)
class Waiting:
    project: str
    project_name: str
    branch: str
    workflow: str
    state: str  # "on_hold" or "running_long"
    since: float
    url: str


@dataclass(frozen=True, slots=True)
class Health:
    key: str  # project slug, or org slug for Insights org rows
    name: str
    live: str | None  # "up", "down" or None (no such collector)
    insights: str | None
    last_success: float | None
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Failures:
    taken_at: float
    red: tuple[RedBranch, ...]
    waiting: tuple[Waiting, ...]
    projects: tuple[Health, ...]
    orgs: tuple[Health, ...]


def failures(snapshot: Snapshot, *, logs_enabled: bool) -> Failures:
    projects = snapshot.projects
    red: list[RedBranch] = []
    waiting: list[Waiting] = []
    for (project, branch, workflow), row in snapshot.workflows.items():
        info = projects.get(project)
        name = info.name if info is not None and info.name else project
        run = row.last_run
        url = run.url if run is not None else ""
        default = info is not None and info.default_branch == branch
        if default and row.last_completed_status in FAILURES:
            jobs = tuple(
                _failing_job(project, job, jrow.failed_step, logs_enabled)
                for (p, b, w, job), jrow in sorted(snapshot.jobs.items())
                if (p, b, w) == (project, branch, workflow) and jrow.failed_step is not None
            )
            red.append(
                RedBranch(project, name, branch, workflow, row.failing_since,
                          row.consecutive_failures, row.last_completed_status, url, jobs)
            )  # fmt: skip
        if row.on_hold_since is not None:
            waiting.append(
                Waiting(project, name, branch, workflow, "on_hold", row.on_hold_since, url)
            )
        if row.running_since is not None and _running_long(
            snapshot.taken_at - row.running_since, row.last_completed_duration
        ):
            waiting.append(
                Waiting(project, name, branch, workflow, "running_long", row.running_since, url)
            )
    red.sort(key=lambda r: (-(r.since or 0.0), r.project_name, r.workflow))
    waiting.sort(key=lambda w: (w.since, w.project_name, w.workflow))
    project_rows, org_rows = _health(snapshot)
    return Failures(snapshot.taken_at, tuple(red), tuple(waiting), project_rows, org_rows)


def _failing_job(project: str, job: str, step: FailedStep, logs_enabled: bool) -> FailingJob:
    loggable = logs_enabled and step.step_id is not None
    log_path = f"/failures/{project}/{step.job_number}/log" if loggable else None
    return FailingJob(job, step.job_number, step.step, step.url, log_path, step)


def _running_long(elapsed: float, last_duration: float | None) -> bool:
    if last_duration is None:
        return elapsed > RUNNING_LONG_UNKNOWN
    return elapsed > max(2 * last_duration, RUNNING_LONG_FLOOR)


def _health(snapshot: Snapshot) -> tuple[tuple[Health, ...], tuple[Health, ...]]:
    """One row per project with both collectors' state; org rows (Insights org summaries,
    keyed by an org slug of two segments) apart. Rows that are down come first."""
    keys = sorted({key for key, _ in snapshot.collections})
    rows = []
    for key in keys:
        live = snapshot.collections.get(CollectionKey(key, "live"))
        insights = snapshot.collections.get(CollectionKey(key, "insights"))
        present = [c for c in (live, insights) if c is not None]
        info = snapshot.projects.get(key)
        rows.append(
            Health(
                key=key,
                name=info.name if info is not None and info.name else key,
                live=None if live is None else "up" if live.up else "down",
                insights=None if insights is None else "up" if insights.up else "down",
                last_success=min(
                    (c.last_success for c in present if c.last_success is not None),
                    default=None,
                ),
                errors=tuple(c.last_error for c in present if c.last_error and not c.up),
            )
        )
    rows.sort(key=lambda h: ("down" not in (h.live, h.insights), h.name))
    orgs = tuple(h for h in rows if h.key.count("/") == 1)
    return tuple(h for h in rows if h.key.count("/") != 1), orgs


def as_json(view: Failures, logs: dict[str, list[str] | str]) -> dict[str, Any]:
    """The JSON of `/api/v1/failures`; `logs` maps a log path to its lines or to why not."""

    def job(j: FailingJob) -> dict[str, Any]:
        log = logs.get(j.log_path or "")
        return {
            "job": j.job,
            "job_number": j.job_number,
            "step": j.step,
            "step_index": j.failed_step.step_id,
            "container_index": j.failed_step.index,
            "url": j.url,
            "log_url": j.log_path,
            "log_lines": log if isinstance(log, list) else None,
            "log_error": log if isinstance(log, str) else None,
        }

    return {
        "taken_at": view.taken_at,
        "red_default_branches": [
            {
                "project": r.project,
                "project_name": r.project_name,
                "branch": r.branch,
                "workflow": r.workflow,
                "status": r.status,
                "since": r.since,
                "streak": r.streak,
                "workflow_url": r.workflow_url,
                "failing_jobs": [job(j) for j in r.jobs],
            }
            for r in view.red
        ],
        "waiting": [
            {
                "project": w.project,
                "project_name": w.project_name,
                "branch": w.branch,
                "workflow": w.workflow,
                "state": w.state,
                "since": w.since,
                "url": w.url,
            }
            for w in view.waiting
        ],
        "collection": {
            "projects": [_health_json(h) for h in view.projects],
            "orgs": [_health_json(h) for h in view.orgs],
        },
    }


def _health_json(h: Health) -> dict[str, Any]:
    return {
        "key": h.key,
        "name": h.name,
        "live": h.live,
        "insights": h.insights,
        "last_success": h.last_success,
        "errors": list(h.errors),
    }
