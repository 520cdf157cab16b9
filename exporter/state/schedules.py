"""What the exporter knows about each project's schedules, as the schedule tracking last set it.

Each project's rows are replaced as a whole, so a schedule deleted in CircleCI disappears (with
every series of it) at the next schedule read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

# The state set of circleci_schedule_last_run_status.
RUN_STATES = ("success", "failed", "error", "canceled", "running")


class ScheduleKey(NamedTuple):
    project: str
    schedule: str  # the schedule's name (made unique within its project)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    branch: str  # the branch (or tag) it runs on
    actor: str  # login of the user (or system) its pipelines are attributed to
    next_run: float | None  # start of the next expected slot; None: the timetable never fires
    last_run_at: float | None  # created_at of the newest pipeline attributed to it
    last_status: str | None  # success, failed, error, canceled or running; None: unknown
    missed_runs: int  # expected slots that passed their grace period with no pipeline
    last_missed_at: float | None  # start of the newest such slot


class ScheduleStore:
    def __init__(self) -> None:
        self._projects: dict[str, Mapping[str, ScheduleRow]] = {}

    def replace_project(self, project: str, rows: Mapping[str, ScheduleRow]) -> None:
        """Everything known about the project's schedules, keyed by schedule name."""
        self._projects[project] = MappingProxyType(dict(rows))

    def snapshot(self) -> Mapping[ScheduleKey, ScheduleRow]:
        return MappingProxyType(
            {
                ScheduleKey(project, name): row
                for project, rows in self._projects.items()
                for name, row in rows.items()
            }
        )
