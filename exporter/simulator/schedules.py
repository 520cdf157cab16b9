"""The simulated schedule triggers: which projects have which, and when each one fires.

Every project with a nightly workflow has a `nightly` schedule; some GitHub and Bitbucket
projects also run their build hourly on weekdays or weekly (CircleCI offers schedule triggers
for neither GitLab nor Bitbucket Data Center projects, docs/circleci-api.md §Schedules). The
first project has an hourly `smoke` schedule that stops firing partway through
(`SimConfig.schedule_stop_after`), as a schedule
does whose actor lost access: the demo's missed run.

Time: schedules fire on the wall clock (UTC). The simulator stands apart from the exporter's
layers, so it reads its own (simple: per-hour, hours, weekdays) timetables itself; the tests
check its fire times against the exporter's arithmetic (exporter.circleci.timetable). A
schedule that fires every hour of the day is
compressed like the rest of the world: at `speed` s it fires s times as often (`per-hour`
capped at 60, CircleCI's limit), and serves that timetable. Schedules tied to hours of day (the
nightly, the weekly) cannot be compressed and keep their wall-clock hours.

CircleCI spreads a schedule's runs across its hour; each simulated schedule fires at a fixed
offset into each of its slots, drawn from its id.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from exporter.simulator.model import Organization, Schedule

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI")
_ALL_HOURS = tuple(range(24))


def build_schedules(
    *,
    seed: int,
    index: int,
    org: Organization,
    default_branch: str,
    nightly: tuple[str, int, datetime, str] | None,
    origin: datetime,
) -> tuple[Schedule, ...]:
    """Project `index`'s schedules. `nightly`: (id, hour, created_at, actor id) drawn by the
    catalog for the nightly workflow's schedule."""
    rng = random.Random(f"{seed}:schedules:{index}")
    schedules: list[Schedule] = []

    def created() -> datetime:
        return (origin - timedelta(days=rng.randint(30, 400))).replace(microsecond=0)

    def uuid() -> str:
        return str(UUID(int=rng.getrandbits(128), version=4))

    if nightly is not None:
        schedule_id, hour, created_at, actor_id = nightly
        schedules.append(
            Schedule(
                schedule_id,
                "nightly",
                "Nightly end-to-end tests on the default branch",
                default_branch,
                1,
                (hour,),
                (),
                ("nightly",),
                created_at,
                actor_id,
                "scheduler-bot",
            )
        )
    if org.vcs_type != "circleci":
        if index == 0:
            schedules.append(
                Schedule(
                    uuid(),
                    "smoke",
                    "Hourly smoke build",
                    default_branch,
                    1,
                    _ALL_HOURS,
                    (),
                    ("build-and-test",),
                    created(),
                    uuid(),
                    "ops-bot",
                    stops=True,
                )
            )
        elif index % 5 == 1:
            schedules.append(
                Schedule(
                    uuid(),
                    "hourly-weekdays",
                    "Build every hour on weekdays",
                    default_branch,
                    1,
                    _ALL_HOURS,
                    WEEKDAYS,
                    ("build-and-test",),
                    created(),
                    uuid(),
                    "ci-bot",
                )
            )
        elif index % 5 == 2:
            schedules.append(
                Schedule(
                    uuid(),
                    "weekly",
                    "Monday morning full build",
                    default_branch,
                    1,
                    (6,),
                    ("MON",),
                    ("build-and-test",),
                    created(),
                    uuid(),
                    "release-bot",
                )
            )
    return tuple(schedules)


def timetable(schedule: Schedule, speed: float) -> dict[str, Any]:
    """The timetable as the API serves it (kebab-case keys), compressed as the module says."""
    per_hour = schedule.per_hour
    if schedule.hours_of_day == _ALL_HOURS:
        per_hour = max(1, min(60, round(per_hour * speed)))
    return {
        "per-hour": per_hour,
        "hours-of-day": list(schedule.hours_of_day),
        "days-of-week": list(schedule.days_of_week or ("MON", "TUE", "WED", "THU", "FRI", "SAT",
                                                        "SUN")),
    }  # fmt: skip


_ALL_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _slot_starts(
    after: float, per_hour: int, hours: tuple[int, ...], days: frozenset[int]
) -> Iterator[float]:
    """Slot starts from the day of `after` on, in time order, without end (every simulated
    schedule fires on at least one weekday)."""
    day = datetime.fromtimestamp(after, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    length = 3600.0 / per_hour
    while True:
        if day.weekday() in days:
            for hour in sorted(hours):
                start = (day + timedelta(hours=hour)).timestamp()
                for k in range(per_hour):
                    yield start + k * length
        day += timedelta(days=1)


class Firing:
    """When a project's schedules fire, in time order."""

    def __init__(
        self, schedules: tuple[Schedule, ...], *, speed: float, start: datetime, stop_after: float
    ) -> None:
        """`stop_after`: world seconds after `start` at which the schedules that stop do."""
        self._entries: list[tuple[Schedule, int, frozenset[int], float, float]] = []
        for schedule in schedules:
            table = timetable(schedule, speed)
            per_hour = int(table["per-hour"])
            days = frozenset(_ALL_WEEKDAYS.index(d) for d in table["days-of-week"])
            fraction = (zlib.crc32(schedule.id.encode()) % 1000) / 1000 * 0.4 + 0.02
            stops = start.timestamp() + stop_after / speed if schedule.stops else float("inf")
            self._entries.append((schedule, per_hour, days, fraction * 3600.0 / per_hour, stops))

    def next_after(self, after: float) -> tuple[float, Schedule] | None:
        """The first firing strictly after `after`; None when no schedule fires again."""
        best: tuple[float, Schedule] | None = None
        for schedule, per_hour, days, offset, stops in self._entries:
            created = schedule.created_at.timestamp()
            for slot_start in _slot_starts(
                max(after, created) - offset, per_hour, schedule.hours_of_day, days
            ):
                at = slot_start + offset
                if at <= after or at < created:
                    continue
                if at < stops and (best is None or at < best[0]):
                    best = (at, schedule)
                break
        return best
