"""One project's history, generated in time order from its own random stream.

Every pipeline draws the same amount of randomness whatever happens to it, so a forced break or a
prune never shifts what later pipelines look like, and the same seed always yields the same world.
"""

from __future__ import annotations

import bisect
import math
import random
from datetime import UTC, datetime, timedelta

from exporter.simulator.catalog import random_uuid
from exporter.simulator.model import (
    Actor,
    Job,
    JobTemplate,
    Pipeline,
    PipelineError,
    Project,
    Schedule,
    Workflow,
    WorkflowTemplate,
)
from exporter.simulator.schedules import Firing

_TRIGGERS = (("webhook", 0.80), ("api", 0.10), ("explicit", 0.07), ("unknown", 0.03))
_SUBJECTS = (
    "Fix flaky cache test", "Bump dependencies", "Add rate limiting to the client",
    "Refactor billing models", "Update README", "Speed up the build", "Handle empty pages",
    "Add dark mode", "Retry on 5xx", "Clean up logging",
)  # fmt: skip
_CONFIG_ERRORS = (
    ("config", "Config does not conform to schema: {:workflows {:build-and-test disallowed-key}}"),
    ("config", "Cannot find a definition for job named deploy-staging"),
    ("config-fetch", "Unable to fetch .circleci/config.yml from the repository"),
)
_ERRORED_RATE = 0.04
_BREAK_RATE = 0.04  # chance that a default-branch push breaks the build for a few pipelines
_CANCEL_RATE = {"default": 0.02, "feature": 0.06}
_RERUN_RATE = 0.6  # a workflow that failed only on flaky tests is rerun this often
_REAL_BUG_RATE = 0.01


def _ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _at(epoch_seconds: float) -> datetime:
    return _ms(datetime.fromtimestamp(epoch_seconds, UTC))


class ProjectTimeline:
    """Pipelines of one project with created_at <= the last `generate_until`, oldest first."""

    def __init__(
        self,
        project: Project,
        *,
        seed: int,
        speed: float,
        origin: datetime,
        users: tuple[Actor, ...],
        start: datetime,
        stop_after: float,
        quiet: bool = False,
    ) -> None:
        self.project = project
        self.speed = speed
        self.users = users
        self.pipelines: list[Pipeline] = []
        self.by_branch: dict[str, list[Pipeline]] = {}
        self.jobs_by_number: dict[int, Job] = {}
        self.max_span_seconds = 0.0  # longest pipeline-created → last-workflow-stopped seen
        self._rng = random.Random(f"{seed}:timeline:{project.index}")
        self._pipeline_number = self._rng.randint(50, 3000)
        self._job_number = self._pipeline_number * 4
        self._next_push = origin.timestamp() + self._push_gap()
        self._firing = Firing(project.schedules, speed=speed, start=start, stop_after=stop_after)
        # Each schedule's pipelines draw from their own stream: the pushes stay the same
        # whatever the schedules do, and the n-th run of a schedule is the same at any speed.
        self._schedule_rngs = {
            s.id: random.Random(f"{seed}:schedule:{s.id}") for s in project.schedules
        }
        self._next_schedule = self._firing.next_after(origin.timestamp())
        self._broken_runs_left = 0
        self._forced_break: frozenset[str] | None = None
        # A quiet project creates nothing from the start on (SimConfig.active).
        self._quiet_from = start.timestamp() if quiet else math.inf
        self._seed = seed

    @property
    def next_arrival(self) -> float:
        arrival = min(self._next_push, self._next_fire)
        return arrival if arrival < self._quiet_from else math.inf

    @property
    def _next_fire(self) -> float:
        return math.inf if self._next_schedule is None else self._next_schedule[0]

    def force_break(self, workflow: str | None) -> None:
        """Make default-branch runs created from now on fail (one workflow, or all of them)."""
        names = {template.name for template in self.project.workflows}
        if workflow is not None and workflow not in names:
            raise KeyError(f"project {self.project.slug} has no workflow {workflow!r}")
        self._forced_break = frozenset(names if workflow is None else {workflow})

    def repair(self) -> None:
        self._forced_break = None
        self._broken_runs_left = 0

    def generate_until(self, now: datetime) -> list[Pipeline]:
        limit = now.timestamp()
        created: list[Pipeline] = []
        while self.next_arrival <= limit:
            if self._next_schedule is not None and self._next_fire <= self._next_push:
                at, schedule = self._next_schedule
                self._next_schedule = self._firing.next_after(at)
                pipeline = self._pipeline(at, schedule=schedule)
            else:
                at = self._next_push
                self._next_push = at + self._push_gap()
                pipeline = self._pipeline(at, schedule=None)
            self._index(pipeline)
            created.append(pipeline)
        return created

    def rerun(self, pipeline: Pipeline, at: datetime) -> Workflow:
        """Someone presses "rerun" on the pipeline's last workflow at `at`: a new workflow of
        the same pipeline, and no new pipeline (docs/circleci-api.md §Pipelines, updated_at).
        Drawn from a stream of its own, so the project's later pipelines stay the same."""
        last = max(pipeline.workflows, key=lambda w: w.created_at)
        pushes = self._rng
        self._rng = random.Random(f"{self._seed}:rerun:{pipeline.id}:{len(pipeline.workflows)}")
        try:
            workflow = self._plan_workflow(last.template, pipeline, at, broken=False, rerun_of=last)
        finally:
            self._rng = pushes
        for job in workflow.jobs:
            if job.number is not None:
                self.jobs_by_number[job.number] = job
        return workflow

    def prune_before(self, cutoff: datetime) -> list[Pipeline]:
        keep_from = bisect.bisect_left(self.pipelines, cutoff, key=lambda p: p.created_at)
        removed = self.pipelines[:keep_from]
        if not removed:
            return removed
        del self.pipelines[:keep_from]
        for branch, pipelines in list(self.by_branch.items()):
            cut = bisect.bisect_left(pipelines, cutoff, key=lambda p: p.created_at)
            del pipelines[:cut]
            if not pipelines:
                del self.by_branch[branch]
        for pipeline in removed:
            for workflow in pipeline.workflows:
                for job in workflow.jobs:
                    if job.number is not None:
                        self.jobs_by_number.pop(job.number, None)
        return removed

    def _index(self, pipeline: Pipeline) -> None:
        self.pipelines.append(pipeline)
        self.by_branch.setdefault(pipeline.branch, []).append(pipeline)
        for workflow in pipeline.workflows:
            span = (workflow.stopped_at - pipeline.created_at).total_seconds()
            self.max_span_seconds = max(self.max_span_seconds, span)
            for job in workflow.jobs:
                if job.number is not None:
                    self.jobs_by_number[job.number] = job

    def _push_gap(self) -> float:
        return self._rng.expovariate(1.0 / self.project.mean_arrival_seconds) / self.speed

    def _pipeline(self, at: float, *, schedule: Schedule | None) -> Pipeline:
        if schedule is None:
            return self._draw_pipeline(at, schedule=None)
        pushes, self._rng = self._rng, self._schedule_rngs[schedule.id]
        try:
            return self._draw_pipeline(at, schedule=schedule)
        finally:
            self._rng = pushes

    def _draw_pipeline(self, at: float, *, schedule: Schedule | None) -> Pipeline:
        rng, project = self._rng, self.project
        self._pipeline_number += 1
        pipeline_id = random_uuid(rng)
        on_default = rng.random() < 0.45
        feature_branch = rng.choice(project.feature_branches)
        trigger = rng.choices([t for t, _ in _TRIGGERS], [w for _, w in _TRIGGERS])[0]
        errored = rng.random() < _ERRORED_RATE
        error_type, error_message = rng.choice(_CONFIG_ERRORS)
        actor = rng.choice(self.users)
        revision = f"{rng.getrandbits(160):040x}"
        subject = rng.choice(_SUBJECTS)
        breaks = rng.random() < _BREAK_RATE
        break_length = rng.randint(2, 5)
        scheduled = schedule is not None
        branch = project.default_branch if on_default else feature_branch
        if schedule is not None:
            # API v2 spells a schedule's trigger `scheduled_pipeline` (circleci-api.md §Schedules).
            on_default, trigger, errored = True, "scheduled_pipeline", False
            actor = Actor(schedule.actor_id, schedule.actor_login)
            branch = schedule.branch
        pipeline = Pipeline(
            id=pipeline_id,
            number=self._pipeline_number,
            project=project,
            created_at=_at(at),
            branch=branch,
            trigger_type=trigger,
            actor=actor,
            revision=revision,
            subject=subject,
            errors=(PipelineError(error_type, error_message),) if errored else (),
        )
        if errored:
            return pipeline
        broken: frozenset[str] = frozenset()
        if on_default:
            if self._broken_runs_left == 0 and breaks and not scheduled:
                self._broken_runs_left = break_length
            if self._broken_runs_left > 0 and not scheduled:
                self._broken_runs_left -= 1
                broken = frozenset({"build-and-test"})
            broken |= self._forced_break or frozenset()
        for template in project.workflows:
            if self._runs(template, schedule=schedule, on_default=on_default):
                started = pipeline.created_at + timedelta(seconds=rng.uniform(0.5, 3) / self.speed)
                if rng.random() < 0.3:
                    # The live API mixes whole-second and millisecond timestamps
                    # (docs/circleci-api.md §Auth and errors).
                    started = started.replace(microsecond=0) + timedelta(seconds=1)
                self._plan_workflow(template, pipeline, started, template.name in broken)
        return pipeline

    @staticmethod
    def _runs(template: WorkflowTemplate, *, schedule: Schedule | None, on_default: bool) -> bool:
        if schedule is not None:
            return template.name in schedule.workflows
        if template.runs_on == "schedule":
            return False
        return template.runs_on == "push" or on_default

    def _plan_workflow(
        self,
        template: WorkflowTemplate,
        pipeline: Pipeline,
        created_at: datetime,
        broken: bool,
        rerun_of: Workflow | None = None,
    ) -> Workflow:
        rng = self._rng
        workflow = Workflow(
            id=random_uuid(rng),
            template=template,
            pipeline=pipeline,
            created_at=_ms(created_at),
            stopped_at=created_at,
            final_status="running",
            started_by=pipeline.actor.id,
            rerun_of=rerun_of,
        )
        cancel_rate = _CANCEL_RATE[
            "default" if pipeline.branch == pipeline.project.default_branch else "feature"
        ]
        canceled = rng.random() < cancel_rate
        cancel_fraction = rng.uniform(0.1, 0.9)
        canceler = rng.choice(self.users)
        breakable = _breakable_job(template)
        jobs: dict[str, Job] = {}
        only_flaky_failures = True
        for job_template in template.jobs:
            job, flaky_only = self._plan_job(
                job_template, workflow, jobs, broken and job_template.name == breakable
            )
            only_flaky_failures &= flaky_only
            jobs[job_template.name] = job
        workflow.jobs = list(jobs.values())
        reached = [job for job in workflow.jobs if job.queued_at is not None]
        end = max(job.stopped_at for job in reached)
        for job in workflow.jobs:
            if job.queued_at is None:
                job.stopped_at = end
        workflow.stopped_at = end
        if canceled:
            cancel_at = _ms(workflow.created_at + (end - workflow.created_at) * cancel_fraction)
            _cancel(workflow, cancel_at, canceler.id)
        workflow.final_status = _workflow_outcome(workflow, canceled)
        self._number_jobs(workflow)
        pipeline.workflows.append(workflow)
        wants_rerun = rng.random() < _RERUN_RATE
        rerun_delay = rng.uniform(60, 600) / self.speed
        if (
            rerun_of is None
            and workflow.final_status == "failed"
            and only_flaky_failures
            and not broken
            and wants_rerun
        ):
            # Someone presses "rerun": the same commit now both failed and passed, which is
            # exactly what Insights calls a flaky test (docs/circleci-api.md §Insights,
            # getFlakyTests).
            rerun_at = workflow.stopped_at + timedelta(seconds=rerun_delay)
            self._plan_workflow(template, pipeline, rerun_at, broken=False, rerun_of=workflow)
        return workflow

    def _plan_job(
        self, template: JobTemplate, workflow: Workflow, done: dict[str, Job], broken: bool
    ) -> tuple[Job, bool]:
        """Plan one job; also say whether its failure (if any) came only from flaky tests."""
        rng, speed = self._rng, self.speed
        job_id = random_uuid(rng)
        queue_delay = min(rng.lognormvariate(math.log(8), 1.0), 600.0)
        duration = template.mean_seconds * rng.lognormvariate(0, 0.3)
        failure_roll = rng.random()
        flaky_failures = [
            i
            for i, test in enumerate(template.tests)
            if test.flake_rate and rng.random() < test.flake_rate
        ]
        real_bug = rng.random() < _REAL_BUG_RATE
        bug_index = rng.randrange(len(template.tests)) if template.tests else 0
        test_seed = rng.getrandbits(32)
        approver = rng.choice(self.users)
        deps = [done[name] for name in template.requires]
        job = Job(
            id=job_id,
            template=template,
            workflow=workflow,
            dependencies=tuple(dep.id for dep in deps),
            number=None,
            queued_at=None,
            started_at=None,
            stopped_at=workflow.created_at,
            final_status="not_run",
            test_seed=test_seed,
        )
        if any(dep.final_status != "success" for dep in deps):
            return job, True
        ready = max((dep.stopped_at for dep in deps), default=workflow.created_at)
        job.queued_at = _ms(ready + timedelta(seconds=1.0 / speed))
        if template.type == "approval":
            job.started_at = job.queued_at
            job.stopped_at = _ms(job.queued_at + timedelta(seconds=duration / speed))
            job.final_status, job.approved_by = "success", approver.id
            return job, True
        job.started_at = _ms(job.queued_at + timedelta(seconds=queue_delay / speed))
        job.stopped_at = _ms(job.started_at + timedelta(seconds=max(duration, 5.0) / speed))
        failed_tests = set(flaky_failures)
        if template.tests and real_bug:
            failed_tests.add(bug_index)
        if template.tests and broken:
            failed_tests.add(_canary_test(template))
        failed_tests = {i for i in failed_tests if not template.tests[i].skipped}
        job.failed_tests = tuple(sorted(failed_tests))
        if failure_roll < template.fail_rate * 0.1:
            job.final_status = "infrastructure_fail"
        elif (
            failure_roll < template.fail_rate or job.failed_tests or (broken and not template.tests)
        ):
            job.final_status = "failed"
        else:
            job.final_status = "success"
        flaky_only = job.final_status == "success" or (
            job.final_status == "failed"
            and failure_roll >= template.fail_rate
            and not real_bug
            and not broken
        )
        return job, flaky_only

    def _number_jobs(self, workflow: Workflow) -> None:
        for job in sorted(workflow.jobs, key=lambda j: (j.queued_at or j.stopped_at, j.name)):
            if job.type == "build" and job.queued_at is not None:
                self._job_number += 1
                job.number = self._job_number


def _breakable_job(template: WorkflowTemplate) -> str:
    """The job a broken commit fails: the first with tests, else the first build job."""
    for job in template.jobs:
        if job.tests:
            return job.name
    return next(job.name for job in template.jobs if job.type == "build")


def _canary_test(template: JobTemplate) -> int:
    """A stable, never-skipped test that a broken commit fails every time."""
    steady = (
        i for i, test in enumerate(template.tests) if not test.skipped and not test.flake_rate
    )
    return next(steady, 0)


def _cancel(workflow: Workflow, cancel_at: datetime, canceled_by: str) -> None:
    workflow.canceled_by = canceled_by
    workflow.stopped_at = cancel_at
    for job in workflow.jobs:
        if job.queued_at is not None and job.stopped_at <= cancel_at:
            continue
        job.final_status, job.stopped_at, job.failed_tests = "canceled", cancel_at, ()
        job.canceled_by = canceled_by
        if job.started_at is not None and job.started_at > cancel_at:
            job.started_at = None
        if job.queued_at is not None and job.queued_at > cancel_at:
            job.queued_at = None


def _workflow_outcome(workflow: Workflow, canceled: bool) -> str:
    statuses = {job.final_status for job in workflow.jobs}
    if canceled:
        return "canceled"
    if statuses & {"infrastructure_fail", "timedout"}:
        return "error"
    if "failed" in statuses:
        return "failed"
    return "success"
