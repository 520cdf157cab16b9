"""Test Insights: flaky tests and per-workflow test metrics, from the jobs' test results."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exporter.simulator.insights import p95
from exporter.simulator.model import Job, Pipeline, Workflow
from exporter.simulator.serialize import iso, job_test_results

TOP_TESTS = 10  # lists beyond this report only the count in `*_extra`
TEST_METRICS_RUNS = 10  # the 10 most recent runs (circleci-api.md §Insights)


@dataclass
class _Flake:
    test: dict[str, Any]
    job: Job
    times_flaked: int = 0
    time_wasted: float = 0.0


def flaky_tests(pipelines: Sequence[Pipeline], now: datetime) -> list[dict[str, Any]]:
    """Tests that both passed and failed on one commit: in a run and its rerun (snake_case keys).

    Only pipelines with a rerun can hold such a pair, so the scan stays cheap.
    """
    flakes: dict[tuple[str, str, str, str], _Flake] = {}
    for pipeline in pipelines:
        by_name: dict[str, list[Workflow]] = defaultdict(list)
        for workflow in pipeline.workflows:
            if workflow.is_completed_at(now):
                by_name[workflow.name].append(workflow)
        for runs in by_name.values():
            if len(runs) > 1:
                _collect_flakes(runs, now, flakes)
    items = []
    for (_, workflow_name, job_name, _), flake in flakes.items():
        workflow = flake.job.workflow
        items.append(
            {
                "test_name": flake.test["name"],
                "classname": flake.test["classname"],
                "file": flake.test["file"],
                "source": flake.test["source"],
                "job_name": job_name,
                "job_number": flake.job.number,
                "workflow_name": workflow_name,
                "workflow_id": workflow.id,
                "workflow_created_at": iso(workflow.created_at),
                "pipeline_number": workflow.pipeline.number,
                "times_flaked": flake.times_flaked,
                "time_wasted": round(flake.time_wasted),
            }
        )
    items.sort(key=lambda item: (-item["times_flaked"], item["test_name"]))
    return items


def _collect_flakes(
    runs: list[Workflow], now: datetime, flakes: dict[tuple[str, str, str, str], _Flake]
) -> None:
    outcomes: dict[tuple[str, str], list[tuple[Job, dict[str, Any]]]] = defaultdict(list)
    for run in runs:
        for job in run.jobs:
            for result in job_test_results(job, now):
                outcomes[(job.name, result["classname"] + "." + result["name"])].append(
                    (job, result)
                )
    for (job_name, test_key), seen in outcomes.items():
        results = {result["result"] for _, result in seen}
        if not {"success", "failure"} <= results:
            continue
        key = (runs[0].project.slug, runs[0].name, job_name, test_key)
        for job, result in seen:
            if result["result"] != "failure":
                continue
            flake = flakes.setdefault(key, _Flake(result, job))
            if (job.number or 0) > (flake.job.number or 0):
                flake.test, flake.job = result, job  # report the latest flake
            flake.times_flaked += 1
            flake.time_wasted += job.duration_seconds or 0.0


def kebab_case(body: Any) -> Any:
    """The spec's kebab-case spelling of the flaky-tests body (wrong: circleci-api.md §Insights)."""
    if isinstance(body, dict):
        return {key.replace("_", "-"): kebab_case(value) for key, value in body.items()}
    if isinstance(body, list):
        return [kebab_case(item) for item in body]
    return body


@dataclass
class _TestStats:
    job_name: str
    result: dict[str, Any]
    run_times: list[float] = field(default_factory=list)
    failed_runs: int = 0


def workflow_test_metrics(
    runs: Sequence[Workflow], flaky_names: set[str], now: datetime
) -> dict[str, Any]:
    """getProjectWorkflowTestMetrics over the 10 newest completed runs that reported tests."""
    recent = sorted(runs, key=lambda w: w.created_at, reverse=True)
    stats: dict[tuple[str, str], _TestStats] = {}
    test_runs: list[dict[str, Any]] = []
    for run in recent:
        counts = {"error": 0, "failure": 0, "skipped": 0, "success": 0, "total": 0}
        for job in run.jobs:
            for result in job_test_results(job, now):
                counts[result["result"]] += 1
                counts["total"] += 1
                key = (job.name, result["classname"] + "." + result["name"])
                entry = stats.setdefault(key, _TestStats(job.name, result))
                entry.run_times.append(result["run_time"])
                entry.failed_runs += result["result"] == "failure"
        if counts["total"]:
            executed = counts["total"] - counts["skipped"]
            test_runs.append(
                {
                    "pipeline_number": run.pipeline.number,
                    "workflow_id": run.id,
                    "success_rate": counts["success"] / executed if executed else 0.0,
                    "test_counts": counts,
                }
            )
        if len(test_runs) == TEST_METRICS_RUNS:
            break
    rows = [_test_row(entry, flaky_names) for entry in stats.values()]
    most_failed = sorted(
        (row for row in rows if row["failed_runs"]),
        key=lambda row: (-row["failed_runs"], row["test_name"]),
    )
    slowest = sorted(rows, key=lambda row: (-row["p95_duration"], row["test_name"]))
    return {
        "average_test_count": (
            round(sum(r["test_counts"]["total"] for r in test_runs) / len(test_runs))
            if test_runs
            else 0
        ),
        "total_test_runs": len(test_runs),
        "most_failed_tests": most_failed[:TOP_TESTS],
        "most_failed_tests_extra": max(0, len(most_failed) - TOP_TESTS),
        "slowest_tests": slowest[:TOP_TESTS],
        "slowest_tests_extra": max(0, len(slowest) - TOP_TESTS),
        "test_runs": test_runs,
    }


def _test_row(entry: _TestStats, flaky_names: set[str]) -> dict[str, Any]:
    result = entry.result
    return {
        "test_name": result["name"],
        "job_name": entry.job_name,
        "classname": result["classname"],
        "file": result["file"],
        "source": result["source"],
        "total_runs": len(entry.run_times),
        "failed_runs": entry.failed_runs,
        "flaky": result["name"] in flaky_names,
        "p95_duration": p95(entry.run_times),
    }
