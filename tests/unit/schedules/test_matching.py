"""Which schedule a scheduled pipeline is attributed to."""

from __future__ import annotations

from exporter.circleci.timetable import Plan
from exporter.collect.schedule_matching import attribute, candidate, distance, scheduled_run
from tests.unit.schedules.support import at, pipeline, schedule

GRACE = 900.0


def candidates(*schedules):  # type: ignore[no-untyped-def]
    return [candidate(s, Plan.of(s.timetable)) for s in schedules]


def test_only_scheduled_triggers_are_runs() -> None:
    assert scheduled_run(pipeline("p", at("2026-03-01T02:05"), trigger="webhook")) is None
    assert scheduled_run(pipeline("p", at("2026-03-01T02:05"), trigger="api")) is None
    run = scheduled_run(pipeline("p", at("2026-03-01T02:05")))
    assert run is not None and (run.branch, run.actor) == ("main", "scheduler-bot")
    # Webhook payloads spell it `schedule`.
    assert scheduled_run(pipeline("p", at("2026-03-01T02:05"), trigger="schedule")) is not None


def test_branch_and_actor() -> None:
    mine = schedule("nightly", branch="main", actor="ada")
    other_branch = schedule("release-nightly", branch="release", actor="ada")
    other_actor = schedule("bot-nightly", branch="main", actor="bot")
    run = scheduled_run(pipeline("p", at("2026-03-01T02:05"), branch="main", actor="ada"))
    assert run is not None
    assert attribute(run, candidates(mine, other_branch, other_actor), GRACE) == "id-nightly"


def test_branch_alone_when_no_actor_matches() -> None:
    nightly = schedule("nightly", branch="main", actor="ada")
    run = scheduled_run(pipeline("p", at("2026-03-01T02:05"), actor="Scheduling System"))
    assert run is not None
    assert attribute(run, candidates(nightly), GRACE) == "id-nightly"


def test_no_schedule_on_the_branch() -> None:
    run = scheduled_run(pipeline("p", at("2026-03-01T02:05"), branch="gone"))
    assert run is not None
    assert attribute(run, candidates(schedule("nightly")), GRACE) is None


def test_trigger_parameters_name_or_id_win() -> None:
    a = schedule("a", timetable={"per-hour": 1, "hours-of-day": [2]})
    b = schedule("b", timetable={"per-hour": 1, "hours-of-day": [14]})
    by_id = scheduled_run(
        pipeline("p", at("2026-03-01T02:05"), trigger_parameters={"schedule": {"id": "id-b"}})
    )
    by_name = scheduled_run(
        pipeline("p", at("2026-03-01T02:05"), trigger_parameters={"schedule": {"name": "b"}})
    )
    assert by_id is not None and by_name is not None
    assert attribute(by_id, candidates(a, b), GRACE) == "id-b"
    assert attribute(by_name, candidates(a, b), GRACE) == "id-b"


def test_indistinguishable_schedules_by_nearest_expected_time() -> None:
    early = schedule("early", timetable={"per-hour": 1, "hours-of-day": [2]})
    late = schedule("late", timetable={"per-hour": 1, "hours-of-day": [14]})
    both = candidates(early, late)
    for created, expected in [
        ("2026-03-01T02:40", "id-early"),  # inside the 02:00 slot
        ("2026-03-01T03:10", "id-early"),  # within the grace period after it
        ("2026-03-01T13:59", "id-late"),  # just before the 14:00 slot
        ("2026-03-01T15:05", "id-late"),
        ("2026-03-01T19:00", "id-late"),  # 3h45 after 14:00 + grace, 7h before 02:00
        ("2026-03-01T21:00", "id-early"),  # 5h45 after 14:00 + grace, 5h before 02:00
        ("2026-03-01T23:30", "id-early"),
    ]:
        run = scheduled_run(pipeline("p", at(created)))
        assert run is not None
        assert attribute(run, both, GRACE) == expected, created


def test_distance_reaches_back_a_week() -> None:
    weekly = Plan.of(schedule("w", timetable={"per-hour": 1, "hours-of-day": [6],
                                              "days-of-week": ["MON"]}).timetable)  # fmt: skip
    # 2026-03-02 is a Monday: two hours after its slot and its grace, five days before the next.
    assert distance(at("2026-03-02T09:15"), weekly, GRACE) == 2 * 3600
    assert distance(at("2026-03-02T06:30"), weekly, GRACE) == 0
