"""The steps of a simulated job and their output, as API v1.1 and the output endpoints show them.

A job that ran has the steps a typical config has: "Spin up environment" (step 0, always a
success), environment variables, checkout, cache restore, the job's own command, and a cache save
when the command succeeded. A job that failed, timed out or hit an infrastructure failure has
exactly one failing step, its own command, whose log ends in a test failure or a compiler / lint
error (coloured with ANSI codes, as real logs are); nothing runs after it. With parallelism, the
command fails on one container only. Everything is derived from the job, so every request sees the
same steps and the same log (docs/circleci-api.md §v1.1 single job).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from exporter.simulator.model import Job, TestCase
from exporter.simulator.serialize import JSON, iso

SPIN_UP = "Spin up environment"
FAILING = frozenset({"failed", "timedout", "infrastructure_fail"})
FAILURES_AND_CANCEL = FAILING | {"canceled"}
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


@dataclass(frozen=True)
class Line:
    time: datetime
    type: str  # "out" or "err", as in the output_url JSON
    message: str


@dataclass(frozen=True)
class PlannedStep:
    step: int  # the action's `step` id
    name: str
    start: datetime
    end: datetime
    command: bool = False  # the job's own command: the only step that can fail


def command_name(job: Job) -> str:
    name = job.name
    if "test" in name:
        return f"Run {name.replace('-', ' ')}"
    if "lint" in name:
        return "Lint"
    if "deploy" in name:
        return "Deploy"
    return "Build"


def plan(job: Job) -> list[PlannedStep]:
    """The steps of a job that started; the last ends when the job stopped."""
    start = job.started_at
    if start is None or job.type != "build":
        return []
    total = (job.stopped_at - start).total_seconds()
    failed = job.final_status in FAILURES_AND_CANCEL
    shares: list[tuple[int, str, float, bool]] = [
        (0, SPIN_UP, 0.08, False),
        (99, "Preparing environment variables", 0.01, False),
        (101, "Checkout code", 0.04, False),
        (102, "Restoring cache", 0.05, False),
        (103, command_name(job), 0.78 if not failed else 0.82, True),
    ]
    if not failed:
        shares.append((104, "Saving cache", 0.04, False))
    steps = []
    at = start
    for i, (step, name, share, command) in enumerate(shares):
        end = job.stopped_at if i == len(shares) - 1 else at + timedelta(seconds=total * share)
        steps.append(PlannedStep(step, name, at, end, command))
        at = end
    return steps


def failing_index(job: Job) -> int:
    """The container the command fails on (0 without parallelism)."""
    return _digest(job.id, "container") % max(1, job.template.parallelism)


def action_status(job: Job, step: PlannedStep, index: int, now: datetime) -> str:
    if now < step.end:
        return "running"
    if step.command and job.final_status in FAILURES_AND_CANCEL:
        if job.final_status == "canceled":
            return "canceled"
        return job.final_status if index == failing_index(job) else "success"
    return "success"


def v1_steps(job: Job, now: datetime, output_base: str) -> list[JSON]:
    """`steps` of the v1.1 single job: the steps begun by `now`, one action per container."""
    parallel = job.template.parallelism
    steps: list[JSON] = []
    for step in plan(job):
        if now < step.start:
            break
        actions = []
        for index in range(parallel):
            status = action_status(job, step, index, now)
            done = status != "running"
            failed = status in FAILING
            actions.append(
                {
                    "index": index,
                    "step": step.step,
                    "name": step.name,
                    "type": "test",
                    "status": status,
                    "failed": True if failed else None,
                    "exit_code": _exit_code(status),
                    "canceled": True if status == "canceled" else None,
                    "timedout": True if status == "timedout" else None,
                    "infrastructure_fail": True if status == "infrastructure_fail" else None,
                    "parallel": parallel > 1,
                    "background": False,
                    "truncated": False,
                    "start_time": iso(step.start),
                    "end_time": iso(step.end) if done else None,
                    "run_time_millis": (
                        int((step.end - step.start).total_seconds() * 1000) if done else None
                    ),
                    "allocation_id": f"{job.id[:24]}-{index}-build/{step.step}",
                    "has_output": True,
                    "output_url": output_url(job, step.step, index, output_base),
                }
            )
        steps.append({"name": step.name, "actions": actions})
    return steps


def _exit_code(status: str) -> int | None:
    """A command that failed exited 1; timeouts, lost machines and cancels have no code."""
    return {"success": 0, "failed": 1}.get(status)


def output_url(job: Job, step: int, index: int, base: str) -> str:
    """Where the simulator serves one action's output, shaped like the pre-signed S3 URL
    CircleCI hands out (fetched without the token)."""
    project = job.workflow.project
    signature = hashlib.sha256(f"{job.id}/{step}/{index}".encode()).hexdigest()
    return (
        f"{base.rstrip('/')}/action-output/{project.slug}/{job.number}/output/{index}/{step}"
        f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=431999&X-Amz-Signature={signature}"
    )


def find_step(job: Job, step_id: int) -> PlannedStep | None:
    return next((s for s in plan(job) if s.step == step_id), None)


def output(job: Job, step: PlannedStep, index: int, now: datetime) -> list[Line]:
    """The output of one action, as far as it got by `now`."""
    if now < step.start:
        return []
    status = action_status(job, step, index, now)
    lines = _log(job, step, index, status)
    span = (step.end - step.start).total_seconds()
    timed = []
    for i, (kind, message) in enumerate(lines):
        at = step.start + timedelta(seconds=span * (i + 1) / (len(lines) + 1))
        if at <= now:
            timed.append(Line(at, kind, message))
    return timed


def _log(job: Job, step: PlannedStep, index: int, status: str) -> list[tuple[str, str]]:
    if step.name == SPIN_UP:
        image = "cimg/python:3.12" if job.template.executor == "docker" else "ubuntu-2204:current"
        return [
            ("out", f"Starting container {image}\r\n"),
            ("out", f"  using image {image}@sha256:{_hex(job.id, 'image')[:64]}\r\n"),
            ("out", f"Resource class: {job.template.resource_class}\r\n"),
            ("out", "Time to spin up environment: 4.2s\r\n"),
        ]
    if not step.command:
        return [("out", f"{step.name}: done\r\n")]
    if status not in FAILING:
        return [*_prelude(job, index), ("out", "Done.\r\n")]
    if status == "timedout":
        tail = [("err", "Too long with no output (exceeded 10m0s): context deadline exceeded\r\n")]
    elif status == "infrastructure_fail":
        tail = [("err", "Received 'killed' signal: the machine running this job was lost\r\n")]
    elif job.failed_tests and job.template.tests:
        tail = _test_failure(job, [job.template.tests[i] for i in job.failed_tests])
    else:
        tail = _build_error(job)
    return [*_prelude(job, index), *tail, ("out", "\r\nExited with code exit status 1\r\n")]


def _prelude(job: Job, index: int) -> list[tuple[str, str]]:
    name = job.name
    if job.template.tests:
        count = len(job.template.tests)
        return [
            ("out", "#!/bin/bash -eo pipefail\r\n"),
            ("out", f"pytest -n 4 --junitxml=test-results/{name}.xml\r\n"),
            ("out", f"{BOLD}============ test session starts ============{RESET}\r\n"),
            ("out", f"collected {count} items (container {index})\r\n"),
            *[("out", f"{t.file}::{t.name} PASSED\r\n") for t in job.template.tests[:8]],
        ]
    if "lint" in name:
        return [("out", "#!/bin/bash -eo pipefail\r\nruff check . && mypy src\r\n")]
    if "deploy" in name:
        return [("out", "#!/bin/bash -eo pipefail\r\n./scripts/deploy.sh production\r\n")]
    return [
        ("out", "#!/bin/bash -eo pipefail\r\ngo build ./...\r\n"),
        ("out", "go: downloading github.com/prometheus/client_golang v1.20.5\r\n"),
    ]


def _test_failure(job: Job, failed: list[TestCase]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for test in failed:
        lines += [
            ("out", f"{RED}{BOLD}_____ {test.name} _____{RESET}\r\n"),
            ("out", f"{test.file}:{40 + _digest(test.name, 'line') % 200}: in {test.name}\r\n"),
            ("out", "    assert response.status_code == 200\r\n"),
            ("err", f"{RED}E   AssertionError: assert 503 == 200{RESET}\r\n"),
        ]
    passed = len(job.template.tests) - len(failed)
    for test in failed:
        lines.append(("out", f"{RED}FAILED {test.file}::{test.name} - AssertionError{RESET}\r\n"))
    summary = f"===== {len(failed)} failed, {passed} passed in 41.3s ====="
    lines.append(("out", f"{RED}{summary}{RESET}\r\n"))
    return lines


def _build_error(job: Job) -> list[tuple[str, str]]:
    line = 10 + _digest(job.id, "line") % 300
    if "lint" in job.name:
        return [
            ("err", f"src/app/views.py:{line}:1: F401 `os` imported but unused\r\n"),
            ("err", f"{RED}Found 1 error.{RESET}\r\n"),
        ]
    if "deploy" in job.name:
        return [("err", f"{RED}Error: rollout status: deadline exceeded (line {line}){RESET}\r\n")]
    return [
        ("err", "# example.com/service/internal/server\r\n"),
        ("err", f"{RED}internal/server/handler.go:{line}:14: undefined: requestCtx{RESET}\r\n"),
    ]


def _digest(value: str, purpose: str) -> int:
    return int(_hex(value, purpose)[:8], 16)


def _hex(value: str, purpose: str) -> str:
    return hashlib.sha256(f"{purpose}:{value}".encode()).hexdigest()
