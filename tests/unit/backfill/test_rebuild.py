"""Runs → samples: the counting rule, the step grid and the gauges follow the live exporter."""

from __future__ import annotations

import re

from exporter.backfill import rebuild
from exporter.backfill.rebuild import Grid, Run

KEY = ("gh/acme/api", "main", "build")
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+) (\S+)$")


def collect(write: object = None) -> tuple[dict[str, list[str]], rebuild.Sink]:
    lines: dict[str, list[str]] = {}

    def sink(family: str, chunk: list[str]) -> None:
        lines.setdefault(family, []).extend(chunk)

    return lines, sink


def series(lines: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Samples per series (name and labels), in file order."""
    found: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        match = _SAMPLE.match(line.rstrip("\n"))
        assert match, line
        found.setdefault(f"{match[1]}{{{match[2]}}}", []).append((float(match[4]), float(match[3])))
    return found


def test_grid_steps_then_closes_just_before_the_end() -> None:
    assert Grid(0.0, 1000.0, 300.0).times() == [0.0, 300.0, 600.0, 900.0, 999.999]
    assert Grid(0.0, 900.0, 300.0).times() == [0.0, 300.0, 600.0, 899.999]


def test_counted_keeps_runs_completed_inside_once_in_completion_order() -> None:
    runs = [
        Run("b", "success", 100.0, 500.0, 400.0),
        Run("a", "failed", 50.0, 200.0, 150.0),
        Run("a", "failed", 50.0, 200.0, 150.0),  # the same run on two pages
        Run("early", "success", 0.0, 99.0, 99.0),  # completed before the start
        Run("late", "success", 900.0, 1000.0, 100.0),  # at the end: the live exporter counts it
    ]
    kept = rebuild.counted(runs, Grid(100.0, 1000.0, 300.0))
    assert [r.run_id for r in kept] == ["a", "b"]


def test_counters_and_histograms_are_cumulative_from_zero() -> None:
    runs = [Run("a", "success", 0.0, 150.0, 100.0), Run("b", "success", 0.0, 450.0, 700.0),
            Run("c", "failed", 0.0, 460.0, 30.0)]  # fmt: skip
    lines, sink = collect()
    rebuild.counters_and_histograms(
        "circleci_workflow_runs_total", "circleci_workflow_duration_seconds", KEY, runs,
        (60.0, 600.0), Grid(0.0, 1000.0, 300.0), {"job": "circleci"}, sink,
    )  # fmt: skip
    found = series(lines["circleci_workflow_runs_total"])
    success = 'circleci_workflow_runs_total{project="gh/acme/api",branch="main",workflow="build",status="success",job="circleci"}'  # noqa: E501
    assert found[success] == [(0.0, 0.0), (300.0, 1.0), (600.0, 2.0), (900.0, 2.0), (999.999, 2.0)]
    histogram = series(lines["circleci_workflow_duration_seconds"])
    bucket = 'circleci_workflow_duration_seconds_bucket{project="gh/acme/api",branch="main",workflow="build",status="success",job="circleci",le="600.0"}'  # noqa: E501
    assert [v for _, v in histogram[bucket]] == [0.0, 1.0, 1.0, 1.0, 1.0]
    total = 'circleci_workflow_duration_seconds_sum{project="gh/acme/api",branch="main",workflow="build",status="success",job="circleci"}'  # noqa: E501
    assert histogram[total][-1] == (999.999, 800.0)


def test_a_target_label_that_clashes_gives_way_to_the_family_label_as_honor_labels_does() -> None:
    lines, sink = collect()
    rebuild.counters_and_histograms(
        "circleci_job_runs_total", "circleci_job_duration_seconds", (*KEY, "unit"),
        [Run("a", "success", 0.0, 10.0, 5.0)], (60.0,), Grid(0.0, 100.0, 50.0),
        {"job": "circleci", "instance": "exporter:10027"}, sink,
    )  # fmt: skip
    first = lines["circleci_job_runs_total"][0]
    assert 'job="unit",status="success",instance="exporter:10027"' in first
    assert "exported_job" not in first and 'job="circleci"' not in first


def test_gauges_follow_the_live_state_even_when_runs_finish_out_of_order() -> None:
    # Live orders runs by creation: the streak counts the newest created runs that failed.
    runs = [
        Run("1", "success", 0.0, 100.0, 100.0),
        Run("3", "failed", 200.0, 250.0, 50.0),
        Run("2", "failed", 150.0, 400.0, 250.0),  # created before 3, finished after it
        Run("4", "success", 500.0, 700.0, 200.0),
    ]
    lines, sink = collect()
    rebuild.workflow_gauges(KEY, runs, Grid(0.0, 1000.0, 100.0), {}, sink)
    streak = series(lines["circleci_workflow_consecutive_failures"])
    (values,) = streak.values()
    assert values[0] == (100.0, 0.0)  # from the first completed run on
    assert dict(values)[300.0] == 1.0
    assert dict(values)[400.0] == 2.0
    assert dict(values)[700.0] == 0.0
    status = series(lines["circleci_workflow_last_completed_status"])
    failed = 'circleci_workflow_last_completed_status{project="gh/acme/api",branch="main",workflow="build",status="failed"}'  # noqa: E501
    # At 400 run 2 finished, but run 3 (created later) stays the last completed run: failed.
    assert dict(status[failed])[400.0] == 1.0
    assert dict(status[failed])[700.0] == 0.0
    assert len(status) == 6  # one series per terminal status
