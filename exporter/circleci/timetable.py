"""When a CircleCI schedule is expected to fire: pure arithmetic on its `timetable`, in UTC.

A timetable (docs/circleci-api.md §Schedules) names the months, the days (of the week and/or
of the month) and the hours of day (UTC) in which the schedule fires, and `per-hour`, how many
times it fires in each such hour (1 to 60). CircleCI spreads those runs across the hour rather
than firing at fixed minutes, so each run is expected somewhere in its *slot*: the hour divided
into `per-hour` equal parts. A slot of `per-hour: 4` at 10:00 is 10:00-10:15; one of
`per-hour: 1` is the whole hour. UTC has no daylight saving time, so every day has 24 hours.

Both the collector (what is due, what was missed) and the simulator (when to fire) use this
module, so both read a timetable the same way; tests/unit/schedules check it field by field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exporter.circleci import models

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # datetime.weekday() order
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_HOUR = 3600.0
# A timetable that matches no day at all (e.g. 31 February only) has no next slot; stop looking
# after eight years, which covers every combination of weekday, month day and leap year.
_SEARCH_DAYS = 8 * 366


@dataclass(frozen=True, slots=True)
class Slot:
    """One expected run: it should be created in [start, end)."""

    start: float  # epoch seconds
    end: float


@dataclass(frozen=True, slots=True)
class Plan:
    """A timetable, validated and turned into sets (an empty field means "every")."""

    per_hour: int
    hours: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday
    month_days: frozenset[int]
    months: frozenset[int]  # 1 = January

    @classmethod
    def of(cls, timetable: models.Timetable) -> Plan:
        per_hour = 1 if timetable.per_hour is None else timetable.per_hour
        if not 1 <= per_hour <= 60:
            raise ValueError(f"per-hour must be between 1 and 60, got {per_hour}")
        hours = frozenset(timetable.hours_of_day)
        if not hours <= set(range(24)):
            raise ValueError(f"hours-of-day must be 0-23, got {sorted(hours)}")
        month_days = frozenset(timetable.days_of_month)
        if not month_days <= set(range(1, 32)):
            raise ValueError(f"days-of-month must be 1-31, got {sorted(month_days)}")
        return cls(
            per_hour=per_hour,
            hours=hours or frozenset(range(24)),
            weekdays=frozenset(_index(WEEKDAYS, d, "days-of-week") for d in timetable.days_of_week),
            month_days=month_days,
            months=frozenset(_index(MONTHS, m, "months") + 1 for m in timetable.months),
        )

    @property
    def slot_seconds(self) -> float:
        return _HOUR / self.per_hour

    def fires_on(self, day: datetime) -> bool:
        """Whether the schedule fires on this (UTC) day at all. A day matches when it is in one
        of the listed weekdays or one of the listed month days (either list may be absent;
        with neither, every day matches), and in one of the listed months."""
        if self.months and day.month not in self.months:
            return False
        if not self.weekdays and not self.month_days:
            return True
        return day.weekday() in self.weekdays or day.day in self.month_days

    def slots_from(self, after: float) -> Iterator[Slot]:
        """Slots starting at or after `after` (epoch seconds), in time order, without end."""
        first = datetime.fromtimestamp(after, UTC)
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        idle_days = 0
        while idle_days <= _SEARCH_DAYS:
            if self.fires_on(day):
                idle_days = 0
                for hour in sorted(self.hours):
                    hour_start = (day + timedelta(hours=hour)).timestamp()
                    for k in range(self.per_hour):
                        start = hour_start + k * self.slot_seconds
                        if start >= after:
                            yield Slot(start, start + self.slot_seconds)
            else:
                idle_days += 1
            day += timedelta(days=1)

    def next_slot(self, after: float) -> Slot | None:
        """The first slot starting at or after `after`; None when the timetable never fires."""
        return next(self.slots_from(after), None)

    def slot_around(self, at: float) -> Slot | None:
        """The slot that contains `at`, else the next one."""
        return next((s for s in self.slots_from(at - self.slot_seconds) if s.end > at), None)

    def slots_between(self, start: float, end: float) -> list[Slot]:
        """Slots starting in [start, end)."""
        found = []
        for slot in self.slots_from(start):
            if slot.start >= end:
                break
            found.append(slot)
        return found


def _index(names: tuple[str, ...], value: str, field: str) -> int:
    try:
        return names.index(value.upper())
    except ValueError:
        raise ValueError(f"{field}: unknown value {value!r}") from None
