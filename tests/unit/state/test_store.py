"""The state machine: settled and unsettled runs, streaks, state sets, folding, TTL."""

from __future__ import annotations

import pytest

from exporter.state import Buckets, State, updates
from exporter.state.keys import CollectionKey, JobKey, JobRunKey, WorkflowKey, WorkflowRunKey
from exporter.state.updates import (
    JobDetailsUpdate,
    JobUpdate,
    PipelineUpdate,
    ProjectUpdate,
    WorkflowUpdate,
)

P, B, W = "gh/acme/api", "main", "build"
START = 10_000.0
DAY = 86400.0


@pytest.fixture
def state() -> State:
    buckets = Buckets((10.0, 60.0, 300.0), (10.0, 60.0), (1.0, 5.0))
    return State(watch_start=START, buckets=buckets, series_ttl=7 * DAY)


def wf(
    run_id: str,
    status: str,
    created: float,
    stopped: float | None = None,
    *,
    branch: str = B,
    folded: bool = False,
    number: int = 1,
) -> WorkflowUpdate:
    return WorkflowUpdate(
        P, branch, W, run_id, number, status, created, stopped, f"url/{run_id}", folded
    )


def job(
    job_id: str,
    status: str,
    started: float | None,
    stopped: float | None,
    *,
    name: str = "test",
    number: int | None = 7,
) -> JobUpdate:
    created = started if started is not None else START
    return JobUpdate(
        P, B, W, "w1", name, job_id, number, status, created, started, stopped, f"u/{job_id}"
    )


def test_completed_run_is_counted_once_whatever_delivers_it(state: State) -> None:
    for _ in range(3):
        state.apply(wf("w1", "success", START + 10, START + 70))
    snap = state.snapshot(START + 100)
    assert snap.workflow_runs == {(P, B, W, "success"): 1}
    hist = snap.workflow_durations[(P, B, W, "success")]
    assert hist.count == 1
    assert hist.total == 60.0
    assert hist.cumulative() == [(10.0, 0), (60.0, 1), (300.0, 1), (float("inf"), 1)]


def test_history_sets_gauges_but_is_never_counted(state: State) -> None:
    state.apply(wf("old", "failed", START - 500, START - 400))
    snap = state.snapshot(START)
    assert snap.workflow_runs == {}
    assert snap.workflow_durations == {}
    row = snap.workflows[(P, B, W)]
    assert row.last_completed_status == "failed"
    assert row.last_completed_at == START - 400
    assert row.consecutive_failures == 1


def test_run_in_progress_at_start_is_counted_when_it_completes(state: State) -> None:
    state.apply(wf("w1", "running", START - 100))
    assert state.snapshot(START).workflows[(P, B, W)].in_progress["running"] == 1
    state.apply(wf("w1", "success", START - 100, START + 50))
    snap = state.snapshot(START + 60)
    assert snap.workflow_runs == {(P, B, W, "success"): 1}
    assert snap.workflows[(P, B, W)].in_progress["running"] == 0


def test_unsettled_run_moves_status_and_in_progress_gauges(state: State) -> None:
    state.apply(wf("w1", "success", START + 1, START + 50, number=1))
    state.apply(wf("w2", "on_hold", START + 100, number=2))
    row = state.snapshot(START + 200).workflows[(P, B, W)]
    assert row.status == "on_hold"
    assert row.last_completed_status == "success"
    assert row.in_progress == {"running": 0, "failing": 0, "on_hold": 1}
    assert row.on_hold_since == START + 100
    assert row.last_run is not None
    assert (row.last_run.number, row.last_run.run_id, row.last_run.url) == ("2", "w2", "url/w2")


def test_older_update_never_overwrites_newer_state(state: State) -> None:
    state.apply(wf("w2", "success", START + 200, START + 300, number=2))
    state.apply(wf("w1", "failed", START + 100, START + 400, number=1))  # older run, late
    state.apply(wf("w2", "running", START + 200, number=2))  # stale view of w2
    row = state.snapshot(START + 500).workflows[(P, B, W)]
    assert row.status == "success"
    assert row.last_completed_status == "success"
    assert row.consecutive_failures == 0
    assert row.in_progress["running"] == 0
    snap = state.snapshot(START + 500)
    assert snap.workflow_runs == {(P, B, W, "success"): 1, (P, B, W, "failed"): 1}


@pytest.mark.parametrize(
    ("statuses", "streak"),
    [
        (["success", "failed", "failed"], 2),
        (["failed", "error", "failed"], 3),
        (["failed", "failed", "success"], 0),
        (["failed", "canceled"], 0),
        (["failed", "canceled", "error"], 1),
    ],
)
def test_failure_streak_counts_failed_and_error_newest_first(
    state: State, statuses: list[str], streak: int
) -> None:
    for i, status in enumerate(statuses):
        state.apply(wf(f"w{i}", status, START + i * 100, START + i * 100 + 50))
    assert state.snapshot(START + 1000).workflows[(P, B, W)].consecutive_failures == streak


def test_streak_is_right_when_runs_arrive_out_of_order(state: State) -> None:
    runs = [("w0", "success", 0), ("w1", "failed", 100), ("w2", "failed", 200)]
    for run_id, status, t in reversed(runs):
        state.apply(wf(run_id, status, START + t, START + t + 50))
    assert state.snapshot(START + 1000).workflows[(P, B, W)].consecutive_failures == 2
    state.apply(wf("w3", "success", START + 300, START + 350))
    assert state.snapshot(START + 1000).workflows[(P, B, W)].consecutive_failures == 0


def test_folded_branch_counts_but_sets_no_gauges(state: State) -> None:
    state.apply(wf("w1", "failed", START + 1, START + 31, branch="other", folded=True))
    state.apply(PipelineUpdate(P, "other", "p1", 1, "webhook", START + 1, (), True))
    snap = state.snapshot(START + 100)
    assert snap.workflow_runs == {(P, "other", W, "failed"): 1}
    assert snap.pipelines == {(P, "other", "webhook"): 1}
    assert snap.workflows == {}


def test_pipelines_and_config_errors_counted_once_after_start(state: State) -> None:
    state.apply(PipelineUpdate(P, B, "old", 1, "webhook", START - 10))
    for _ in range(2):
        state.apply(PipelineUpdate(P, B, "p2", 2, "api", START + 10, ("config",)))
    snap = state.snapshot(START + 20)
    assert snap.pipelines == {(P, B, "api"): 1}
    assert snap.pipeline_errors == {(P, B, "config"): 1}


def test_jobs_counted_once_with_duration_queue_time_and_tests(state: State) -> None:
    done = job("j1", "success", START + 20, START + 50)
    state.apply(job("j1", "running", START + 20, None))
    state.apply(done)
    state.apply(done)
    details = JobDetailsUpdate(P, B, W, "test", "j1", queued_at=START + 17, started_at=START + 20)
    state.apply(details)
    state.apply(details)
    state.apply(
        updates.TestResultsUpdate(P, B, W, "test", "j1", START + 20, {"success": 5, "skipped": 1})
    )
    snap = state.snapshot(START + 100)
    assert snap.job_runs == {(P, B, W, "test", "success"): 1}
    assert snap.job_durations[(P, B, W, "test", "success")].total == 30.0
    queue = snap.job_queue_times[(P, B, W, "test")]
    assert (queue.count, queue.total) == (1, 3.0)
    row = snap.jobs[(P, B, W, "test")]
    assert row.last_completed_status == "success"
    assert row.last_completed_duration == 30.0
    assert dict(row.last_tests) == {"success": 5, "skipped": 1}
    assert row.last_run is not None
    assert (row.last_run.number, row.last_run.status) == ("7", "success")


def test_queue_time_of_a_history_job_is_not_observed(state: State) -> None:
    state.apply(job("j0", "success", START - 100, START - 50))
    state.apply(JobDetailsUpdate(P, B, W, "test", "j0", START - 110, START - 100))
    assert state.snapshot(START).job_queue_times == {}


def test_job_that_never_started_counts_without_duration(state: State) -> None:
    state.apply(job("j1", "canceled", None, None, number=None))
    snap = state.snapshot(START + 10)
    assert snap.job_runs == {(P, B, W, "test", "canceled"): 1}
    assert snap.job_durations == {}
    row = snap.jobs[(P, B, W, "test")]
    assert row.last_run is not None
    assert row.last_run.number == ""


def test_older_test_results_do_not_replace_newer_ones(state: State) -> None:
    state.apply(job("j2", "success", START + 200, START + 260))
    state.apply(updates.TestResultsUpdate(P, B, W, "test", "j2", START + 200, {"success": 9}))
    state.apply(updates.TestResultsUpdate(P, B, W, "test", "j1", START + 100, {"failure": 1}))
    assert dict(state.snapshot(START + 300).jobs[(P, B, W, "test")].last_tests) == {"success": 9}


def test_stale_series_are_removed_after_ttl(state: State) -> None:
    state.apply(ProjectUpdate(P, "api", "acme", B, "https://app.circleci.com/pipelines/x"))
    state.apply(PipelineUpdate(P, "old-branch", "p1", 1, "webhook", START + 1))
    state.apply(wf("w1", "success", START + 1, START + 61, branch="old-branch"))
    state.apply(wf("w2", "success", START + 5 * DAY, START + 5 * DAY + 60))
    expired = state.expire(START + 8 * DAY)
    snap = state.snapshot(START + 8 * DAY)
    assert expired.workflows == {(P, "old-branch", W)} and expired.keys > 1
    assert set(snap.workflows) == {(P, B, W)}
    assert (P, "old-branch", W, "success") not in snap.workflow_runs
    assert (P, B, W, "success") in snap.workflow_runs
    assert snap.pipelines == {}
    assert P in snap.projects


def test_collection_health(state: State) -> None:
    state.record_success(P, "live", START + 1)
    state.record_failure(P, "live", "getProjectBySlug: HTTP 500")
    row = state.snapshot(START + 2).collections[(P, "live")]
    assert (row.up, row.last_success, row.errors) == (False, START + 1, 1)
    assert row.last_error == "getProjectBySlug: HTTP 500"


def test_snapshot_keys_name_their_labels(state: State) -> None:
    state.apply(wf("w1", "failed", START + 10, START + 70))
    state.apply(job("j1", "failed", START + 11, START + 60))
    state.record_success(P, "live", START + 80)
    snap = state.snapshot(START + 100)
    [workflow] = snap.workflows
    assert isinstance(workflow, WorkflowKey)
    assert (workflow.project, workflow.branch, workflow.workflow) == (P, B, W)
    [run] = snap.workflow_runs
    assert isinstance(run, WorkflowRunKey) and run.status == "failed"
    [job_key] = snap.jobs
    assert isinstance(job_key, JobKey) and job_key.job == "test"
    [job_run] = snap.job_runs
    assert isinstance(job_run, JobRunKey) and (job_run.job, job_run.status) == ("test", "failed")
    [collection] = snap.collections
    assert isinstance(collection, CollectionKey) and collection.collector == "live"
