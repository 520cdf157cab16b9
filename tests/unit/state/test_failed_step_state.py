"""A job's failed step shows while the run it belongs to is the job's last completed run and
failed; a newer success (or another run's failure without a step read yet) removes it."""

from __future__ import annotations

import pytest

from exporter.state import Buckets, State
from exporter.state.updates import FailedStepUpdate, JobUpdate, WorkflowUpdate

P, B, W, J = "gh/acme/api", "main", "build", "test"
START = 10_000.0


@pytest.fixture
def state() -> State:
    return State(watch_start=START, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=1e6)


def run(job_id: str, status: str, at: float, number: int) -> JobUpdate:
    # A run that is still running has no stopped_at (a stopped run has finished).
    stopped = None if status == "running" else at + 60
    return JobUpdate(P, B, W, "w", J, job_id, number, status, at, at, stopped, f"u/{job_id}")


def step(job_id: str, number: int, name: str = "Run tests") -> FailedStepUpdate:
    return FailedStepUpdate(P, B, W, J, job_id, number, name, 103, 0, "alloc", "https://s3/x")


def failed_step(state: State) -> object:
    return state.snapshot(START).jobs[(P, B, W, J)].failed_step


def test_the_step_of_the_last_failed_run_is_shown_with_its_job_link(state: State) -> None:
    state.apply(run("j1", "failed", START, 1))
    assert failed_step(state) is None  # not read yet
    state.apply(step("j1", 1))
    shown = state.snapshot(START).jobs[(P, B, W, J)].failed_step
    assert shown is not None
    assert (shown.step, shown.url, shown.job_number, shown.step_id) == ("Run tests", "u/j1", 1, 103)


def test_a_newer_success_removes_it(state: State) -> None:
    state.apply(run("j1", "failed", START, 1))
    state.apply(step("j1", 1))
    state.apply(run("j2", "running", START + 100, 2))
    assert failed_step(state) is not None  # the last completed run is still the failure
    state.apply(run("j2", "success", START + 100, 2))
    assert failed_step(state) is None


def test_a_newer_failure_shows_only_its_own_step(state: State) -> None:
    state.apply(run("j1", "failed", START, 1))
    state.apply(step("j1", 1, "Build"))
    state.apply(run("j2", "timedout", START + 100, 2))
    assert failed_step(state) is None
    state.apply(step("j2", 2, "Deploy"))
    shown = state.snapshot(START).jobs[(P, B, W, J)].failed_step
    assert shown is not None and shown.step == "Deploy" and shown.url == "u/j2"
    # A late answer for the older run does not replace it.
    state.apply(step("j1", 1, "Build"))
    assert failed_step(state) == shown


def test_failing_since_is_the_end_of_the_first_failed_run_of_the_streak(state: State) -> None:
    def workflow(run_id: str, status: str, at: float) -> WorkflowUpdate:
        return WorkflowUpdate(P, B, W, run_id, 1, status, at, at + 50, f"u/{run_id}")

    state.apply(workflow("a", "success", START))
    assert state.snapshot(START).workflows[(P, B, W)].failing_since is None
    state.apply(workflow("b", "failed", START + 100))
    state.apply(workflow("c", "error", START + 200))
    assert state.snapshot(START).workflows[(P, B, W)].failing_since == START + 150
    state.apply(workflow("d", "success", START + 300))
    assert state.snapshot(START).workflows[(P, B, W)].failing_since is None
