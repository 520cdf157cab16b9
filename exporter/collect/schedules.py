"""Scheduled pipelines: each tracked project's schedules, their runs and the runs they missed.

Cost (issue "Scheduled pipelines"): the schedules of a project are one request (one page; more
only for a project with over 20 schedules) per `collect.schedules_interval`. Their runs cost
nothing: the live collector already reads every new pipeline of the project, on every branch,
from the pipeline list, and hands the scheduled ones to `ProjectSchedules.note_pipeline`; the
status of a run is taken from the workflows the live collector reads anyway (tracked branches)
and from workflow-completed webhooks (any branch), never from a request of its own.

Missed runs: each schedule's timetable gives slots in which a run is expected
(exporter.circleci.timetable). Once a slot's end plus `schedules.grace` has passed, and the live
collector has read the pipeline list after that moment, the slot is settled: filled by the
earliest attributed run created in [start - 1 min, end + grace) not already used by an earlier
slot, or counted as missed. Only slots that end after the exporter first read the schedule are
settled, so a restart never counts (or re-counts) runs missed before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from exporter.circleci import CircleCIClient, CircleCIError, models
from exporter.circleci.timetable import Plan
from exporter.collect.schedule_matching import (
    Candidate,
    ScheduledRun,
    attribute,
    candidate,
    scheduled_run,
)
from exporter.collect.telemetry import CollectTelemetry
from exporter.state import State
from exporter.state.schedules import ScheduleRow, ScheduleStore

logger = logging.getLogger(__name__)

COLLECTOR = "schedules"
# A run created this long before its slot still fills it: clocks differ a little.
_EARLY = 60.0
# Workflow status → the schedule's last-run state (the state set of
# circleci_schedule_last_run_status); statuses not listed are "running".
_OUTCOME = {
    "success": "success",
    "failed": "failed",
    "error": "error",
    "infrastructure_fail": "error",
    "unauthorized": "error",
    "canceled": "canceled",
    "not_run": "canceled",
}


@dataclass(slots=True)
class _Schedule:
    schedule: models.Schedule
    match: Candidate
    settled_until: float  # slots starting before this are settled
    runs: list[ScheduledRun] = field(default_factory=list)  # attributed, unused, oldest first
    last_run: ScheduledRun | None = None
    missed: int = 0
    last_missed_at: float | None = None


def pipeline_outcome(run: ScheduledRun, workflows: Mapping[str, str] | None) -> str | None:
    """The run's state: its workflows' statuses folded into one (any running → running; else
    failed, error, canceled, success in that order); None when its workflows are never read."""
    if run.errored:
        return "error"
    if workflows is None:
        return None
    outcomes = {_OUTCOME.get(status, "running") for status in workflows.values()}
    if not outcomes:
        return "running"  # created; its workflows are not there yet
    for outcome in ("running", "failed", "error", "canceled"):
        if outcome in outcomes:
            return outcome
    return "success"


class ProjectSchedules:
    """The schedules of one project; fed by the schedule reads and the live collector."""

    def __init__(
        self,
        project: str,
        *,
        store: ScheduleStore,
        grace: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.store = store
        self.grace = grace
        self.clock = clock
        self._schedules: dict[str, _Schedule] | None = None  # None until the first read
        self._pending: list[ScheduledRun] = []  # seen before the first schedule read
        # Workflow statuses of scheduled runs on tracked branches (pipeline id → workflow id →
        # status); a run on a branch the live collector does not read has no entry.
        self._workflows: dict[str, dict[str, str]] = {}
        self._observed_until: float | None = None

    # -- inputs ---------------------------------------------------------------------------------

    def replace_schedules(self, schedules: list[models.Schedule], read_at: float) -> None:
        """The project's schedules as just read; a schedule no longer listed is forgotten."""
        known = self._schedules or {}
        fresh: dict[str, _Schedule] = {}
        for schedule in schedules:
            old = known.get(schedule.id)
            plan = _plan(self.project, schedule)
            match = candidate(schedule, plan)
            if old is not None:
                old.schedule, old.match = schedule, match
                fresh[schedule.id] = old
                continue
            # Settle only slots that end after this first read (see the module docstring).
            start = read_at
            if plan is not None:
                slot = plan.slot_around(read_at)
                start = slot.start if slot is not None else read_at
            if schedule.created_at is not None:
                start = max(start, schedule.created_at.timestamp())
            fresh[schedule.id] = _Schedule(schedule, match, settled_until=start)
        self._schedules = fresh
        pending, self._pending = self._pending, []
        for run in pending:
            self._attribute(run)
        self._settle()
        self.publish()

    def note_pipeline(self, pipeline: models.Pipeline, *, tracked: bool) -> None:
        """A pipeline the live collector saw for the first time (any branch). `tracked`: its
        workflows will be read, and reported with `note_workflow`."""
        run = scheduled_run(pipeline)
        if run is None:
            return
        if tracked:
            self._workflows.setdefault(run.pipeline_id, {})
        if self._schedules is None:
            self._pending.append(run)
        else:
            self._attribute(run)

    def note_workflow(self, pipeline_id: str, workflow_id: str, status: str) -> None:
        """A workflow status, from polling (tracked branches) or a workflow-completed webhook
        (any branch): kept for a schedule's newest run only."""
        statuses = self._workflows.get(pipeline_id)
        if statuses is None and any(
            s.last_run is not None and s.last_run.pipeline_id == pipeline_id
            for s in (self._schedules or {}).values()
        ):
            statuses = self._workflows[pipeline_id] = {}
        if statuses is not None:
            statuses[workflow_id] = status

    def observed(self, until: float) -> None:
        """The live collector has read every pipeline created before `until`."""
        self._observed_until = until
        self._settle()
        self.publish()

    # -- bookkeeping ----------------------------------------------------------------------------

    def _attribute(self, run: ScheduledRun) -> None:
        assert self._schedules is not None
        matches = [s.match for s in self._schedules.values()]
        schedule_id = attribute(run, matches, self.grace)
        if schedule_id is None:
            self._workflows.pop(run.pipeline_id, None)
            return
        tracked = self._schedules[schedule_id]
        if tracked.last_run is None or run.created_at >= tracked.last_run.created_at:
            if tracked.last_run is not None:
                self._workflows.pop(tracked.last_run.pipeline_id, None)
            tracked.last_run = run
        elif run.pipeline_id in self._workflows:
            del self._workflows[run.pipeline_id]  # an older run's status is never shown
        tracked.runs.append(run)
        tracked.runs.sort(key=lambda r: r.created_at)

    def _settle(self) -> None:
        if self._schedules is None or self._observed_until is None:
            return
        for tracked in self._schedules.values():
            plan = tracked.match.plan
            if plan is None:
                continue
            for slot in plan.slots_from(tracked.settled_until):
                if slot.end + self.grace > self._observed_until:
                    break
                window_start, window_end = slot.start - _EARLY, slot.end + self.grace
                # Runs before this window can fill no later slot either.
                tracked.runs = [r for r in tracked.runs if r.created_at >= window_start]
                filler = next((r for r in tracked.runs if r.created_at < window_end), None)
                if filler is not None:
                    tracked.runs.remove(filler)
                else:
                    tracked.missed += 1
                    tracked.last_missed_at = slot.start
                    logger.info(
                        "scheduled run missed",
                        extra={
                            "project": self.project,
                            "schedule": tracked.schedule.name,
                            "expected_at": slot.start,
                        },
                    )
                tracked.settled_until = slot.end

    def publish(self) -> None:
        if self._schedules is None:
            return
        now = self.clock()
        rows: dict[str, ScheduleRow] = {}
        for tracked in sorted(
            self._schedules.values(), key=lambda t: (t.schedule.name, t.schedule.id)
        ):
            name = tracked.schedule.name
            if name in rows:  # two schedules of one name: the later (by id) gets its id too
                name = f"{name} ({tracked.schedule.id})"
            plan = tracked.match.plan
            slot = plan.next_slot(now) if plan is not None else None
            last = tracked.last_run
            match = tracked.match
            rows[name] = ScheduleRow(
                branch=match.branch or match.tag or "",
                actor=match.actor or "",
                next_run=slot.start if slot is not None else None,
                last_run_at=last.created_at if last is not None else None,
                last_status=(
                    pipeline_outcome(last, self._workflows.get(last.pipeline_id))
                    if last is not None
                    else None
                ),
                missed_runs=tracked.missed,
                last_missed_at=tracked.last_missed_at,
            )
        self.store.replace_project(self.project, rows)


def _plan(project: str, schedule: models.Schedule) -> Plan | None:
    try:
        return Plan.of(schedule.timetable)
    except ValueError as err:
        logger.warning(
            "unreadable timetable",
            extra={"project": project, "schedule": schedule.name, "error": str(err)},
        )
        return None


class ScheduleBook:
    """Every tracked project's `ProjectSchedules`, created on first use."""

    def __init__(
        self, store: ScheduleStore, *, grace: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.grace = grace
        self.clock = clock
        self.projects: dict[str, ProjectSchedules] = {}

    def project(self, slug: str) -> ProjectSchedules:
        found = self.projects.get(slug)
        if found is None:
            found = ProjectSchedules(slug, store=self.store, grace=self.grace, clock=self.clock)
            self.projects[slug] = found
        return found


class ScheduleCollector:
    """Reads every tracked project's schedules every `collect.schedules_interval`."""

    def __init__(
        self,
        *,
        client: CircleCIClient,
        state: State,
        book: ScheduleBook,
        tracked: Callable[[], list[str]],
        interval: float,
        on_read: Callable[[], None],
        telemetry: CollectTelemetry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.state = state
        self.book = book
        self.tracked = tracked
        self.interval = interval
        self.on_read = on_read
        self.telemetry = telemetry
        self.clock = clock

    async def run(self) -> None:
        while True:
            started = anyio.current_time()
            await self.sweep()
            await anyio.sleep(max(0.0, self.interval - (anyio.current_time() - started)))

    async def sweep(self) -> None:
        for slug in sorted(self.tracked()):
            await self.collect_project(slug)
        self.on_read()

    async def collect_project(self, slug: str) -> None:
        """Replace the project's schedules; on failure keep the last known ones."""
        started = anyio.current_time()
        read_at = self.clock()
        try:
            schedules = [s async for s in self.client.iter_project_schedules(slug)]
        except CircleCIError as err:
            self.state.record_failure(slug, COLLECTOR, str(err))
            logger.warning("schedule collection failed", extra={"project": slug, "error": str(err)})
        else:
            self.book.project(slug).replace_schedules(schedules, read_at)
            self.state.record_success(slug, COLLECTOR, self.clock())
        finally:
            self.telemetry.observe_cycle(COLLECTOR, anyio.current_time() - started)
