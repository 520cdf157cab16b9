"""Insights numbers computed from the same history the live endpoints serve
(docs/circleci-api.md §Insights).

Choices where CircleCI documents no formula, so tests can recompute every number:
- A run belongs to a window when it has completed by now and was created inside the window.
- `failed_runs` counts failed, error and unauthorized runs; `success_rate` is
  successful / (total - canceled), 0.0 when nothing but cancellations ran (insights-glossary).
- Duration statistics are over successful runs (the UI labels them so); p95 is nearest-rank.
- MTTR: per branch, from the first failure's stop to the next success's stop, averaged.
- Trends are current/prior over two equal, adjacent windows: 1.0 = no change, -1.0 = infinite.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from exporter.simulator.model import Job, Project, Workflow
from exporter.simulator.world import World

WINDOW_DAYS = {
    "last-24-hours": 1,
    "last-7-days": 7,
    "last-30-days": 30,
    "last-60-days": 60,
    "last-90-days": 90,
}
DEFAULT_WINDOW = "last-90-days"
COMPLETED = frozenset({"success", "failed", "error", "canceled", "unauthorized"})
FAILED = frozenset({"failed", "error", "unauthorized"})
JOB_FAILED = frozenset({"failed", "infrastructure_fail", "timedout", "unauthorized"})
ALL_BRANCHES = None  # a branch scope of None means every branch


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def prior(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    @classmethod
    def named(cls, name: str, now: datetime) -> Window:
        return cls(now - timedelta(days=WINDOW_DAYS[name]), now)


def completed_runs(
    world: World,
    project: Project,
    window: Window,
    *,
    branch: str | None,
    name: str | None = None,
) -> list[Workflow]:
    """Completed workflow runs created inside `window`, oldest first (branch None = all)."""
    now = world.sync()
    timeline = world.timeline(project.slug)
    pipelines = timeline.pipelines if branch is None else timeline.by_branch.get(branch, [])
    first = bisect.bisect_left(pipelines, window.start, key=lambda p: p.created_at)
    runs = [
        workflow
        for pipeline in pipelines[first:]
        for workflow in pipeline.workflows
        if window.start <= workflow.created_at < window.end
        and workflow.is_completed_at(now)
        and workflow.final_status in COMPLETED
        and (name is None or workflow.name == name)
    ]
    runs.sort(key=lambda w: w.created_at)
    return runs


def success_rate(successful: int, total: int, canceled: int) -> float:
    counted = total - canceled
    return successful / counted if counted else 0.0


def duration_metrics(seconds: Sequence[float]) -> dict[str, int | float | None]:
    if not seconds:
        return dict.fromkeys(("min", "mean", "median", "p95", "max", "standard_deviation"))
    ordered = sorted(seconds)
    return {
        "min": round(ordered[0]),
        "mean": round(statistics.fmean(ordered)),
        "median": round(statistics.median(ordered)),
        "p95": round(p95(ordered)),
        "max": round(ordered[-1]),
        "standard_deviation": statistics.pstdev(ordered),
    }


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def recoveries(runs: Iterable[Workflow]) -> list[float]:
    """Seconds from the first failure of each red streak to the success that ended it."""
    failing_since: dict[tuple[str, str], datetime] = {}
    found = []
    for run in sorted(runs, key=lambda w: w.created_at):
        key = (run.name, run.branch)
        if run.final_status in FAILED:
            failing_since.setdefault(key, run.stopped_at)
        elif run.final_status == "success" and key in failing_since:
            found.append((run.stopped_at - failing_since.pop(key)).total_seconds())
    return found


def workflow_metrics(runs: Sequence[Workflow], window: Window) -> dict[str, object]:
    """The `metrics` object of getProjectWorkflowMetrics / getWorkflowSummary."""
    successful = [r for r in runs if r.final_status == "success"]
    canceled = sum(r.final_status == "canceled" for r in runs)
    recovered = recoveries(runs)
    return {
        "total_runs": len(runs),
        "successful_runs": len(successful),
        "failed_runs": sum(r.final_status in FAILED for r in runs),
        "success_rate": success_rate(len(successful), len(runs), canceled),
        "throughput": len(runs) / window.days,
        "mttr": round(statistics.fmean(recovered)) if recovered else None,
        "total_recoveries": len(recovered),
        "total_credits_used": sum(r.credits for r in runs),
        "duration_metrics": duration_metrics([r.duration_seconds for r in successful]),
    }


def completed_jobs(runs: Iterable[Workflow]) -> dict[str, list[Job]]:
    """Build jobs that ran to an end in these runs, by job name (approvals excluded)."""
    by_name: dict[str, list[Job]] = {}
    for run in runs:
        for job in run.jobs:
            if job.ran:
                by_name.setdefault(job.name, []).append(job)
    return by_name


def job_metrics(jobs: Sequence[Job], window: Window) -> dict[str, object]:
    successful = [j for j in jobs if j.final_status == "success"]
    canceled = sum(j.final_status == "canceled" for j in jobs)
    return {
        "total_runs": len(jobs),
        "successful_runs": len(successful),
        "failed_runs": sum(j.final_status in JOB_FAILED for j in jobs),
        "success_rate": success_rate(len(successful), len(jobs), canceled),
        "throughput": len(jobs) / window.days,
        "total_credits_used": sum(j.credits for j in jobs),
        "duration_metrics": duration_metrics([j.duration_seconds or 0.0 for j in successful]),
    }


def trend(current: float, prior: float) -> float:
    if prior == 0:
        return 1.0 if current == 0 else -1.0
    return current / prior


def trends(current: dict[str, float], prior: dict[str, float]) -> dict[str, float]:
    return {key: trend(value, prior[key]) for key, value in current.items()}


def totals(runs: Sequence[Workflow], window: Window) -> dict[str, float]:
    """The org/project summary metrics: runs, total duration, credits, success rate, throughput."""
    successful = sum(r.final_status == "success" for r in runs)
    canceled = sum(r.final_status == "canceled" for r in runs)
    return {
        "total_runs": len(runs),
        "total_duration_secs": round(sum(r.duration_seconds for r in runs)),
        "total_credits_used": sum(r.credits for r in runs),
        "success_rate": success_rate(successful, len(runs), canceled),
        "throughput": len(runs) / window.days,
    }


def workflow_row(runs: Sequence[Workflow]) -> dict[str, float]:
    """Per-workflow metrics of the project page summary."""
    successful = [r for r in runs if r.final_status == "success"]
    canceled = sum(r.final_status == "canceled" for r in runs)
    return {
        "total_credits_used": sum(r.credits for r in runs),
        "p95_duration_secs": p95([r.duration_seconds for r in successful]) if successful else 0.0,
        "total_runs": len(runs),
        "success_rate": success_rate(len(successful), len(runs), canceled),
    }


def summary_trend_basis(runs: Sequence[Workflow], window: Window) -> dict[str, float]:
    """The numbers whose current/prior ratios form getWorkflowSummary's `trends`."""
    successful = [r for r in runs if r.final_status == "success"]
    canceled = sum(r.final_status == "canceled" for r in runs)
    durations = [r.duration_seconds for r in successful]
    recovered = recoveries(runs)
    return {
        "total_runs": float(len(runs)),
        "failed_runs": float(sum(r.final_status in FAILED for r in runs)),
        "success_rate": success_rate(len(successful), len(runs), canceled),
        "p95_duration_secs": p95(durations) if durations else 0.0,
        "median_duration_secs": statistics.median(durations) if durations else 0.0,
        "total_credits_used": float(sum(r.credits for r in runs)),
        "mttr": statistics.fmean(recovered) if recovered else 0.0,
        "throughput": len(runs) / window.days,
    }
