"""Timetable arithmetic: every field, month and year ends, the per-hour spread (all UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.circleci import models
from exporter.circleci.timetable import Plan


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M")


def plan(**fields: object) -> Plan:
    return Plan.of(models.Timetable.model_validate(fields))


def starts(p: Plan, after: str, count: int) -> list[str]:
    found = []
    for slot in p.slots_from(at(after)):
        found.append(iso(slot.start))
        if len(found) == count:
            break
    return found


def test_kebab_keys_are_read() -> None:
    p = Plan.of(
        models.Timetable.model_validate(
            {"per-hour": 2, "hours-of-day": [3], "days-of-week": ["TUE"], "months": ["MAR"]}
        )
    )
    assert (p.per_hour, p.hours, p.weekdays, p.months) == (2, {3}, {1}, {3})


def test_hours_of_day_in_order_and_next_day() -> None:
    p = plan(per_hour=1, hours_of_day=[22, 2], days_of_week=[])
    assert starts(p, "2026-03-10T21:00", 3) == [
        "2026-03-10T22:00", "2026-03-11T02:00", "2026-03-11T22:00"
    ]  # fmt: skip


def test_per_hour_spreads_slots_evenly_across_the_hour() -> None:
    p = plan(per_hour=4, hours_of_day=[10])
    slots = p.slots_between(at("2026-03-10T00:00"), at("2026-03-11T00:00"))
    assert [iso(s.start) for s in slots] == [
        "2026-03-10T10:00", "2026-03-10T10:15", "2026-03-10T10:30", "2026-03-10T10:45"
    ]  # fmt: skip
    assert all(s.end - s.start == 900 for s in slots)
    assert p.slot_seconds == 900


def test_per_hour_one_slot_is_the_whole_hour_and_sixty_is_each_minute() -> None:
    assert plan(per_hour=1, hours_of_day=[5]).next_slot(at("2026-01-01T00:00")) is not None
    whole = plan(per_hour=1, hours_of_day=[5]).next_slot(at("2026-01-01T00:00"))
    assert whole is not None and whole.end - whole.start == 3600
    minutes = plan(per_hour=60, hours_of_day=[5]).slots_between(
        at("2026-01-01T05:00"), at("2026-01-01T06:00")
    )
    assert len(minutes) == 60 and minutes[1].start - minutes[0].start == 60


def test_a_slot_already_started_is_not_next() -> None:
    p = plan(per_hour=2, hours_of_day=[10])
    assert starts(p, "2026-03-10T10:10", 1) == ["2026-03-10T10:30"]
    assert starts(p, "2026-03-10T10:30", 1) == ["2026-03-10T10:30"]


def test_days_of_week_skip_the_weekend() -> None:
    p = plan(per_hour=1, hours_of_day=[9], days_of_week=["MON", "TUE", "WED", "THU", "FRI"])
    # 2026-11-27 is a Friday.
    assert starts(p, "2026-11-27T10:00", 2) == ["2026-11-30T09:00", "2026-12-01T09:00"]


def test_days_of_month_across_a_month_end_and_february() -> None:
    p = plan(per_hour=1, hours_of_day=[0], days_of_month=[30, 31])
    assert starts(p, "2026-01-31T01:00", 3) == [
        "2026-03-30T00:00", "2026-03-31T00:00", "2026-04-30T00:00"
    ]  # fmt: skip


def test_leap_day_only() -> None:
    p = plan(per_hour=1, hours_of_day=[12], days_of_month=[29], months=["FEB"])
    assert starts(p, "2026-03-01T00:00", 2) == ["2028-02-29T12:00", "2032-02-29T12:00"]


def test_months_and_year_end() -> None:
    p = plan(per_hour=1, hours_of_day=[23], days_of_month=[31], months=["DEC", "JAN"])
    assert starts(p, "2026-12-31T22:59", 3) == [
        "2026-12-31T23:00", "2027-01-31T23:00", "2027-12-31T23:00"
    ]  # fmt: skip


def test_year_end_midnight_rollover_hourly() -> None:
    p = plan(per_hour=1, hours_of_day=[23, 0])
    assert starts(p, "2026-12-31T23:30", 2) == ["2027-01-01T00:00", "2027-01-01T23:00"]


def test_weekday_or_month_day() -> None:
    # Either list matching is enough (2026-03-02 is a Monday; the 15th is a Sunday).
    p = plan(per_hour=1, hours_of_day=[6], days_of_week=["MON"], days_of_month=[15])
    assert starts(p, "2026-03-01T00:00", 4) == [
        "2026-03-02T06:00", "2026-03-09T06:00", "2026-03-15T06:00", "2026-03-16T06:00"
    ]  # fmt: skip


def test_empty_lists_mean_every() -> None:
    p = plan(per_hour=1)
    assert starts(p, "2026-03-01T00:30", 2) == ["2026-03-01T01:00", "2026-03-01T02:00"]


def test_a_timetable_that_never_fires_has_no_next_slot() -> None:
    assert (
        plan(per_hour=1, hours_of_day=[1], days_of_month=[31], months=["FEB"]).next_slot(
            at("2026-01-01T00:00")
        )
        is None
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"per_hour": 0},
        {"per_hour": 61},
        {"hours_of_day": [24]},
        {"days_of_month": [0]},
        {"days_of_week": ["MONDAY"]},
        {"months": ["SEPT"]},
    ],
)
def test_invalid_timetables_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        plan(**fields)
