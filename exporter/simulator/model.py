"""The objects of the simulated organisation, each with its whole planned timeline.

A run's status is never stored: `status_at(t)` reads it off the plan, so every request, whenever it
comes, sees the same history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

JobType = Literal["build", "approval"]

# Statuses after which a workflow never changes again (docs/circleci-api.md §Workflows).
WORKFLOW_TERMINAL = frozenset({"success", "failed", "error", "canceled", "unauthorized", "not_run"})


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    slug: str  # v2 org slug: gh/<org>, bb/<org> or circleci/<org-id>
    vcs_type: str  # as in /me/collaborations "vcs-type": github, bitbucket or circleci


@dataclass(frozen=True)
class TestCase:
    name: str
    classname: str
    file: str
    mean_run_time: float  # seconds
    flake_rate: float  # chance of failing on any run although nothing is wrong
    skipped: bool = False


@dataclass(frozen=True)
class JobTemplate:
    name: str
    type: JobType
    requires: tuple[str, ...]
    mean_seconds: float  # world seconds; for approvals the mean wait before someone approves
    fail_rate: float = 0.0  # failures not caused by tests (lint errors, infrastructure)
    tests: tuple[TestCase, ...] = ()
    parallelism: int = 1
    resource_class: str = "medium"
    executor: str = "docker"


@dataclass(frozen=True)
class WorkflowTemplate:
    name: str
    jobs: tuple[JobTemplate, ...]  # in dependency order
    runs_on: Literal["push", "default-branch-push", "schedule"]


@dataclass(frozen=True)
class Schedule:
    """A schedule trigger (exporter/simulator/schedules.py says when it fires)."""

    id: str
    name: str
    description: str
    branch: str
    per_hour: int
    hours_of_day: tuple[int, ...]  # UTC
    days_of_week: tuple[str, ...]  # MON..SUN; empty: every day
    workflows: tuple[str, ...]  # the workflows its pipelines run
    created_at: datetime
    actor_id: str
    actor_login: str
    # Silently stops firing `SimConfig.schedule_stop_after` into the simulation, as a schedule
    # does whose actor lost access: the demo's missed run.
    stops: bool = False


@dataclass(frozen=True)
class Project:
    index: int
    id: str
    slug: str  # short v2 form: gh/..., bb/... or circleci/<org-id>/<project-id>
    name: str
    organization: Organization
    provider: Literal["GitHub", "Bitbucket", "CircleCI"]
    vcs_url: str
    default_branch: str
    feature_branches: tuple[str, ...]
    workflows: tuple[WorkflowTemplate, ...]
    schedules: tuple[Schedule, ...]
    mean_arrival_seconds: float  # world seconds between pushes

    @property
    def webhook_slug(self) -> str:
        """Webhook payloads spell the VCS out (`github/circleci/webhook-service`,
        docs/circleci-api.md §Slugs)."""
        vcs, rest = self.slug.split("/", 1)
        return f"{ {'gh': 'github', 'bb': 'bitbucket'}.get(vcs, vcs) }/{rest}"

    @property
    def app_url(self) -> str:
        return f"https://app.circleci.com/pipelines/{self.webhook_slug}"

    @property
    def legacy_url(self) -> str:
        """Base of the legacy job links (`web_url`, v1.1 `build_url`), see
        docs/circleci-api.md §Web app links."""
        return f"https://circleci.com/{self.slug}"


@dataclass(frozen=True)
class Actor:
    id: str
    login: str


@dataclass(frozen=True)
class PipelineError:
    type: str
    message: str


@dataclass(eq=False)
class Job:
    id: str
    template: JobTemplate
    workflow: Workflow
    dependencies: tuple[str, ...]  # ids of the jobs it requires
    number: int | None  # None for approvals and for jobs that were never queued
    queued_at: datetime | None  # None: never reached (blocked, then not_run or canceled)
    started_at: datetime | None  # None: never started
    stopped_at: datetime  # when `final_status` applies (for never-run jobs: the workflow's end)
    final_status: str
    failed_tests: tuple[int, ...] = ()  # indexes into template.tests
    test_seed: int = 0  # draws the run times of its test results, on demand
    approved_by: str | None = None
    canceled_by: str | None = None

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def type(self) -> JobType:
        return self.template.type

    @property
    def ran(self) -> bool:
        return self.started_at is not None and self.type == "build"

    def status_at(self, t: datetime) -> str:
        if t >= self.stopped_at:
            return self.final_status
        if self.started_at is not None and t >= self.started_at and self.type == "build":
            return "running"
        if self.queued_at is not None and t >= self.queued_at:
            return "on_hold" if self.type == "approval" else "queued"
        return "blocked"

    def number_at(self, t: datetime) -> int | None:
        """CircleCI numbers a job once it is queued; approvals and blocked jobs have none."""
        if self.number is None or self.queued_at is None or t < self.queued_at:
            return None
        return self.number

    def is_completed_at(self, t: datetime) -> bool:
        return t >= self.stopped_at

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.stopped_at - self.started_at).total_seconds()

    @property
    def credits(self) -> int:
        """Credits as Insights reports them: started minutes x class rate x parallelism."""
        seconds = self.duration_seconds
        if seconds is None or self.type == "approval":
            return 0
        minutes = int(seconds // 60) + 1
        return (
            minutes * CREDITS_PER_MINUTE[self.template.resource_class] * self.template.parallelism
        )


CREDITS_PER_MINUTE = {"small": 5, "medium": 10, "large": 20, "xlarge": 40}


@dataclass(eq=False)
class Workflow:
    id: str
    template: WorkflowTemplate
    pipeline: Pipeline
    created_at: datetime
    stopped_at: datetime
    final_status: str
    started_by: str
    jobs: list[Job] = field(default_factory=list)
    canceled_by: str | None = None
    rerun_of: Workflow | None = None

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def project(self) -> Project:
        return self.pipeline.project

    @property
    def branch(self) -> str:
        return self.pipeline.branch

    @property
    def duration_seconds(self) -> float:
        return (self.stopped_at - self.created_at).total_seconds()

    @property
    def is_approval(self) -> bool:
        return any(job.type == "approval" for job in self.jobs)

    @property
    def credits(self) -> int:
        return sum(job.credits for job in self.jobs)

    @property
    def url(self) -> str:
        return f"{self.project.app_url}/{self.pipeline.number}/workflows/{self.id}"

    def is_visible_at(self, t: datetime) -> bool:
        return t >= self.created_at

    def is_completed_at(self, t: datetime) -> bool:
        return t >= self.stopped_at

    def status_at(self, t: datetime) -> str:
        if t >= self.stopped_at:
            return self.final_status
        statuses = {job.status_at(t) for job in self.jobs}
        if statuses & {"failed", "infrastructure_fail", "timedout"}:
            return "failing"
        if "on_hold" in statuses:
            return "on_hold"
        return "running"


@dataclass(eq=False)
class Pipeline:
    id: str
    number: int
    project: Project
    created_at: datetime
    branch: str
    trigger_type: str
    actor: Actor
    revision: str
    subject: str
    errors: tuple[PipelineError, ...] = ()
    workflows: list[Workflow] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "errored" if self.errors else "created"

    def workflows_at(self, t: datetime) -> list[Workflow]:
        return [workflow for workflow in self.workflows if workflow.is_visible_at(t)]
