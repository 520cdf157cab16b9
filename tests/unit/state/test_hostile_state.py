"""The state against hostile input: one rule for a finished run, runs CircleCI forgot, and a
series limit per project (issue 12, items 3, 7 and 11)."""

from __future__ import annotations

from exporter.state import Buckets, State
from exporter.state.statuses import job_finished, workflow_finished
from exporter.state.updates import JobUpdate, WorkflowUpdate

P, B = "gh/acme/api", "main"
START = 10_000.0


def _state(**limits: object) -> State:
    buckets = Buckets((10.0,), (10.0,), (1.0,))
    return State(watch_start=START, buckets=buckets, series_ttl=86400.0, **limits)  # type: ignore[arg-type]


def _workflow(run_id: str, status: str, stopped: float | None, name: str = "build",
              project: str = P) -> WorkflowUpdate:  # fmt: skip
    return WorkflowUpdate(project, B, name, run_id, 1, status, START + 1, stopped, "u")


def _job(job_id: str, status: str, stopped: float | None, name: str = "test") -> JobUpdate:
    return JobUpdate(P, B, "build", "w1", name, job_id, 7, status, START + 1, START + 1,
                     stopped, "u")  # fmt: skip


def test_one_rule_a_stopped_run_has_finished_whatever_its_status() -> None:
    assert workflow_finished("exploded", START) and job_finished("exploded", START)
    assert workflow_finished("success", None) and job_finished("canceled", None)
    assert not workflow_finished("running", None) and not job_finished("queued", None)


def test_an_unknown_status_with_stopped_at_is_a_completed_run() -> None:
    state = _state()
    state.apply(_workflow("w1", "exploded", START + 60))
    state.apply(_job("j1", "exploded", START + 30))
    snapshot = state.snapshot(START + 100)
    row = snapshot.workflows[(P, B, "build")]
    assert row.last_completed_status == "exploded"
    assert all(count == 0 for count in row.in_progress.values())
    assert dict(snapshot.workflow_runs) == {(P, B, "build", "exploded"): 1}
    assert snapshot.jobs[(P, B, "build", "test")].last_completed_status == "exploded"
    assert dict(snapshot.job_runs) == {(P, B, "build", "test", "exploded"): 1}


def test_a_forgotten_run_stops_counting_as_in_progress() -> None:
    state = _state()
    state.apply(_workflow("w1", "running", None))
    assert state.snapshot(START + 10).workflows[(P, B, "build")].in_progress["running"] == 1
    state.forget_unfinished(["w1"])
    assert state.snapshot(START + 10).workflows[(P, B, "build")].in_progress["running"] == 0


def test_a_project_past_its_series_limit_drops_new_names_and_says_so() -> None:
    hits: list[str] = []
    state = _state(max_series_per_project=3, on_series_limit=hits.append)
    for n in range(5):
        state.apply(_workflow(f"w{n}", "success", START + 60, name=f"build-{n}"))
    state.apply(_workflow("other", "success", START + 60, name="x", project="gh/acme/web"))
    state.apply(_workflow("w0-again", "failed", START + 90, name="build-0"))
    snapshot = state.snapshot(START + 100)
    assert sorted(k[2] for k in snapshot.workflows if k[0] == P) == [
        "build-0",
        "build-1",
        "build-2",
    ]
    assert (P, B, "build-0", "failed") in snapshot.workflow_runs  # known names still update
    assert ("gh/acme/web", B, "x") in snapshot.workflows
    assert hits == [P, P]


def test_expired_names_free_their_place_under_the_limit() -> None:
    state = _state(max_series_per_project=1)
    state.apply(_workflow("w1", "success", START + 60, name="old"))
    state.expire(START + 60 + 2 * 86400.0)
    state.apply(_workflow("w2", "success", START + 3 * 86400.0, name="new"))
    assert [k[2] for k in state.snapshot(START + 3 * 86400.0).workflows] == ["new"]
