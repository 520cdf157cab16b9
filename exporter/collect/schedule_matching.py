"""Which schedule a scheduled pipeline came from. Pure functions.

A pipeline does not name its schedule in any documented field (docs/circleci-api.md
§Schedules), so a scheduled pipeline is attributed by what it shares with its schedule:
1. the schedule's id or name, where `trigger_parameters.schedule` carries them (the pipeline
   values `pipeline.schedule.id` / `.name` exist in config; read here only when present);
2. else the branch (or tag) the schedule targets and the schedule's actor;
3. else the branch alone (the actor's spelling is not guaranteed to match);
and when several schedules remain, the one whose expected slot is nearest the pipeline's
creation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.circleci import models
from exporter.circleci.timetable import Plan, Slot

# `trigger.type` of a scheduled pipeline: API v2 and webhook payloads spell it differently
# (docs/circleci-api.md §Schedules).
SCHEDULED_TRIGGERS = frozenset({"scheduled_pipeline", "schedule"})
_DAY = 86400.0
_WEEK = 7 * _DAY


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """A scheduled pipeline, as the pipeline list shows it."""

    pipeline_id: str
    created_at: float
    branch: str | None
    tag: str | None
    actor: str | None  # trigger.actor.login
    schedule_id: str | None  # from trigger_parameters, when present
    schedule_name: str | None
    errored: bool  # a config error: no workflow will run


@dataclass(frozen=True, slots=True)
class Candidate:
    """A schedule as matching needs it."""

    id: str
    name: str
    branch: str | None
    tag: str | None
    actor: str | None
    plan: Plan | None  # None: a timetable we cannot read


def candidate(schedule: models.Schedule, plan: Plan | None) -> Candidate:
    def text(key: str) -> str | None:
        value = schedule.parameters.get(key)
        return value if isinstance(value, str) and value else None

    actor = schedule.actor.login if schedule.actor else None
    return Candidate(schedule.id, schedule.name, text("branch"), text("tag"), actor, plan)


def scheduled_run(pipeline: models.Pipeline) -> ScheduledRun | None:
    """The pipeline as a scheduled run; None when a schedule did not trigger it."""
    trigger = pipeline.trigger
    if trigger is None or trigger.type not in SCHEDULED_TRIGGERS:
        return None
    named = pipeline.trigger_parameters.get("schedule")
    named = named if isinstance(named, dict) else {}

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    return ScheduledRun(
        pipeline_id=pipeline.id,
        created_at=pipeline.created_at.timestamp(),
        branch=pipeline.branch,
        tag=pipeline.tag,
        actor=trigger.actor.login if trigger.actor else None,
        schedule_id=text(named.get("id")),
        schedule_name=text(named.get("name")),
        errored=pipeline.state == "errored",
    )


def attribute(run: ScheduledRun, schedules: Sequence[Candidate], grace: float) -> str | None:
    """The id of the schedule that created `run`; None when no schedule fits."""
    by_id = [s for s in schedules if run.schedule_id is not None and s.id == run.schedule_id]
    if by_id:
        return by_id[0].id
    by_name = [
        s for s in schedules if run.schedule_name is not None and s.name == run.schedule_name
    ]
    if len(by_name) == 1:
        return by_name[0].id
    same_ref = [
        s
        for s in (by_name or schedules)
        if (s.branch is not None and s.branch == run.branch)
        or (s.tag is not None and s.tag == run.tag)
    ]
    same_actor = [s for s in same_ref if s.actor is not None and s.actor == run.actor]
    remaining = same_actor or same_ref
    if not remaining:
        return None
    return min(remaining, key=lambda s: (distance(run.created_at, s.plan, grace), s.name, s.id)).id


def distance(at: float, plan: Plan | None, grace: float) -> float:
    """Seconds between `at` and the nearest time a run of `plan` is expected: 0 inside a slot or
    its grace period; infinite for an unreadable timetable or one that never fires."""
    if plan is None:
        return float("inf")
    # Look back just far enough to meet the previous slot: its own slot for most runs, the
    # previous day for a daily schedule, the previous week for a weekly one.
    for lookback in (plan.slot_seconds + grace, _DAY, _WEEK + _DAY):
        previous: Slot | None = None
        after = float("inf")
        for slot in plan.slots_from(at - lookback):
            if slot.start > at:
                after = slot.start - at
                break
            previous = slot
        if previous is not None:
            return min(max(0.0, at - (previous.end + grace)), after)
        if lookback > _WEEK:
            return after
    return float("inf")  # not reached: the last lookback returns
