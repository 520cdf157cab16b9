"""Metric families of the live picture (pipelines, workflows, jobs) from a snapshot."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.snapshot import ProjectSnapshot
from exporter.state.statuses import (
    JOB_TERMINAL,
    TEST_RESULTS,
    WORKFLOW_STATUSES,
    WORKFLOW_TERMINAL,
)


def live_families(snapshot: ProjectSnapshot) -> Iterator[BuiltFamily]:
    """The families of one project's series, every family even when it has no sample, in
    the order they are served."""
    project_info = FamilyBuilder("circleci_project_info")
    default_branch = FamilyBuilder("circleci_project_default_branch_info")
    for row in snapshot.projects.values():
        project_info.add((row.project, row.organization, row.name, row.url), 1.0)
        default_branch.add((row.project, row.default_branch), 1.0)
    yield project_info.build()
    yield default_branch.build()

    yield FamilyBuilder.counters("circleci_pipelines_total", snapshot.pipelines)
    yield FamilyBuilder.counters("circleci_pipeline_errors_total", snapshot.pipeline_errors)
    yield FamilyBuilder.counters("circleci_workflow_runs_total", snapshot.workflow_runs)
    yield FamilyBuilder.histograms(
        "circleci_workflow_duration_seconds", snapshot.workflow_durations
    )
    yield from _workflow_gauges(snapshot)
    yield FamilyBuilder.counters("circleci_job_runs_total", snapshot.job_runs)
    yield FamilyBuilder.histograms("circleci_job_duration_seconds", snapshot.job_durations)
    yield FamilyBuilder.histograms("circleci_job_queued_seconds", snapshot.job_queue_times)
    yield from _job_gauges(snapshot)


def _workflow_gauges(snapshot: ProjectSnapshot) -> Iterator[BuiltFamily]:
    status = FamilyBuilder("circleci_workflow_status")
    last_status = FamilyBuilder("circleci_workflow_last_completed_status")
    last_at = FamilyBuilder("circleci_workflow_last_completed_timestamp_seconds")
    last_duration = FamilyBuilder("circleci_workflow_last_completed_duration_seconds")
    streak = FamilyBuilder("circleci_workflow_consecutive_failures")
    in_progress = FamilyBuilder("circleci_workflow_runs_in_progress")
    on_hold = FamilyBuilder("circleci_workflow_on_hold_since_timestamp_seconds")
    failing_since = FamilyBuilder("circleci_workflow_failing_since_timestamp_seconds")
    last_run = FamilyBuilder("circleci_workflow_last_run_info")
    for key, row in snapshot.workflows.items():
        if row.status is not None:
            status.add_state_set(key, WORKFLOW_STATUSES, row.status)
        if row.last_completed_status is not None:
            last_status.add_state_set(key, WORKFLOW_TERMINAL, row.last_completed_status)
            streak.add(key, float(row.consecutive_failures))
        if row.last_completed_at is not None:
            last_at.add(key, row.last_completed_at)
        if row.last_completed_duration is not None:
            last_duration.add(key, row.last_completed_duration)
        for state, count in row.in_progress.items():
            in_progress.add((*key, state), float(count))
        if row.on_hold_since is not None:
            on_hold.add(key, row.on_hold_since)
        if row.failing_since is not None:
            failing_since.add(key, row.failing_since)
        if row.last_run is not None:
            run = row.last_run
            last_run.add((*key, run.number, run.run_id, run.status, run.url), 1.0)
    for family in (status, last_status, last_at, last_duration, streak, in_progress, on_hold):
        yield family.build()
    yield failing_since.build()
    yield last_run.build()


def _job_gauges(snapshot: ProjectSnapshot) -> Iterator[BuiltFamily]:
    last_status = FamilyBuilder("circleci_job_last_completed_status")
    last_duration = FamilyBuilder("circleci_job_last_completed_duration_seconds")
    tests = FamilyBuilder("circleci_job_last_tests")
    last_run = FamilyBuilder("circleci_job_last_run_info")
    failed_step = FamilyBuilder("circleci_job_last_failed_step_info")
    for key, row in snapshot.jobs.items():
        if row.last_completed_status is not None:
            last_status.add_state_set(key, JOB_TERMINAL, row.last_completed_status)
        if row.last_completed_duration is not None:
            last_duration.add(key, row.last_completed_duration)
        if row.last_tests:
            _test_counts(tests, key, row.last_tests)
        if row.last_run is not None:
            run = row.last_run
            last_run.add((*key, run.number, run.status, run.url), 1.0)
        if row.failed_step is not None:
            failed_step.add((*key, row.failed_step.step, row.failed_step.url), 1.0)
    yield last_status.build()
    yield last_duration.build()
    yield tests.build()
    yield last_run.build()
    yield failed_step.build()


def _test_counts(family: FamilyBuilder, key: tuple[str, ...], counts: Mapping[str, int]) -> None:
    for result in (*TEST_RESULTS, *sorted(set(counts) - set(TEST_RESULTS))):
        family.add((*key, result), float(counts.get(result, 0)))
