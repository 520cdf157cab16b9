"""ProjectSchedules: runs attributed, slots settled, misses counted, deleted schedules gone."""

from __future__ import annotations

from exporter.collect.schedules import ProjectSchedules
from exporter.state.schedules import ScheduleKey, ScheduleStore
from tests.unit.schedules.support import at, pipeline, schedule

HOURLY = {"per-hour": 1, "hours-of-day": list(range(24))}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tracker(now: str) -> tuple[ProjectSchedules, ScheduleStore, Clock]:
    store = ScheduleStore()
    clock = Clock(at(now))
    return ProjectSchedules("gh/acme/api", store=store, grace=900.0, clock=clock), store, clock


def row(store: ScheduleStore, name: str = "hourly"):  # type: ignore[no-untyped-def]
    return store.snapshot()[ScheduleKey("gh/acme/api", name)]


def test_runs_fill_slots_and_a_missing_one_is_counted_after_the_grace() -> None:
    t, store, clock = tracker("2026-03-01T10:00")
    t.replace_schedules([schedule("hourly", timetable=HOURLY)], at("2026-03-01T10:00"))
    t.note_pipeline(pipeline("p10", at("2026-03-01T10:20")), tracked=True)
    t.observed(at("2026-03-01T11:16"))
    assert (row(store).missed_runs, row(store).last_missed_at) == (0, None)
    # No run in the 11:00 slot: missed once 12:15 has passed and the list was read after it.
    t.observed(at("2026-03-01T12:14"))
    assert row(store).missed_runs == 0
    clock.now = at("2026-03-01T12:16")
    t.observed(at("2026-03-01T12:16"))
    assert row(store).missed_runs == 1
    assert row(store).last_missed_at == at("2026-03-01T11:00")
    assert row(store).last_run_at == at("2026-03-01T10:20")
    assert row(store).next_run == at("2026-03-01T13:00")


def test_a_late_run_within_the_grace_fills_its_slot() -> None:
    t, store, _ = tracker("2026-03-01T10:00")
    t.replace_schedules([schedule("hourly", timetable=HOURLY)], at("2026-03-01T10:00"))
    t.note_pipeline(pipeline("p", at("2026-03-01T11:10")), tracked=True)
    t.note_pipeline(pipeline("q", at("2026-03-01T11:40")), tracked=True)
    t.observed(at("2026-03-01T12:30"))
    assert row(store).missed_runs == 0  # 11:10 fills 10:00-11:00 (+15 min); 11:40 fills 11:00
    t.observed(at("2026-03-01T13:20"))
    assert row(store).missed_runs == 1  # nothing for 12:00


def test_runs_seen_before_the_first_schedule_read_count() -> None:
    t, store, _ = tracker("2026-03-01T10:05")
    t.note_pipeline(pipeline("p", at("2026-03-01T10:02")), tracked=False)
    t.replace_schedules([schedule("hourly", timetable=HOURLY)], at("2026-03-01T10:05"))
    t.observed(at("2026-03-01T11:20"))
    assert row(store).missed_runs == 0
    assert row(store).last_run_at == at("2026-03-01T10:02")
    assert row(store).last_status is None  # an untracked branch: its workflows are never read


def test_a_restart_counts_nothing_from_before_the_first_read() -> None:
    # The nightly has not run for days; a fresh exporter starts counting at its next slot.
    t, store, clock = tracker("2026-03-05T09:00")
    t.replace_schedules([schedule("nightly")], at("2026-03-05T09:00"))
    t.observed(at("2026-03-05T09:00"))
    assert row(store, "nightly").missed_runs == 0
    clock.now = at("2026-03-06T03:20")
    t.observed(at("2026-03-06T03:20"))
    assert row(store, "nightly").missed_runs == 1


def test_status_of_the_last_run() -> None:
    t, store, _ = tracker("2026-03-01T10:00")
    t.replace_schedules([schedule("hourly", timetable=HOURLY)], at("2026-03-01T10:00"))
    t.note_pipeline(pipeline("p", at("2026-03-01T10:05")), tracked=True)
    t.observed(at("2026-03-01T10:06"))
    assert row(store).last_status == "running"
    t.note_workflow("p", "w1", "success")
    t.note_workflow("p", "w2", "failed")
    t.observed(at("2026-03-01T10:30"))
    assert row(store).last_status == "failed"
    t.note_pipeline(pipeline("q", at("2026-03-01T11:05"), state="errored"), tracked=True)
    t.observed(at("2026-03-01T11:06"))
    assert row(store).last_status == "error"


def test_a_deleted_schedule_goes_at_the_next_read() -> None:
    t, store, _ = tracker("2026-03-01T10:00")
    t.replace_schedules(
        [schedule("hourly", timetable=HOURLY), schedule("nightly")], at("2026-03-01T10:00")
    )
    assert {k.schedule for k in store.snapshot()} == {"hourly", "nightly"}
    t.replace_schedules([schedule("nightly")], at("2026-03-01T10:15"))
    assert {k.schedule for k in store.snapshot()} == {"nightly"}


def test_two_schedules_of_one_name_stay_apart() -> None:
    t, store, _ = tracker("2026-03-01T10:00")
    t.replace_schedules(
        [schedule("nightly", id="a"), schedule("nightly", id="b", branch="dev")],
        at("2026-03-01T10:00"),
    )
    assert {k.schedule for k in store.snapshot()} == {"nightly", "nightly (b)"}


def test_a_webhook_gives_the_status_of_a_run_on_an_untracked_branch() -> None:
    t, store, _ = tracker("2026-03-01T10:00")
    t.replace_schedules([schedule("hourly", timetable=HOURLY)], at("2026-03-01T10:00"))
    t.note_pipeline(pipeline("p", at("2026-03-01T10:05")), tracked=False)
    t.note_workflow("other", "w0", "failed")  # not a schedule's newest run: ignored
    t.observed(at("2026-03-01T10:06"))
    assert row(store).last_status is None
    t.note_workflow("p", "w1", "success")
    t.observed(at("2026-03-01T10:30"))
    assert row(store).last_status == "success"
